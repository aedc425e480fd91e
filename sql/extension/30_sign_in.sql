-- Fluxbase extension, part 3: sign-up, sign-in, refresh, sign-out.
-- All SECURITY DEFINER with a fixed search_path: the caller (the `anon` or `authenticated`
-- role of a request) has no privilege on the auth tables; these functions are the only door.

-- Signs an access token for a session and builds the token response
-- {user, access_token, refresh_token, token_type, expires_in, expires_at}. The token names
-- the refresh token row it was issued with (claim rt), and auth.authenticate refuses it while
-- that row does not exist: a refresh rolled back by its caller leaves none, so the access
-- token it returned is worthless (SQL with the server's login role could otherwise mint
-- access tokens from a stolen refresh token without ever rotating it; found by a review).
CREATE FUNCTION auth.token_response(u auth.users, session auth.sessions, refresh_token text,
                                    refresh_id bigint) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
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
    'session_id', session.id,
    'aal', session.aal,
    'amr', session.amr,
    'token_type', 'access',
    'rt', refresh_id)
    || CASE WHEN session.enrollment_only THEN '{"mfa_enrollment_required": true}'::jsonb ELSE '{}'::jsonb END;
  RETURN jsonb_build_object(
    'user', auth.user_json(u),
    'access_token', fluxbase.sign_token(claims),
    'refresh_token', refresh_token,
    'token_type', 'bearer',
    'expires_in', floor(extract(epoch FROM lifetime))::bigint,
    'expires_at', expires_at)
    -- Said at the top too (sign-in and every refresh alike), so a client knows to enrol.
    || CASE WHEN session.enrollment_only THEN '{"mfa_enrollment_required": true}'::jsonb ELSE '{}'::jsonb END;
END
$$;
COMMENT ON FUNCTION auth.token_response(auth.users, auth.sessions, text, bigint) IS 'Internal: sign an access token for a session (naming its refresh token row) and build the token response.';
REVOKE ALL ON FUNCTION auth.token_response(auth.users, auth.sessions, text, bigint) FROM PUBLIC;

-- Starts a session for a user who has proven who they are, and returns the token response.
CREATE FUNCTION auth.start_session(u auth.users, aal text, amr jsonb, client_ip inet,
                                   enrollment_only boolean DEFAULT false) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  session auth.sessions;
  refresh text := fluxbase.random_token();
  refresh_id bigint;
BEGIN
  INSERT INTO auth.sessions (user_id, aal, amr, ip, enrollment_only, expires_at)
  VALUES (u.id, aal, amr, client_ip, enrollment_only, now() + auth.setting_interval('refresh_token_expiry'))
  RETURNING * INTO session;
  INSERT INTO auth.refresh_tokens (session_id, token_hash) VALUES (session.id, auth.token_hash(refresh))
  RETURNING id INTO refresh_id;
  UPDATE auth.users SET last_sign_in_at = now() WHERE id = u.id;
  RETURN auth.token_response(u, session, refresh, refresh_id);
END
$$;
COMMENT ON FUNCTION auth.start_session(auth.users, text, jsonb, inet, boolean) IS 'Internal: create a session and its first refresh token; return the token response.';
REVOKE ALL ON FUNCTION auth.start_session(auth.users, text, jsonb, inet, boolean) FROM PUBLIC;

-- Creates an account and signs it in.
-- Errors: FB400 (invalid e-mail or metadata), FB422 (weak password, every rule in DETAIL),
-- FB409 (refused; the message does not say whether the address is taken).
CREATE FUNCTION auth.sign_up(email text, password text, user_metadata jsonb DEFAULT '{}'::jsonb,
                             client_ip inet DEFAULT NULL) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  normalized text := auth.normalize_email(sign_up.email);
  created auth.users;
