-- Whether the request's role (after auth.authenticate switched to it) is subject to
-- row-level security, i.e. lacks BYPASSRLS as service_role has it. Asked by the tables API
-- before answering `Prefer: count=planned|estimated` with the planner's figure: statistics
-- describe every row, so a caller under RLS gets an exact (RLS-filtered) count instead.
SELECT NOT r.rolbypassrls
FROM pg_catalog.pg_roles r
WHERE r.rolname OPERATOR(pg_catalog.=) current_user
