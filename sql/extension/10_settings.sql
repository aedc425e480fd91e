-- Fluxbase extension, part 1: settings.
-- Every tunable rule lives in this one table so an administrator reads and changes them in
-- SQL; the server writes the `auth:` keys of fluxbase.yaml here at start. The signing secret
-- is NOT here: it is the superuser-only setting fluxbase.jwt_secret.

-- One row per setting: its value, the kind of value it must be, and why it exists.
CREATE TABLE auth.settings (
  key         text PRIMARY KEY,
  value       text NOT NULL,
  kind        text NOT NULL CHECK (kind IN ('text', 'integer', 'boolean', 'duration', 'lockout_type')),
  description text NOT NULL
);
COMMENT ON TABLE auth.settings IS 'Fluxbase settings (SQL-first). Change with auth.set_setting(key, value); values are validated by kind.';

-- Whether `value` is a well-formed value of `kind`; NULL means yes, otherwise the reason.
CREATE FUNCTION auth.setting_value_problem(kind text, value text) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT CASE kind
    WHEN 'text' THEN CASE WHEN value = '' THEN 'must not be empty' END
    WHEN 'integer' THEN CASE WHEN value !~ '^[0-9]{1,9}$' THEN 'must be a whole number of 0 or more' END
    WHEN 'boolean' THEN CASE WHEN value NOT IN ('true', 'false') THEN 'must be true or false' END
    WHEN 'duration' THEN CASE WHEN value !~ '^[1-9][0-9]{0,8}(s|m|h|d)$' THEN 'must be a positive duration like 30s, 15m, 1h or 7d' END
    WHEN 'lockout_type' THEN CASE WHEN value NOT IN ('ip', 'email', 'ip_and_email') THEN 'must be one of ip, email, ip_and_email' END
  END
$$;
COMMENT ON FUNCTION auth.setting_value_problem(text, text) IS 'Internal: why a value is not valid for a setting kind (NULL when valid).';

-- A well-formed duration value (30s, 15m, 1h, 7d) in seconds.
CREATE FUNCTION auth.duration_seconds(value text) RETURNS bigint
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT (m[1])::bigint * CASE m[2] WHEN 's' THEN 1 WHEN 'm' THEN 60 WHEN 'h' THEN 3600 ELSE 86400 END
  FROM regexp_match(value, '^([0-9]+)(s|m|h|d)$') AS m
$$;
COMMENT ON FUNCTION auth.duration_seconds(text) IS 'Internal: a duration setting value (30s, 15m, 1h, 7d) in seconds.';

-- Refuses a bad value at write time, naming the key, so a typo never silently means "default".
CREATE FUNCTION auth.settings_validate() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  problem text := auth.setting_value_problem(NEW.kind, NEW.value);
BEGIN
  IF problem IS NOT NULL THEN
    RAISE EXCEPTION 'setting "%" %, not "%"', NEW.key, problem, NEW.value USING ERRCODE = '22023';
  END IF;
  IF NEW.key IN ('max_login_attempts', 'password_min_length') AND NEW.value::int < 1 THEN
    RAISE EXCEPTION 'setting "%" must be at least 1, not "%"', NEW.key, NEW.value USING ERRCODE = '22023';
  END IF;
  -- Ceilings on the two settings whose extreme values quietly switch a protection off: more
  -- than 100 failures per lockout key is no lockout, and an access token lives on in its
  -- clients until it expires.
  IF NEW.key = 'max_login_attempts' AND NEW.value::int > 100 THEN
    RAISE EXCEPTION 'setting "max_login_attempts" must be at most 100, not "%"', NEW.value USING ERRCODE = '22023';
  END IF;
  IF NEW.key = 'access_token_expiry' AND auth.duration_seconds(NEW.value) > 86400 THEN
    RAISE EXCEPTION 'setting "access_token_expiry" must be at most 1d (24h), not "%"', NEW.value USING ERRCODE = '22023';
  END IF;
  -- A lockout shorter than a minute locks nothing; and past a year, `now() + duration` (and
  -- a password age in days) overflows the timestamp, which would fail every sign-in (found
  -- by a review).
  IF NEW.key = 'lockout_duration' AND auth.duration_seconds(NEW.value) < 60 THEN
    RAISE EXCEPTION 'setting "lockout_duration" must be at least 1m, not "%"', NEW.value USING ERRCODE = '22023';
  END IF;
  IF NEW.kind = 'duration' AND auth.duration_seconds(NEW.value) > 365 * 86400 THEN
    RAISE EXCEPTION 'setting "%" must be at most 365d, not "%"', NEW.key, NEW.value USING ERRCODE = '22023';
  END IF;
  IF NEW.key = 'password_max_age_days' AND NEW.value::int > 3650 THEN
    RAISE EXCEPTION 'setting "password_max_age_days" must be at most 3650, not "%"', NEW.value USING ERRCODE = '22023';
  END IF;
  IF NEW.key = 'password_min_length' AND NEW.value::int > 128 THEN
    RAISE EXCEPTION 'setting "password_min_length" must be at most 128, not "%"', NEW.value USING ERRCODE = '22023';
  END IF;
  RETURN NEW;