BEGIN
  IF normalized IS NULL OR normalized !~ '^[^@\s]+@[^@\s]+\.[^@\s]+$' OR length(normalized) > 320 THEN
    RAISE EXCEPTION 'a valid email address is required' USING ERRCODE = 'FB400';
  END IF;
  PERFORM auth.check_metadata(sign_up.user_metadata);
  PERFORM auth.check_password_policy(sign_up.password);
  BEGIN
    INSERT INTO auth.users (email, encrypted_password, user_metadata)
    VALUES (normalized, fluxbase.hash_password(sign_up.password), coalesce(sign_up.user_metadata, '{}'::jsonb))
    RETURNING * INTO created;
  EXCEPTION WHEN unique_violation THEN
    RAISE EXCEPTION 'unable to sign up with this email and password' USING ERRCODE = 'FB409';
  END;
  PERFORM auth.record_event('auth.signup', 'success', created.id, client_ip);
  RETURN auth.start_session(created, 'aal1', '["password"]'::jsonb, client_ip);
END
$$;
COMMENT ON FUNCTION auth.sign_up(text, text, jsonb, inet) IS
  'Create an account (policy-checked, argon2id-hashed password) and sign it in. FB400 invalid input, FB422 weak password, FB409 refused.';

-- Checks e-mail and password and signs in. Returns the token response, or
-- {"error": {"code": "INVALID_CREDENTIALS"}} for a wrong password, an unknown e-mail, a
-- locked key or a banned account alike (same work, same answer). It returns rather than
-- raises so that the failure counter it just incremented is committed.
-- Other outcomes: {requires_password_change, password_change_token, expires_in} when the
-- password is older than password_max_age_days.
CREATE FUNCTION auth.sign_in(email text, password text, client_ip inet DEFAULT NULL) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  normalized text := auth.normalize_email(sign_in.email);
  keys text[] := auth.lockout_keys(normalized, client_ip);
  locked boolean;
  account auth.users;
  account_found boolean;
  password_ok boolean;
  max_age int := auth.setting_int('password_max_age_days');
BEGIN
  locked := auth.lock_attempt_keys(keys);
  SELECT * INTO account FROM auth.users u WHERE u.email = normalized;
  account_found := FOUND;
  -- Always one full argon2 verification: against a dummy hash when there is no account or
  -- the key is locked, so timing does not tell them apart.
  password_ok := fluxbase.verify_password(
    CASE WHEN locked THEN NULL ELSE account.encrypted_password END, coalesce(sign_in.password, ''));
  IF locked OR NOT account_found OR NOT password_ok
     OR (account.banned_until IS NOT NULL AND account.banned_until > now()) THEN
    IF NOT locked THEN
      PERFORM auth.record_login_failure(keys, client_ip);
    END IF;
    PERFORM auth.record_event('auth.login', CASE WHEN locked THEN 'locked' ELSE 'failure' END,
      CASE WHEN account_found THEN account.id END, client_ip);
    RETURN auth.failure('INVALID_CREDENTIALS', 'invalid login credentials');
  END IF;

  -- Success: the e-mail's counter starts again (the IP's runs out on its own, so one valid
  -- account cannot be used to reset an attacker's IP counter). With 2FA on, only a completed
  -- second step resets it, so wrong codes keep adding up across password steps.
  IF NOT auth.has_mfa(account.id) THEN
    PERFORM auth.clear_login_failures(ARRAY(SELECT k FROM unnest(keys) AS k WHERE k LIKE 'email:%'));
  END IF;
  IF fluxbase.password_needs_rehash(account.encrypted_password) THEN
    UPDATE auth.users SET encrypted_password = fluxbase.hash_password(sign_in.password)
    WHERE id = account.id RETURNING * INTO account;
  END IF;
  PERFORM auth.record_event('auth.login', 'success', account.id, client_ip);

  IF max_age > 0 AND account.password_changed_at + make_interval(days => max_age) < now() THEN
    RETURN auth.issue_one_time_token(account.id, 'password_change', interval '15 minutes', client_ip);
  END IF;
  RETURN auth.complete_password_step(account, client_ip);
END
$$;
COMMENT ON FUNCTION auth.sign_in(text, text, inet) IS
  'Verify e-mail and password (lockout-counted) and return the token response, a 2FA challenge, a password-change demand, or {"error":{"code":"INVALID_CREDENTIALS"}}.';

