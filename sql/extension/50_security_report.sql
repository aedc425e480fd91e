-- Fluxbase extension: the security report (security property 5).
-- One function that reads the catalogs and lists what makes an exposed schema less safe than
-- RLS promises: tables without (forced) RLS or without policies, views that read their base
-- tables as their owner, materialized views the API roles can read, grants no policy covers,
-- and SECURITY DEFINER functions the API roles can call. The server logs it at start;
-- `fluxbase check` prints it.

-- Why SECURITY INVOKER: everything it reads (pg_class, pg_policy, pg_proc, pg_depend, the
-- has_*_privilege functions about another role) is readable by every role, so it needs no
-- rights of its own and reveals nothing a plain catalog query would not.
-- Why search_path is pinned anyway: the object names it prints (regprocedure, %I.%I) are
-- then always schema-qualified the same way, whoever calls it.
CREATE FUNCTION fluxbase.security_report(schemas text[] DEFAULT ARRAY['public'])
RETURNS TABLE (severity text, kind text, object text, detail text)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  WITH api_role(name) AS (VALUES ('anon'), ('authenticated')),
  -- Tables, partitioned tables, views and materialized views of the exposed schemas.
  rel AS (
    SELECT c.oid, c.relkind, c.relrowsecurity, c.relforcerowsecurity, c.reloptions,
           format('%I.%I', n.nspname, c.relname) AS name
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = ANY (security_report.schemas)
      AND c.relkind IN ('r', 'p', 'v', 'm')
  ),
  tbl AS (SELECT * FROM rel WHERE relkind IN ('r', 'p')),
  -- What each API role may attempt on each table (PUBLIC grants and column grants count:
  -- a column grant is enough to read or write that column).
  granted AS (
    SELECT t.oid, t.name, r.name AS role, cmd.name AS command
    FROM tbl t
    CROSS JOIN api_role r
    CROSS JOIN (VALUES ('SELECT', 'r'), ('INSERT', 'a'), ('UPDATE', 'w'), ('DELETE', 'd')) AS cmd(name, polcmd)
    WHERE CASE cmd.name
            WHEN 'DELETE' THEN pg_catalog.has_table_privilege(r.name, t.oid, 'DELETE')
            ELSE pg_catalog.has_any_column_privilege(r.name, t.oid, cmd.name)
          END
      AND t.relrowsecurity
      -- Covered: a permissive policy (restrictive ones only narrow) for this command or ALL,
      -- whose roles include PUBLIC (0) or a role whose privileges this role has.
      AND NOT EXISTS (
        SELECT FROM pg_catalog.pg_policy p
        WHERE p.polrelid = t.oid
          AND p.polpermissive
          AND p.polcmd IN ('*', cmd.polcmd)
          AND EXISTS (SELECT FROM pg_catalog.unnest(p.polroles) AS pr(oid)
                      WHERE pr.oid = 0 OR pg_catalog.pg_has_role(r.name, pr.oid, 'USAGE'))
      )
  ),
  finding(severity, kind, object, detail) AS (
    SELECT 'error', 'rls_disabled', t.name,
           'row-level security is disabled: every row is visible and writable to any role the grants allow'
    FROM tbl t WHERE NOT t.relrowsecurity
    UNION ALL
    SELECT 'warning', 'rls_not_forced', t.name,
           'row-level security is not forced: queries run as the table owner skip the policies'
    FROM tbl t WHERE t.relrowsecurity AND NOT t.relforcerowsecurity
    UNION ALL
    SELECT 'warning', 'no_policy', t.name,
           'row-level security is on but no policy exists: every API role sees and changes nothing'
    FROM tbl t
    WHERE t.relrowsecurity
      AND NOT EXISTS (SELECT FROM pg_catalog.pg_policy p WHERE p.polrelid = t.oid)
    UNION ALL
    SELECT 'warning', 'grant_not_covered', g.name,
           format('%s may %s but no permissive policy for %s applies to %s', g.role, g.command, g.command, g.role)
    FROM granted g
    UNION ALL
    -- A view without security_invoker reads its base tables with its owner's rights, so their
    -- RLS checks the owner (often a superuser, who skips RLS), not the caller.
    SELECT 'error', 'view_not_security_invoker', v.name,
           'the view runs as its owner, bypassing the row-level security of its base tables: ALTER VIEW ... SET (security_invoker = true)'
    FROM rel v
    WHERE v.relkind = 'v'
      AND NOT coalesce((SELECT o.option_value::boolean
                        FROM pg_catalog.pg_options_to_table(v.reloptions) o
                        WHERE o.option_name = 'security_invoker'), false)
    UNION ALL
    -- A materialized view is a copy without RLS: whoever may read it reads every row.
    SELECT 'error', 'materialized_view_exposed', m.name,
           format('readable by %s: a materialized view has no row-level security',
                  (SELECT pg_catalog.string_agg(r.name, ', ' ORDER BY r.name) FROM api_role r
                   WHERE pg_catalog.has_table_privilege(r.name, m.oid, 'SELECT')))
    FROM rel m
    WHERE m.relkind = 'm'
      AND EXISTS (SELECT FROM api_role r WHERE pg_catalog.has_table_privilege(r.name, m.oid, 'SELECT'))
    UNION ALL
    -- SECURITY DEFINER functions an API role can call, in any schema (a function need not be
    -- in an exposed schema to be reached: policies, views and other functions call it).
    -- Left out: the fluxbase extension's own functions (pg_depend deptype 'e'), which are the
    -- kernel's deliberate doors (sign-in, sign-up, 2FA, ...), each granted on purpose in
    -- 90_grants.sql and tested; listing them would bury the application's own findings.
    SELECT 'warning', 'security_definer_function', f.oid::pg_catalog.regprocedure::text,
           format('SECURITY DEFINER (runs as %s), executable by %s%s',
                  pg_catalog.pg_get_userbyid(f.proowner),
                  (SELECT pg_catalog.string_agg(r.name, ', ' ORDER BY r.name) FROM api_role r
                   WHERE pg_catalog.has_function_privilege(r.name, f.oid, 'EXECUTE')),
                  CASE WHEN f.proconfig IS NULL
                         OR NOT EXISTS (SELECT FROM pg_catalog.unnest(f.proconfig) s WHERE s LIKE 'search\_path=%')
                       THEN '; search_path is not pinned (SET search_path = pg_catalog, pg_temp)'
                       ELSE '' END)
    FROM pg_catalog.pg_proc f
    WHERE f.prosecdef
      AND EXISTS (SELECT FROM api_role r WHERE pg_catalog.has_function_privilege(r.name, f.oid, 'EXECUTE'))
      AND NOT EXISTS (
        SELECT FROM pg_catalog.pg_depend d
        WHERE d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
          AND d.objid = f.oid
          AND d.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass
          AND d.refobjid = (SELECT e.oid FROM pg_catalog.pg_extension e WHERE e.extname = 'fluxbase')
          AND d.deptype = 'e'
      )
  )
  SELECT f.severity, f.kind, f.object, f.detail
  FROM finding f
  -- Byte order ("C"), so the order is the same whatever the database's collation.
  ORDER BY CASE f.severity WHEN 'error' THEN 0 ELSE 1 END,
           f.object COLLATE "C", f.kind COLLATE "C", f.detail COLLATE "C"
$$;
COMMENT ON FUNCTION fluxbase.security_report(text[]) IS
  'Security report over the exposed schemas (default public): tables with RLS disabled (error), not forced or without any policy (warning), grants to anon/authenticated that no permissive policy covers for that command (warning), views without security_invoker (error), materialized views readable by anon/authenticated (error), and SECURITY DEFINER functions in any schema that anon/authenticated can execute (warning) -- except the fluxbase extension''s own functions (pg_depend deptype e), which are the kernel''s deliberate, reviewed doors. Catalog facts only; errors first, then by object.';
