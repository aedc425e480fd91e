-- Fluxbase extension, part 2: accounts.

-- Canonical form of an e-mail address: trimmed, Unicode NFKC, lower-case. Applied once on
-- every path (sign-up, sign-in, lockout keys, reset) so two spellings are one account.
CREATE FUNCTION auth.normalize_email(email text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog AS $$
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
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE auth.users IS 'Fluxbase accounts. encrypted_password is an argon2id PHC string.';
COMMENT ON COLUMN auth.users.role IS 'Application role put in the token''s role claim; mapped to a database role by auth.authenticate.';

-- Unique case-insensitively (the stored form is already normalised; lower() guards hand edits).
CREATE UNIQUE INDEX users_email_key ON auth.users (lower(email));

-- The public view of an account: never the hash, a secret or a counter.
CREATE FUNCTION auth.user_json(u auth.users) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = pg_catalog AS $$
  SELECT jsonb_build_object(
    'id', u.id, 'email', u.email, 'email_verified', u.email_verified, 'role', u.role,
    'user_metadata', u.user_metadata, 'app_metadata', u.app_metadata,
    'created_at', u.created_at, 'updated_at', u.updated_at)
$$;
COMMENT ON FUNCTION auth.user_json(auth.users) IS 'An account as returned by the API: no hash, secret or counter.';
REVOKE ALL ON FUNCTION auth.user_json(auth.users) FROM PUBLIC;