-- Creates a single-use token of `kind` and returns the response that carries it.
CREATE FUNCTION auth.issue_one_time_token(user_id uuid, kind text, lifetime interval, client_ip inet) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  token text := fluxbase.random_token();
BEGIN
  INSERT INTO auth.one_time_tokens (token_hash, kind, user_id, expires_at, ip)
  VALUES (auth.token_hash(token), kind, user_id, now() + lifetime, client_ip);
  RETURN CASE kind
    WHEN 'password_change' THEN jsonb_build_object('requires_password_change', true,
      'password_change_token', token, 'expires_in', extract(epoch FROM lifetime)::bigint)
    WHEN 'mfa_challenge' THEN jsonb_build_object('requires_2fa', true,
      'mfa_token', token, 'expires_in', extract(epoch FROM lifetime)::bigint)
    ELSE jsonb_build_object('token', token, 'expires_in', extract(epoch FROM lifetime)::bigint)
  END;
END
$$;
COMMENT ON FUNCTION auth.issue_one_time_token(uuid, text, interval, inet) IS 'Internal: create a hashed single-use token and return the response carrying it.';
REVOKE ALL ON FUNCTION auth.issue_one_time_token(uuid, text, interval, inet) FROM PUBLIC;

-- Consumes a single-use token of `kind` (row-locked, so two parallel requests cannot both
-- use it) and returns its user id, or NULL when unknown, used or expired.
CREATE FUNCTION auth.consume_one_time_token(token text, kind text) RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  found_token auth.one_time_tokens;
BEGIN
  SELECT * INTO found_token FROM auth.one_time_tokens t
  WHERE t.token_hash = auth.token_hash(consume_one_time_token.token) AND t.kind = consume_one_time_token.kind
  FOR UPDATE;
  IF NOT FOUND OR found_token.used_at IS NOT NULL OR found_token.expires_at <= now() THEN
    RETURN NULL;
  END IF;
  UPDATE auth.one_time_tokens SET used_at = now() WHERE token_hash = found_token.token_hash;
  RETURN found_token.user_id;
END
$$;
COMMENT ON FUNCTION auth.consume_one_time_token(text, text) IS 'Internal: use a single-use token once; NULL when unknown, used or expired.';
REVOKE ALL ON FUNCTION auth.consume_one_time_token(text, text) FROM PUBLIC;

