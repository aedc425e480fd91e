-- Fluxbase extension, part 2b: sessions, refresh tokens, the token blacklist, one-time
-- tokens, login lockout counters and the security event log.

-- Security events (sign-in outcomes, lockouts, revocations, admin changes), one row each.
CREATE TABLE auth.events (
  id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at        timestamptz NOT NULL DEFAULT clock_timestamp(),
  event     text NOT NULL,
  outcome   text NOT NULL DEFAULT 'success',
  actor_id  uuid,
  target_id uuid,
  ip        inet,
  details   jsonb NOT NULL DEFAULT '{}'::jsonb
);
COMMENT ON TABLE auth.events IS 'Security events of the auth kernel (auth.login, auth.logout, auth.signup, admin.*, lockouts, revocations).';
CREATE INDEX events_at_idx ON auth.events (at);

-- Records one security event; the actor defaults to the verified caller.
CREATE FUNCTION auth.record_event(event text, outcome text DEFAULT 'success', target_id uuid DEFAULT NULL,
                                  ip inet DEFAULT NULL, details jsonb DEFAULT '{}'::jsonb) RETURNS void
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  INSERT INTO auth.events (event, outcome, actor_id, target_id, ip, details)
  VALUES (event, outcome, auth.uid(), target_id, ip, coalesce(details, '{}'::jsonb))
$$;
COMMENT ON FUNCTION auth.record_event(text, text, uuid, inet, jsonb) IS 'Internal: append a security event to auth.events.';
REVOKE ALL ON FUNCTION auth.record_event(text, text, uuid, inet, jsonb) FROM PUBLIC;

-- One row per sign-in. Access tokens carry its id; revoking it kills them all at once.
CREATE TABLE auth.sessions (
  id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id        uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
  aal            text NOT NULL DEFAULT 'aal1' CHECK (aal IN ('aal1', 'aal2')),
  amr            jsonb NOT NULL DEFAULT '["password"]'::jsonb,
  enrollment_only boolean NOT NULL DEFAULT false,
  ip             inet,
  created_at     timestamptz NOT NULL DEFAULT now(),
  refreshed_at   timestamptz,
  expires_at     timestamptz NOT NULL,
  revoked_at     timestamptz,
  revoked_reason text
);
COMMENT ON TABLE auth.sessions IS 'Sign-in sessions; a revoked or expired session refuses its access and refresh tokens.';
COMMENT ON COLUMN auth.sessions.enrollment_only IS 'An admin without 2FA under require_2fa_for_admins: its tokens run as anon and can only enrol TOTP.';
CREATE INDEX sessions_user_idx ON auth.sessions (user_id);

-- Refresh tokens: opaque, stored as SHA-256 only, single-use when rotation is on.
CREATE TABLE auth.refresh_tokens (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  session_id uuid NOT NULL REFERENCES auth.sessions (id) ON DELETE CASCADE,
  token_hash bytea NOT NULL UNIQUE,
  parent_id  bigint REFERENCES auth.refresh_tokens (id) ON DELETE SET NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  used_at    timestamptz
);
COMMENT ON TABLE auth.refresh_tokens IS 'Refresh tokens (hashes only). A used token presented again revokes its session.';
CREATE INDEX refresh_tokens_session_idx ON auth.refresh_tokens (session_id);