END
$$;
COMMENT ON FUNCTION auth.settings_validate() IS 'Internal: validates auth.settings rows by kind.';

-- Validation trigger.
CREATE TRIGGER settings_validate BEFORE INSERT OR UPDATE ON auth.settings
  FOR EACH ROW EXECUTE FUNCTION auth.settings_validate();

-- Every change of a setting is a security event (admin.settings_changed: key, old and new
-- value, who): it reaches the audit log and the server's audit log file, so weakening a rule
-- (from psql, or by whoever holds the server's login role) never goes unrecorded.
-- auth.record_event is created later (25_sessions.sql); the initial values are INSERTs.
CREATE FUNCTION auth.settings_record_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM auth.record_event('admin.settings_changed', 'success', NULL, NULL,
    jsonb_build_object('key', NEW.key, 'old', OLD.value, 'new', NEW.value, 'by', session_user::text));
  RETURN NULL;
END
$$;
COMMENT ON FUNCTION auth.settings_record_change() IS 'Internal: records a changed setting as the security event admin.settings_changed.';

-- Change trigger (only when the value really changes: a server restart re-applying the same
-- yaml records nothing).
CREATE TRIGGER settings_record_change AFTER UPDATE ON auth.settings
  FOR EACH ROW WHEN (OLD.value IS DISTINCT FROM NEW.value) EXECUTE FUNCTION auth.settings_record_change();

INSERT INTO auth.settings (key, value, kind, description) VALUES
  ('jwt_issuer', 'fluxbase', 'text',
   'The iss claim written into tokens and required when verifying them: tokens minted elsewhere are refused.'),
  ('jwt_audience', 'authenticated', 'text',
   'The aud claim written into tokens and required when verifying them.'),
  ('access_token_expiry', '15m', 'duration',
   'Lifetime of an access token. Short, because an issued access token lives on in clients until it expires (sign-out blacklists it).'),
  ('refresh_token_expiry', '7d', 'duration',
   'Lifetime of a session: a refresh token older than this is refused and the user signs in again.'),
  ('refresh_token_rotation', 'true', 'boolean',
   'Each refresh token works once and is replaced; presenting a used one again revokes the whole session (theft detection).'),
  ('password_min_length', '12', 'integer', 'Shortest password accepted, in characters.'),
  ('password_require_uppercase', 'true', 'boolean', 'A password must contain an upper-case letter.'),
  ('password_require_lowercase', 'true', 'boolean', 'A password must contain a lower-case letter.'),
  ('password_require_number', 'true', 'boolean', 'A password must contain a digit.'),
  ('password_require_special', 'true', 'boolean', 'A password must contain a character that is neither a letter nor a digit.'),
  ('password_max_age_days', '90', 'integer',
   'After this many days a sign-in only allows changing the password (0 turns expiry off).'),
  ('require_2fa_for_admins', 'true', 'boolean',
   'Accounts with an admin role must enrol TOTP: until they do, sign-in only allows enrolment.'),
  ('require_2fa_for_sensitive_ops', 'true', 'boolean',
   'For an account with 2FA on, password change, e-mail change, 2FA disable and admin functions need an aal2 session.'),
  ('max_login_attempts', '5', 'integer', 'Failed sign-ins (per lockout key) before the key is locked.'),
  ('lockout_duration', '15m', 'duration', 'How long a locked key stays locked, and the window failures are counted in.'),
  ('lockout_type', 'ip_and_email', 'lockout_type',
   'What failures are counted against: the e-mail, the client IP, or both (either one locks).');

-- Reads one setting; raises when the key is unknown.
CREATE FUNCTION auth.setting(setting_key text) RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  result text;
BEGIN
  SELECT s.value INTO result FROM auth.settings s WHERE s.key = setting_key;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'unknown Fluxbase setting "%"', setting_key USING ERRCODE = '22023';
  END IF;
  RETURN result;
END
$$;
COMMENT ON FUNCTION auth.setting(text) IS 'The value of one Fluxbase setting (see auth.settings).';

-- A boolean setting.
CREATE FUNCTION auth.setting_bool(setting_key text) RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$ SELECT auth.setting(setting_key)::boolean $$;
COMMENT ON FUNCTION auth.setting_bool(text) IS 'A boolean Fluxbase setting.';

-- An integer setting.
CREATE FUNCTION auth.setting_int(setting_key text) RETURNS integer
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$ SELECT auth.setting(setting_key)::integer $$;
COMMENT ON FUNCTION auth.setting_int(text) IS 'An integer Fluxbase setting.';

-- A duration setting (30s, 15m, 1h, 7d) as an interval.
CREATE FUNCTION auth.setting_interval(setting_key text) RETURNS interval
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT make_interval(secs => auth.duration_seconds(auth.setting(setting_key)))
$$;
COMMENT ON FUNCTION auth.setting_interval(text) IS 'A duration setting (30s, 15m, 1h, 7d) as an interval.';

-- Changes one setting (superuser, or whoever the administrator grants it to).
CREATE FUNCTION auth.set_setting(setting_key text, new_value text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  UPDATE auth.settings SET value = new_value WHERE key = setting_key;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'unknown Fluxbase setting "%"', setting_key USING ERRCODE = '22023';
  END IF;
END
$$;
COMMENT ON FUNCTION auth.set_setting(text, text) IS 'Change one Fluxbase setting; an unknown key or a malformed value is refused (22023, naming the key).';
REVOKE ALL ON FUNCTION auth.set_setting(text, text) FROM PUBLIC;

-- Applies the `auth:` section of fluxbase.yaml (a flat object of key → value) in one go;
-- every key must exist and every value must be valid, or nothing changes.
CREATE FUNCTION auth.apply_settings(settings jsonb) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  item record;
BEGIN
  IF jsonb_typeof(settings) <> 'object' THEN
    RAISE EXCEPTION 'settings must be a JSON object' USING ERRCODE = '22023';
  END IF;
  FOR item IN SELECT key, CASE jsonb_typeof(value) WHEN 'string' THEN value #>> '{}' ELSE value::text END AS value
              FROM jsonb_each(settings) LOOP
    PERFORM auth.set_setting(item.key, item.value);
  END LOOP;
END
$$;
COMMENT ON FUNCTION auth.apply_settings(jsonb) IS 'Apply several settings at once (the server passes the yaml auth: section at start); all or nothing.';
REVOKE ALL ON FUNCTION auth.apply_settings(jsonb) FROM PUBLIC;

-- What a client may know before signing in: the password rules and the 2FA requirements
-- (GET /api/v1/auth/config). Nothing secret is in auth.settings, but this lists only these.
CREATE FUNCTION auth.public_config() RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT jsonb_build_object(
    'password_min_length', auth.setting_int('password_min_length'),
    'password_require_uppercase', auth.setting_bool('password_require_uppercase'),
    'password_require_lowercase', auth.setting_bool('password_require_lowercase'),
    'password_require_number', auth.setting_bool('password_require_number'),
    'password_require_special', auth.setting_bool('password_require_special'),
    'require_2fa_for_admins', auth.setting_bool('require_2fa_for_admins'),
    'access_token_expiry_seconds', extract(epoch FROM auth.setting_interval('access_token_expiry'))::bigint,
    'mfa_types', jsonb_build_array('totp'))
$$;
COMMENT ON FUNCTION auth.public_config() IS 'Public auth configuration for clients: password rules, 2FA requirements, token lifetime.';
