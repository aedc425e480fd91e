-- Fluxbase extension, part 2: accounts.

-- Canonical form of an e-mail address: trimmed, Unicode NFKC, lower-case. Applied once on
-- every path (sign-up, sign-in, lockout keys, reset) so two spellings are one account.
CREATE FUNCTION auth.normalize_email(email text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
  SELECT lower(normalize(btrim(email), NFKC))
$$;
COMMENT ON FUNCTION auth.normalize_email(text) IS 'Canonical e-mail: trim, NFKC, lower-case.';

-- The accounts. Only the extension's SECURITY DEFINER functions touch this table; no API
-- role has any privilege on it.
CREATE TABLE auth.users (
  id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  email              text NOT NULL CHECK (email = auth.normalize_email(email) AND email ~ '^[^@\s]+@[^@\s]+$'),
  encrypted_password text NOT NULL,
  role               text NOT NULL DEFAULT 'authenticated',
  email_verified     boolean NOT NULL DEFAULT false,
  user_metadata      jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(user_metadata) = 'object'),
  app_metadata       jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(app_metadata) = 'object'),
  password_changed_at timestamptz NOT NULL DEFAULT now(),
  banned_until       timestamptz,
  last_sign_in_at    timestamptz,
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE auth.users IS 'Fluxbase accounts. encrypted_password is an argon2id PHC string.';
COMMENT ON COLUMN auth.users.banned_until IS 'While in the future, sign-in, refresh and every existing token of the user are refused.';
COMMENT ON COLUMN auth.users.role IS 'Application role put in the token''s role claim; mapped to a database role by auth.authenticate.';

-- Unique case-insensitively (the stored form is already normalised; lower() guards hand edits).
CREATE UNIQUE INDEX users_email_key ON auth.users (lower(email));

-- The public view of an account: never the hash, a secret or a counter.
CREATE FUNCTION auth.user_json(u auth.users) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT jsonb_build_object(
    'id', u.id, 'email', u.email, 'email_verified', u.email_verified, 'role', u.role,
    'user_metadata', u.user_metadata, 'app_metadata', u.app_metadata,
    'created_at', u.created_at, 'updated_at', u.updated_at)
$$;
COMMENT ON FUNCTION auth.user_json(auth.users) IS 'An account as returned by the API: no hash, secret or counter.';
REVOKE ALL ON FUNCTION auth.user_json(auth.users) FROM PUBLIC;

-- Every rule of the password policy the password breaks (empty when it is acceptable).
-- Lengths count characters; the byte cap keeps argon2 from being fed megabytes.
CREATE FUNCTION auth.password_problems(password text) RETURNS text[]
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  problems text[] := '{}';
  min_length int := auth.setting_int('password_min_length');
BEGIN
  IF password IS NULL THEN
    RETURN ARRAY['a password is required'];
  END IF;
  IF octet_length(password) > 1024 THEN
    problems := problems || 'must be at most 1024 bytes long'::text;
  END IF;
  IF char_length(password) < min_length THEN
    problems := problems || format('must be at least %s characters long', min_length);
  END IF;
  IF auth.setting_bool('password_require_uppercase') AND password !~ '[[:upper:]]' THEN
    problems := problems || 'must contain an upper-case letter'::text;
  END IF;
  IF auth.setting_bool('password_require_lowercase') AND password !~ '[[:lower:]]' THEN
    problems := problems || 'must contain a lower-case letter'::text;
  END IF;
  IF auth.setting_bool('password_require_number') AND password !~ '[[:digit:]]' THEN
    problems := problems || 'must contain a digit'::text;
  END IF;
  IF auth.setting_bool('password_require_special') AND password !~ '[^[:alnum:]]' THEN
    problems := problems || 'must contain a special character (neither letter nor digit)'::text;
  END IF;
  RETURN problems;
END
$$;
COMMENT ON FUNCTION auth.password_problems(text) IS 'Every password-policy rule (auth.settings password_*) the password breaks; empty when acceptable.';

-- Raises FB422 (WEAK_PASSWORD) listing every broken rule in DETAIL as a JSON array.
CREATE FUNCTION auth.check_password_policy(password text) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  problems text[] := auth.password_problems(password);
BEGIN
  IF cardinality(problems) > 0 THEN
    RAISE EXCEPTION 'the password does not meet the policy: %', array_to_string(problems, '; ')
      USING ERRCODE = 'FB422', DETAIL = to_jsonb(problems)::text;
  END IF;
END
$$;
COMMENT ON FUNCTION auth.check_password_policy(text) IS 'Raise FB422 with every broken rule (DETAIL: JSON array) unless the password meets the policy.';

-- Refuses metadata that is not an object, larger than 16 KiB, or nested deeper than 8 levels
-- (deep documents cost the server and every client that parses them).
CREATE FUNCTION auth.check_metadata(metadata jsonb) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  depth int;
BEGIN
  IF metadata IS NULL THEN
    RETURN;
  END IF;
  IF jsonb_typeof(metadata) <> 'object' THEN
    RAISE EXCEPTION 'user_metadata must be a JSON object' USING ERRCODE = 'FB400';
  END IF;
  IF octet_length(metadata::text) > 16384 THEN
    RAISE EXCEPTION 'user_metadata must be at most 16 KiB' USING ERRCODE = 'FB400';
  END IF;
  WITH RECURSIVE walk(value, level) AS (
    SELECT metadata, 1
    UNION ALL
    SELECT child.value, walk.level + 1
    FROM walk, LATERAL (
      SELECT e.value FROM jsonb_each(CASE WHEN jsonb_typeof(walk.value) = 'object' THEN walk.value END) e
      UNION ALL
      SELECT a.value FROM jsonb_array_elements(CASE WHEN jsonb_typeof(walk.value) = 'array' THEN walk.value END) a
    ) child
    WHERE walk.level <= 8)
  SELECT max(level) INTO depth FROM walk;
  IF depth > 8 THEN
    RAISE EXCEPTION 'user_metadata must be nested at most 8 levels deep' USING ERRCODE = 'FB400';
  END IF;
END
$$;
COMMENT ON FUNCTION auth.check_metadata(jsonb) IS 'FB400 unless metadata is an object of at most 16 KiB and 8 levels.';

-- A tagged failure result. Functions whose failures must still commit (a failed sign-in is
-- counted, a reused refresh token revokes its session) return this instead of raising.
CREATE FUNCTION auth.failure(code text, message text) RETURNS jsonb
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT jsonb_build_object('error', jsonb_build_object('code', code, 'message', message))
$$;
COMMENT ON FUNCTION auth.failure(text, text) IS 'The {"error": {code, message}} result of a refused sign-in, refresh or verification.';
