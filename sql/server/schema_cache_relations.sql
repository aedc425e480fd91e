-- The schema cache's relations: one row per column of every table, view, materialized view
-- and foreign table in the exposed schemas ($1), in attribute order. Read by the server's
-- login role at start and after every DDL notification (pg_catalog is readable by all).
-- security_invoker: whether a view runs its query with the caller's privileges (and so the
-- caller's RLS); a view without it reads its tables as the view owner, bypassing RLS.
-- unprotected_source: whether a view reads, directly or through security_invoker views, a
-- relation RLS does not protect (a table with RLS off, a view that is not security_invoker,
-- a materialized view or foreign table, in any schema): security_invoker alone does not
-- make such a view safe, since the caller then reads that relation's rows unfiltered.
WITH RECURSIVE invoker AS (
  -- Every view of the database with whether it is security_invoker.
  SELECT c.oid,
         EXISTS (SELECT 1 FROM pg_catalog.pg_options_to_table(c.reloptions) o
                 WHERE o.option_name = 'security_invoker'
                   AND lower(o.option_value) IN ('true', 'on', 'yes', '1')) AS security_invoker
  FROM pg_catalog.pg_class c
  WHERE c.relkind = 'v'
),
reads AS (
  -- (view, relation its rewrite rule references), excluding the view itself.
  SELECT r.ev_class AS view_oid, d.refobjid AS source_oid
  FROM pg_catalog.pg_rewrite r
  JOIN pg_catalog.pg_depend d
    ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.objid = r.oid
   AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid <> r.ev_class
),
view_sources (view_oid, source_oid) AS (
  -- What each view reads, followed through the security_invoker views it reads.
  SELECT view_oid, source_oid FROM reads
  UNION
  SELECT vs.view_oid, rd.source_oid
  FROM view_sources vs
  JOIN invoker i ON i.oid = vs.source_oid AND i.security_invoker
  JOIN reads rd ON rd.view_oid = vs.source_oid
)
SELECT n.nspname::text, c.relname::text, c.relkind::text, c.relrowsecurity,
       coalesce(ci.security_invoker, false) AS security_invoker,
       a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull, a.atthasdef,
       coalesce(pg_catalog.array_position(pk.conkey, a.attnum), 0)::int4,
       c.relkind = 'v' AND EXISTS (
         SELECT 1 FROM view_sources vs
         JOIN pg_catalog.pg_class s ON s.oid = vs.source_oid
         LEFT JOIN invoker si ON si.oid = s.oid
         WHERE vs.view_oid = c.oid
           AND ((s.relkind IN ('r', 'p') AND NOT s.relrowsecurity)
                OR (s.relkind = 'v' AND NOT si.security_invoker)
                OR s.relkind IN ('m', 'f'))
       ) AS unprotected_source
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_catalog.pg_constraint pk ON pk.conrelid = c.oid AND pk.contype = 'p'
LEFT JOIN invoker ci ON ci.oid = c.oid
WHERE n.nspname::text = ANY($1::text[]) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
ORDER BY n.nspname, c.relname, a.attnum
