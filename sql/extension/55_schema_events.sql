-- Fluxbase extension: tell the server when the schema changes.
-- The server keeps a schema cache (tables, columns, relationships, policies' effect on
-- what it may expose) and LISTENs on the channel `fluxbase_schema` to reload it. The channel
-- name is a contract with the server: keep it. The payload is the command tag
-- ("CREATE TABLE", "GRANT", ...), for logs only; the server reloads on any notification.
--
-- What PostgreSQL 15 event triggers cover (ddl_command_end, plus sql_drop for drops):
--   CREATE/ALTER/DROP TABLE, VIEW, MATERIALIZED VIEW, FUNCTION, SCHEMA, TYPE, ...;
--   CREATE/ALTER/DROP POLICY; ALTER TABLE ... ENABLE/FORCE ROW LEVEL SECURITY; COMMENT ON;
--   GRANT/REVOKE on tables, columns, functions, schemas; ALTER DEFAULT PRIVILEGES.
-- The gaps (no event trigger fires for them, so no notification; reload by hand with
-- NOTIFY fluxbase_schema, or restart the server):
--   - global objects: CREATE/ALTER/DROP ROLE (e.g. ALTER ROLE ... BYPASSRLS), GRANT/REVOKE of
--     role membership, databases, tablespaces, COMMENT/GRANT on those;
--   - CREATE/ALTER/DROP EVENT TRIGGER itself, ALTER SYSTEM;
--   - anything in single-user mode, or while a superuser has disabled these triggers
--     (ALTER EVENT TRIGGER ... DISABLE);
--   - TRUNCATE and data changes (not DDL; the cache does not hold data).
-- NOTIFY is transactional: the server hears it only when the DDL commits, never for a
-- rolled-back change.

-- Why it can never fail the DDL: any error (there should be none) is swallowed, and when the
-- notification queue is more than half full (a listener that stopped reading) it notifies
-- nothing, because a full queue would make the DDL's COMMIT fail — a missed reload is
-- better than refused DDL. Cheap: one pg_notify, deduplicated by PostgreSQL within a
-- transaction. Not SECURITY DEFINER: pg_notify needs no rights, it runs as whoever ran the
-- DDL.
CREATE FUNCTION fluxbase.notify_schema_change() RETURNS event_trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF pg_catalog.pg_notification_queue_usage() < 0.5 THEN
    PERFORM pg_catalog.pg_notify('fluxbase_schema', tg_tag);
  END IF;
EXCEPTION WHEN OTHERS THEN
  NULL;
END
$$;
COMMENT ON FUNCTION fluxbase.notify_schema_change() IS
  'Event trigger: NOTIFY fluxbase_schema, <command tag> after DDL, so servers reload their schema cache. Never fails the DDL.';

-- After every DDL command (CREATE/ALTER/COMMENT/GRANT/REVOKE ...).
CREATE EVENT TRIGGER fluxbase_schema_ddl ON ddl_command_end
  EXECUTE FUNCTION fluxbase.notify_schema_change();
COMMENT ON EVENT TRIGGER fluxbase_schema_ddl IS 'Notifies fluxbase_schema after DDL (see fluxbase.notify_schema_change).';

-- After objects are dropped (DROP TABLE, DROP POLICY, ALTER TABLE ... DROP COLUMN, ...).
CREATE EVENT TRIGGER fluxbase_schema_drop ON sql_drop
  EXECUTE FUNCTION fluxbase.notify_schema_change();
COMMENT ON EVENT TRIGGER fluxbase_schema_drop IS 'Notifies fluxbase_schema when objects are dropped (see fluxbase.notify_schema_change).';

-- Also in session_replication_role = replica (bulk loaders, pg_restore --disable-triggers
-- style tools): the schema changes all the same.
ALTER EVENT TRIGGER fluxbase_schema_ddl ENABLE ALWAYS;
ALTER EVENT TRIGGER fluxbase_schema_drop ENABLE ALWAYS;
