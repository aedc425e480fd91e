-- The schema cache's relationships: every foreign key (multi-column ones included) whose
-- referencing and referenced tables are both in the exposed schemas ($1). Columns come in
-- key order, so columns[i] references ref_columns[i].
SELECT c.conname::text,
       ns.nspname::text, cl.relname::text,
       ARRAY(SELECT a.attname::text
             FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, i)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
             ORDER BY k.i),
       fns.nspname::text, fcl.relname::text,
       ARRAY(SELECT a.attname::text
             FROM unnest(c.confkey) WITH ORDINALITY AS k(attnum, i)
             JOIN pg_catalog.pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum
             ORDER BY k.i)
FROM pg_catalog.pg_constraint c
JOIN pg_catalog.pg_class cl ON cl.oid = c.conrelid
JOIN pg_catalog.pg_namespace ns ON ns.oid = cl.relnamespace
JOIN pg_catalog.pg_class fcl ON fcl.oid = c.confrelid
JOIN pg_catalog.pg_namespace fns ON fns.oid = fcl.relnamespace
WHERE c.contype = 'f'
  AND ns.nspname::text = ANY($1::text[])
  AND fns.nspname::text = ANY($1::text[])
ORDER BY ns.nspname, cl.relname, c.conname
