-- The schema cache's relations: one row per column of every table, view, materialized view
-- and foreign table in the exposed schemas ($1), in attribute order. Read by the server's
-- login role at start and after every DDL notification (pg_catalog is readable by all).
-- security_invoker: whether a view runs its query with the caller's privileges (and so the
-- caller's RLS); a view without it reads its tables as the view owner, bypassing RLS.
SELECT n.nspname::text, c.relname::text, c.relkind::text, c.relrowsecurity,
       EXISTS (SELECT 1 FROM pg_catalog.pg_options_to_table(c.reloptions) o
               WHERE o.option_name = 'security_invoker'
                 AND lower(o.option_value) IN ('true', 'on', 'yes', '1')) AS security_invoker,
       a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull, a.atthasdef,
       coalesce(pg_catalog.array_position(pk.conkey, a.attnum), 0)::int4
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_catalog.pg_constraint pk ON pk.conrelid = c.oid AND pk.contype = 'p'
WHERE n.nspname::text = ANY($1::text[]) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
ORDER BY n.nspname, c.relname, a.attnum
