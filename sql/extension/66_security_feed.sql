-- Fluxbase extension: the security events the server copies into its audit log file
-- (`logging.audit_log_file`). Administrator actions and lockouts happen in SQL, where the
-- server cannot see them; it reads them from here by id (polling), which survives a server
-- restart or a dropped connection without losing events, unlike LISTEN/NOTIFY.

-- The newest event id: where a starting server begins (it does not replay history).
CREATE FUNCTION fluxbase.security_events_head() RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT coalesce(max(id), 0) FROM auth.events
$$;
COMMENT ON FUNCTION fluxbase.security_events_head() IS 'Server only: the id of the newest auth.events row (0 when none).';

-- The SQL-side events after `after_id` (at most `max_rows`, oldest first): administrator
-- actions (admin.*) and lockouts (auth.lockout). Events that happen over HTTP (sign-in,
-- sign-up, sign-out, resets, 2FA) are logged by the server itself, with the user agent.
-- `login_role` is who ran the statement (session_user, from the audit log's copy of the
-- event): for an administrator in psql, their login.
CREATE FUNCTION fluxbase.security_events_after(after_id bigint, max_rows integer)
RETURNS TABLE (id bigint, at timestamptz, event text, outcome text, actor_id uuid, target_id uuid,
               ip text, details jsonb, login_role text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT e.id, e.at, e.event, e.outcome, e.actor_id, e.target_id, host(e.ip), e.details,
         (SELECT a.login_role FROM audit.log a
          WHERE a.table_oid = 'auth.events'::regclass AND a.pk = jsonb_build_object('id', e.id)
            AND a.op = 'SECURITY'
          LIMIT 1)
  FROM auth.events e
  WHERE e.id > after_id AND (e.event LIKE 'admin.%' OR e.event = 'auth.lockout')
  ORDER BY e.id
  LIMIT greatest(least(max_rows, 1000), 1)
$$;
COMMENT ON FUNCTION fluxbase.security_events_after(bigint, integer) IS
  'Server only: administrator and lockout events of auth.events after an id, oldest first, with the login role that caused each (for the audit log file).';
