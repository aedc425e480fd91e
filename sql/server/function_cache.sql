-- The server's function cache (server/src/rest/functions.rs): one row per plain function
-- (prokind 'f': no procedures, aggregates or window functions) of the schemas in $1, the
-- exposed schemas, which the server has already stripped of the forbidden ones.
--
-- Read by the server's own login role at start and on a miss: pg_catalog is readable by every
-- role. Whether a request's role may EXECUTE a listed function is still PostgreSQL's decision
-- at call time. Functions returning a pseudo-type other than void and record (trigger,
-- event_trigger, internal, handlers, anyelement, ...) cannot be called over HTTP and are left
-- out here; the Rust side drops the remaining uncallable ones (unnamed or pseudo-typed inputs,
-- SETOF record without a column list).
--
--   arg_names, arg_modes, arg_types  every argument (IN, OUT, INOUT, VARIADIC, TABLE) in
--                 declaration order; modes empty when all are IN; types by format_type, so
--                 each is a valid, quoted type expression
--   pseudo_input  whether an input argument has a pseudo-type (anyelement, "any", ...)
--   column_*      the columns of a composite return type (a table's row type included)
--   return_schema the schema of the return type (a row type of auth.users must not be
--                 served, whatever the function)
--   pins_search_path  whether the function has its own SET search_path (a SECURITY DEFINER
--                 function without one can be steered by the caller's search_path)
SELECT n.nspname::text AS schema,
       p.proname::text AS name,
       p.provolatile::text AS volatility,
       p.prosecdef AS security_definer,
       p.proretset AS returns_set,
       (rt.typtype OPERATOR(pg_catalog.=) 'p' AND rt.typname OPERATOR(pg_catalog.=) 'void') AS returns_void,
       (rt.typtype OPERATOR(pg_catalog.=) 'p' AND rt.typname OPERATOR(pg_catalog.=) 'record') AS returns_record,
       p.pronargdefaults::int4 AS defaults,
       coalesce(p.proargnames, ARRAY[]::text[]) AS arg_names,
       coalesce(p.proargmodes::text[], ARRAY[]::text[]) AS arg_modes,
       (SELECT coalesce(pg_catalog.array_agg(pg_catalog.format_type(a.oid, NULL) ORDER BY a.ord), ARRAY[]::text[])
          FROM pg_catalog.unnest(coalesce(p.proallargtypes, p.proargtypes::oid[])) WITH ORDINALITY AS a(oid, ord)
       ) AS arg_types,
       EXISTS (SELECT FROM pg_catalog.unnest(p.proargtypes::oid[]) AS i(oid)
                 JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=) i.oid
                WHERE t.typtype OPERATOR(pg_catalog.=) 'p') AS pseudo_input,
       (SELECT coalesce(pg_catalog.array_agg(a.attname::text ORDER BY a.attnum), ARRAY[]::text[])
          FROM pg_catalog.pg_attribute a
         WHERE rt.typrelid OPERATOR(pg_catalog.<>) 0 AND a.attrelid OPERATOR(pg_catalog.=) rt.typrelid
           AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped) AS column_names,
       (SELECT coalesce(pg_catalog.array_agg(pg_catalog.format_type(a.atttypid, a.atttypmod) ORDER BY a.attnum), ARRAY[]::text[])
          FROM pg_catalog.pg_attribute a
         WHERE rt.typrelid OPERATOR(pg_catalog.<>) 0 AND a.attrelid OPERATOR(pg_catalog.=) rt.typrelid
           AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped) AS column_types,
       (SELECT tn.nspname::text FROM pg_catalog.pg_namespace tn
         WHERE tn.oid OPERATOR(pg_catalog.=) rt.typnamespace) AS return_schema,
       coalesce((SELECT pg_catalog.bool_or(c LIKE 'search_path=%')
                   FROM pg_catalog.unnest(p.proconfig) AS c), false) AS pins_search_path
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) p.pronamespace
JOIN pg_catalog.pg_type rt ON rt.oid OPERATOR(pg_catalog.=) p.prorettype
WHERE n.nspname::text OPERATOR(pg_catalog.=) ANY ($1::text[])
  AND p.prokind OPERATOR(pg_catalog.=) 'f'
  AND (rt.typtype OPERATOR(pg_catalog.<>) 'p' OR rt.typname IN ('void', 'record'))
ORDER BY n.nspname, p.proname, p.oid
