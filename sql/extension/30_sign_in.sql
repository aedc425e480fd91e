-- Fluxbase extension, part 3: sign-up and sign-in.
-- All SECURITY DEFINER with a fixed search_path: the caller (the `anon` role of a request)
-- has no privilege on auth.users; these functions are the only door.

-- The token response for a user: {user, access_token, refresh_token, token_type, expires_in, expires_at}.
CREATE FUNCTION auth.token_response(u auth.users) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
  lifetime interval := auth.setting_interval('access_token_expiry');
  issued_at timestamptz := clock_timestamp();
  expires_at bigint := floor(extract(epoch FROM issued_at + lifetime))::bigint;
  claims jsonb;
BEGIN
  claims := jsonb_build_object(
    'sub', u.id,
    'role', u.role,
    'email', u.email,
    'iat', floor(extract(epoch FROM issued_at))::bigint,
    'exp', expires_at,
    'iss', auth.setting('jwt_issuer'),
    'aud', auth.setting('jwt_audience'),
    'jti', gen_random_uuid(),
    'token_type', 'access');
  RETURN jsonb_build_object(
    'user', auth.user_json(u),
    'access_token', fluxbase.sign_token(claims),
    'refresh_token', NULL,
    'token_type', 'bearer',
    'expires_in', floor(extract(epoch FROM lifetime))::bigint,
    'expires_at', expires_at);
END
$$;
COMMENT ON FUNCTION auth.token_response(auth.users) IS 'Internal: signs an access token for a user and builds the token response.';
REVOKE ALL ON FUNCTION auth.token_response(auth.users) FROM PUBLIC;

-- Creates an account and signs it in.
-- Errors: FB400 (invalid e-mail or metadata), FB409 (sign-up refused; the message does not
-- say whether the address is taken).
CREATE FUNCTION auth.sign_up(email text, password text, user_metadata jsonb DEFAULT '{}'::jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
  normalized text := auth.normalize_email(sign_up.email);
  created auth.users;
BEGIN
  IF normalized IS NULL OR normalized !~ '^[^@\s]+@[^@\s]+\.[^@\s]+$' OR length(normalized) > 320 THEN
    RAISE EXCEPTION 'a valid email address is required' USING ERRCODE = 'FB400';
  END IF;
  IF sign_up.password IS NULL OR sign_up.password = '' THEN
    RAISE EXCEPTION 'a password is required' USING ERRCODE = 'FB400';
  END IF;
  IF octet_length(sign_up.password) > 1024 THEN
    RAISE EXCEPTION 'the password is longer than 1024 bytes' USING ERRCODE = 'FB400';
  END IF;
  IF sign_up.user_metadata IS NOT NULL AND jsonb_typeof(sign_up.user_metadata) <> 'object' THEN
    RAISE EXCEPTION 'user_metadata must be a JSON object' USING ERRCODE = 'FB400';
  END IF;
  BEGIN
    INSERT INTO auth.users (email, encrypted_password, user_metadata)
    VALUES (normalized, fluxbase.hash_password(sign_up.password), coalesce(sign_up.user_metadata, '{}'::jsonb))
    RETURNING * INTO created;
  EXCEPTION WHEN unique_violation THEN
    RAISE EXCEPTION 'unable to sign up with this email and password' USING ERRCODE = 'FB409';
  END;
  RETURN auth.token_response(created);
END
$$;
COMMENT ON FUNCTION auth.sign_up(text, text, jsonb) IS
  'Create an account (argon2id-hashed password) and return the token response. FB400 on invalid input, FB409 when refused.';

-- Checks a password and returns the token response. A wrong password and an unknown e-mail
-- raise the same error after the same amount of argon2 work.
CREATE FUNCTION auth.sign_in(email text, password text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
  account auth.users;
  account_found boolean;
  password_ok boolean;
BEGIN
  SELECT * INTO account FROM auth.users u WHERE u.email = auth.normalize_email(sign_in.email);
  account_found := FOUND;
  -- With no account the hash is NULL and verify_password checks a dummy hash instead.
  password_ok := fluxbase.verify_password(account.encrypted_password, coalesce(sign_in.password, ''));
  IF NOT account_found OR NOT password_ok THEN
    RAISE EXCEPTION 'invalid login credentials' USING ERRCODE = '28P01';
  END IF;
  RETURN auth.token_response(account);
END
$$;
COMMENT ON FUNCTION auth.sign_in(text, text) IS
  'Verify e-mail and password and return the token response; 28P01 "invalid login credentials" for any failure.';

-- The signed-in user of this request, as the API shows it (NULL when anonymous).
CREATE FUNCTION auth.me() RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog AS $$
  SELECT auth.user_json(u) FROM auth.users u WHERE u.id = auth.uid()
$$;
COMMENT ON FUNCTION auth.me() IS 'The verified user of this request (no hash or counters), or NULL.';