-- What follows a correct password: a 2FA challenge when the account has TOTP, otherwise a
-- session. (The 2FA slice replaces this function's body.)
CREATE FUNCTION auth.complete_password_step(account auth.users, client_ip inet) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  RETURN auth.start_session(account, 'aal1', '["password"]'::jsonb, client_ip);
END
$$;
COMMENT ON FUNCTION auth.complete_password_step(auth.users, inet) IS 'Internal: after a correct password, a 2FA challenge or a session.';
REVOKE ALL ON FUNCTION auth.complete_password_step(auth.users, inet) FROM PUBLIC;

-- Exchanges a refresh token for a new token pair. With rotation on, each refresh token works
-- once; presenting a used one again revokes the whole session (someone else has a copy).
-- Returns the token response or {"error": {"code": "INVALID_REFRESH_TOKEN"}}.
CREATE FUNCTION auth.refresh(refresh_token text, client_ip inet DEFAULT NULL) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  presented auth.refresh_tokens;
  session auth.sessions;
  account auth.users;
  next_token text := refresh.refresh_token;
  next_id bigint;
BEGIN
  SELECT * INTO presented FROM auth.refresh_tokens t WHERE t.token_hash = auth.token_hash(refresh.refresh_token) FOR UPDATE;
  IF NOT FOUND THEN
    RETURN auth.failure('INVALID_REFRESH_TOKEN', 'invalid refresh token');
  END IF;
  SELECT * INTO session FROM auth.sessions s WHERE s.id = presented.session_id FOR UPDATE;
  IF session.revoked_at IS NOT NULL OR session.expires_at <= now() THEN
    RETURN auth.failure('INVALID_REFRESH_TOKEN', 'invalid refresh token');
  END IF;
  IF presented.used_at IS NOT NULL AND auth.setting_bool('refresh_token_rotation') THEN
    PERFORM auth.revoke_session(session.id, 'refresh_token_reuse');
    PERFORM auth.record_event('auth.refresh', 'reuse_detected', session.user_id, client_ip,
      jsonb_build_object('session_id', session.id));
    RETURN auth.failure('INVALID_REFRESH_TOKEN', 'invalid refresh token');
  END IF;
  SELECT * INTO account FROM auth.users u WHERE u.id = session.user_id;
  IF account.banned_until IS NOT NULL AND account.banned_until > now() THEN
    RETURN auth.failure('INVALID_REFRESH_TOKEN', 'invalid refresh token');
  END IF;
  next_id := presented.id;
  IF auth.setting_bool('refresh_token_rotation') THEN
    next_token := fluxbase.random_token();
    UPDATE auth.refresh_tokens SET used_at = now() WHERE id = presented.id;
    INSERT INTO auth.refresh_tokens (session_id, token_hash, parent_id)
    VALUES (session.id, auth.token_hash(next_token), presented.id)
    RETURNING id INTO next_id;
  END IF;
  UPDATE auth.sessions SET refreshed_at = now() WHERE id = session.id;
  RETURN auth.token_response(account, session, next_token, next_id);
END
$$;
COMMENT ON FUNCTION auth.refresh(text, inet) IS
  'Exchange a refresh token for a new pair (single-use with rotation; reuse revokes the session). Returns the token response or {"error":{"code":"INVALID_REFRESH_TOKEN"}}.';

-- Signs the caller out: blacklists this access token at once and revokes its session, or
-- with scope 'global' every session of the user. An enrolment-only session (an admin who must
-- enrol 2FA first: anon to every policy, so auth.uid() is NULL) can sign out too; its claims
-- come from fluxbase.enrolment_claims() (auth.mfa_user: the signed-in user, or that admin).
CREATE FUNCTION auth.sign_out(scope text DEFAULT 'local') RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  claims jsonb := coalesce(auth.jwt(), fluxbase.enrolment_claims());
  who uuid := auth.mfa_user();
  sid uuid;
BEGIN
  IF scope NOT IN ('local', 'global', 'others') THEN
    RAISE EXCEPTION 'scope must be local, global or others' USING ERRCODE = 'FB400';
  END IF;
  IF who IS NULL THEN
    RAISE EXCEPTION 'sign-out needs a signed-in user' USING ERRCODE = '42501';
  END IF;
  IF scope <> 'others' THEN
    INSERT INTO auth.revoked_tokens (jti, expires_at)
    VALUES (claims->>'jti', to_timestamp((claims->>'exp')::bigint)) ON CONFLICT (jti) DO NOTHING;
  END IF;
  FOR sid IN
    SELECT s.id FROM auth.sessions s
    WHERE s.user_id = who AND s.revoked_at IS NULL
      AND CASE scope WHEN 'local' THEN s.id = auth.session_id()
                     WHEN 'others' THEN s.id <> auth.session_id()
                     ELSE true END
  LOOP
    PERFORM auth.revoke_session(sid, 'sign_out');
  END LOOP;
  PERFORM auth.record_event('auth.logout', 'success', who, NULL, jsonb_build_object('scope', scope));
  DELETE FROM auth.revoked_tokens WHERE expires_at < now();
END
$$;
COMMENT ON FUNCTION auth.sign_out(text) IS 'Blacklist the current access token and revoke its session (scope local), all sessions (global) or all others (others).';

-- The signed-in user of this request, as the API shows it (NULL when anonymous).
CREATE FUNCTION auth.me() RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT auth.user_json(u) FROM auth.users u WHERE u.id = auth.uid()
$$;
COMMENT ON FUNCTION auth.me() IS 'The verified user of this request (no hash or counters), or NULL.';