-- The access-token blacklist: a signed-out token's jti, kept until the token would expire anyway.
CREATE TABLE auth.revoked_tokens (
  jti        text PRIMARY KEY,
  expires_at timestamptz NOT NULL,
  revoked_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE auth.revoked_tokens IS 'Blacklisted access-token ids; rows past expires_at are purged (auth.purge_expired()).';
CREATE INDEX revoked_tokens_expiry_idx ON auth.revoked_tokens (expires_at);

-- Single-use tokens for password reset, expired-password change and 2FA challenges (hashes only).
CREATE TABLE auth.one_time_tokens (
  token_hash bytea PRIMARY KEY,
  kind       text NOT NULL CHECK (kind IN ('password_reset', 'password_change', 'mfa_challenge')),
  user_id    uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  used_at    timestamptz,
  attempts   integer NOT NULL DEFAULT 0,
  ip         inet
);
COMMENT ON TABLE auth.one_time_tokens IS 'Single-use tokens (password reset 1 h, password change, 2FA challenge), stored hashed.';

-- Failed sign-in counters, one row per lockout key ('email:…' or 'ip:…').
CREATE TABLE auth.login_attempts (
  key               text PRIMARY KEY,
  failures          integer NOT NULL DEFAULT 0,
  window_started_at timestamptz NOT NULL DEFAULT now(),
  locked_until      timestamptz
);
COMMENT ON TABLE auth.login_attempts IS 'Failed sign-in counters per e-mail and per client IP; see auth.lockouts and auth.unlock().';

-- API keys issued with auth.issue_api_key (their jti, so they can be revoked).
CREATE TABLE auth.api_keys (
  jti        text PRIMARY KEY,
  name       text NOT NULL,
  role       text NOT NULL CHECK (role IN ('anon', 'service_role')),
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL
);
COMMENT ON TABLE auth.api_keys IS 'Long-lived anon / service_role keys; revoke with auth.revoke_api_key(jti).';

-- SHA-256 of an opaque token: what is stored, so a database leak leaks no usable token.
CREATE FUNCTION auth.token_hash(token text) RETURNS bytea
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
  SELECT sha256(convert_to(token, 'UTF8'))
$$;
COMMENT ON FUNCTION auth.token_hash(text) IS 'SHA-256 of an opaque token (refresh, reset, challenge): only the hash is stored.';

-- Revokes a session (idempotent), recording why.
CREATE FUNCTION auth.revoke_session(session_id uuid, reason text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  UPDATE auth.sessions s SET revoked_at = now(), revoked_reason = reason
  WHERE s.id = revoke_session.session_id AND s.revoked_at IS NULL;
  IF FOUND THEN
    PERFORM auth.record_event('auth.session_revoked', 'success',
      (SELECT user_id FROM auth.sessions WHERE id = revoke_session.session_id), NULL,
      jsonb_build_object('session_id', session_id, 'reason', reason));
  END IF;
END
$$;
COMMENT ON FUNCTION auth.revoke_session(uuid, text) IS 'Internal: revoke one session; its access and refresh tokens stop working at once.';
REVOKE ALL ON FUNCTION auth.revoke_session(uuid, text) FROM PUBLIC;

-- Deletes blacklist entries and one-time tokens that have expired anyway.
CREATE FUNCTION auth.purge_expired() RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  n bigint;
  m bigint;
BEGIN
  DELETE FROM auth.revoked_tokens WHERE expires_at < now();
  GET DIAGNOSTICS n = ROW_COUNT;
  DELETE FROM auth.one_time_tokens WHERE expires_at < now() - interval '1 day';
  GET DIAGNOSTICS m = ROW_COUNT;
  RETURN n + m;
END
$$;
COMMENT ON FUNCTION auth.purge_expired() IS 'Delete expired blacklist rows and old one-time tokens; returns how many. Safe to run from cron.';
REVOKE ALL ON FUNCTION auth.purge_expired() FROM PUBLIC;

-- ---------------------------------------------------------------------------------------
-- Lockout
-- ---------------------------------------------------------------------------------------

-- The lockout key of a client address: an IPv4 address itself, an IPv6 address by its /64 (one
-- subscriber usually holds a whole /64 and can rotate addresses within it, which would dodge a
-- per-address count; the rate limiter groups by /64 too). An IPv4-mapped IPv6 address counts as
-- the IPv4 address it maps.
CREATE FUNCTION auth.lockout_ip_key(client_ip inet) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT 'ip:' || CASE
    WHEN family(client_ip) = 6 AND NOT client_ip <<= '::ffff:0.0.0.0/96'::inet
      THEN network(set_masklen(client_ip, 64))::text
    WHEN family(client_ip) = 6
      THEN host((('0.0.0.0'::inet) + (client_ip - '::ffff:0.0.0.0'::inet)))
    ELSE host(client_ip) END
$$;
COMMENT ON FUNCTION auth.lockout_ip_key(inet) IS 'Internal: the lockout key of a client address (ip:<v4>, or ip:<v6 /64>).';

-- The keys a sign-in attempt counts against, per the lockout_type setting.
CREATE FUNCTION auth.lockout_keys(email text, client_ip inet) RETURNS text[]
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT array_remove(ARRAY[
    CASE WHEN auth.setting('lockout_type') IN ('email', 'ip_and_email') AND email IS NOT NULL
         THEN 'email:' || auth.normalize_email(email) END,
    CASE WHEN auth.setting('lockout_type') IN ('ip', 'ip_and_email') AND client_ip IS NOT NULL
         THEN auth.lockout_ip_key(client_ip) END], NULL)
$$;
COMMENT ON FUNCTION auth.lockout_keys(text, inet) IS 'Internal: the lockout keys (email:…, ip:…) an attempt counts against, per lockout_type.';

-- Takes the row locks of the given keys (creating the rows), so that parallel attempts on
-- one key run one after another and can never exceed the limit, and says whether any is locked.
CREATE FUNCTION auth.lock_attempt_keys(keys text[]) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  window_length interval := auth.setting_interval('lockout_duration');
  any_locked boolean;
BEGIN
  INSERT INTO auth.login_attempts (key) SELECT unnest(keys) ORDER BY 1 ON CONFLICT (key) DO NOTHING;
  PERFORM 1 FROM auth.login_attempts a WHERE a.key = ANY (keys) ORDER BY a.key FOR UPDATE;
  -- A window that has passed starts again from zero.
  UPDATE auth.login_attempts a SET failures = 0, window_started_at = now(), locked_until = NULL
  WHERE a.key = ANY (keys) AND a.window_started_at + window_length <= now()
    AND (a.locked_until IS NULL OR a.locked_until <= now());
  -- Failures whose transaction rolled back count too (see pg_ext/src/rolled_back_failures.rs).
  SELECT bool_or(a.locked_until > now()
                 OR a.failures + fluxbase.rolled_back_login_failures(a.key) >= auth.setting_int('max_login_attempts'))
  INTO any_locked FROM auth.login_attempts a WHERE a.key = ANY (keys);
  RETURN coalesce(any_locked, false);
END
$$;
COMMENT ON FUNCTION auth.lock_attempt_keys(text[]) IS 'Internal: serialise attempts on these lockout keys and report whether one is locked.';
REVOKE ALL ON FUNCTION auth.lock_attempt_keys(text[]) FROM PUBLIC;

-- Counts one failure against each key, locking those that reach max_login_attempts.
CREATE FUNCTION auth.record_login_failure(keys text[], client_ip inet) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  newly_locked text;
BEGIN
  FOR newly_locked IN
    UPDATE auth.login_attempts a
    SET failures = a.failures + 1,
        locked_until = CASE WHEN a.failures + 1 + fluxbase.rolled_back_login_failures(a.key)
                                 >= auth.setting_int('max_login_attempts')
                            THEN now() + auth.setting_interval('lockout_duration') END
    WHERE a.key = ANY (keys)
    RETURNING CASE WHEN a.locked_until IS NOT NULL THEN a.key END
  LOOP
    IF newly_locked IS NOT NULL THEN
      PERFORM auth.record_event('auth.lockout', 'locked', NULL, client_ip, jsonb_build_object('key', newly_locked));
    END IF;
  END LOOP;
  -- Should this transaction (or a savepoint around it) roll back, the failures count anyway.
  PERFORM fluxbase.note_login_failures(keys,
    extract(epoch FROM auth.setting_interval('lockout_duration'))::bigint);
END
$$;
COMMENT ON FUNCTION auth.record_login_failure(text[], inet) IS 'Internal: count a failed attempt against each key; lock a key at max_login_attempts.';
REVOKE ALL ON FUNCTION auth.record_login_failure(text[], inet) FROM PUBLIC;

-- Current lockouts, for administrators.
CREATE VIEW auth.lockouts AS
  SELECT key, failures, window_started_at, locked_until
  FROM auth.login_attempts WHERE locked_until > now();
COMMENT ON VIEW auth.lockouts IS 'Lockout keys that are locked right now (email:… / ip:…). Clear with auth.unlock().';

-- Starts the failure count of these keys again: their rows, and what rolled-back attempts
-- left in the shared-memory ledger (pg_ext/src/rolled_back_failures.rs), which has no rows to
-- delete. Returns about how many keys held a count.
CREATE FUNCTION auth.clear_login_failures(keys text[]) RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  rows_cleared integer;
  held integer;
BEGIN
  DELETE FROM auth.login_attempts a WHERE a.key = ANY (keys);
  GET DIAGNOSTICS rows_cleared = ROW_COUNT;
  held := fluxbase.forget_rolled_back_login_failures(keys);
  -- A key may have both; the larger count is the number of keys that held one.
  RETURN greatest(rows_cleared, held);
END
$$;
COMMENT ON FUNCTION auth.clear_login_failures(text[]) IS 'Internal: clear the failure count of lockout keys (rows and rolled-back failures).';
REVOKE ALL ON FUNCTION auth.clear_login_failures(text[]) FROM PUBLIC;

-- Clears the lockout of an e-mail, an IP, or both (superuser).
CREATE FUNCTION auth.unlock(email text DEFAULT NULL, ip inet DEFAULT NULL) RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  n integer;
BEGIN
  n := auth.clear_login_failures(array_remove(ARRAY[
    'email:' || auth.normalize_email(unlock.email), auth.lockout_ip_key(unlock.ip)], NULL));
  PERFORM auth.record_event('admin.unlock', 'success', NULL, unlock.ip,
    jsonb_build_object('email', auth.normalize_email(unlock.email), 'keys_cleared', n));
  RETURN n;
END
$$;
COMMENT ON FUNCTION auth.unlock(text, inet) IS 'Clear the failed-attempt counters (and lock) of an e-mail and/or an IP; returns the number of keys cleared.';
REVOKE ALL ON FUNCTION auth.unlock(text, inet) FROM PUBLIC;
