-- Fluxbase extension, part 5: TOTP two-factor authentication.
-- A code works once (the factor remembers the last time step used); wrong codes count toward
-- the same lockout as wrong passwords; a 2FA sign-in can only be completed with the
-- mfa_token that the password step returned.

-- Application roles that count as administrators for require_2fa_for_admins.
CREATE FUNCTION auth.is_admin_role(role text) RETURNS boolean
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT role IN ('admin', 'dashboard_admin', 'service_role')
$$;
COMMENT ON FUNCTION auth.is_admin_role(text) IS 'Whether an application role is an administrator role (admin, dashboard_admin, service_role).';

-- The user a 2FA enrolment function acts for: the signed-in user, or in an enrolment-only
-- session (an admin who must enrol first, whose auth.uid() is NULL so that it reaches no
-- data) the admin enrolling. Only for the functions below (not callable by API roles).
CREATE FUNCTION auth.mfa_user() RETURNS uuid
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT coalesce(auth.uid(), (fluxbase.enrolment_claims() ->> 'sub')::uuid)
$$;
COMMENT ON FUNCTION auth.mfa_user() IS 'Internal: the user a 2FA enrolment function acts for (auth.uid(), or the admin of an enrolment-only session).';

-- That user's e-mail (for the otpauth URI's label).
CREATE FUNCTION auth.mfa_email() RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT coalesce(auth.email(), fluxbase.enrolment_claims() ->> 'email')
$$;
COMMENT ON FUNCTION auth.mfa_email() IS 'Internal: the e-mail of auth.mfa_user().';

-- Starts (or restarts) TOTP enrolment for the caller: a new secret, not active until enabled.
-- Returns {id, type: "totp", totp: {secret, uri}}; the server adds the QR code.
CREATE FUNCTION auth.mfa_setup() RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  secret text := fluxbase.totp_new_secret();
  factor auth.mfa_factors;
BEGIN
  IF auth.mfa_user() IS NULL THEN
    RAISE EXCEPTION '2FA setup needs a signed-in user' USING ERRCODE = '42501';
  END IF;
  IF auth.has_mfa(auth.mfa_user()) THEN
    RAISE EXCEPTION '2FA is already enabled; disable it first' USING ERRCODE = 'FB400';
  END IF;
  INSERT INTO auth.mfa_factors (user_id, secret_encrypted)
  VALUES (auth.mfa_user(), fluxbase.encrypt_secret(secret))
  ON CONFLICT (user_id) DO UPDATE SET secret_encrypted = EXCLUDED.secret_encrypted, last_used_step = NULL, updated_at = now()
  RETURNING * INTO factor;
  RETURN jsonb_build_object('id', factor.id, 'type', 'totp',
    'totp', jsonb_build_object('secret', secret, 'uri', fluxbase.totp_uri(secret, auth.mfa_email())));
END
$$;
COMMENT ON FUNCTION auth.mfa_setup() IS 'Start TOTP enrolment: returns {id, type, totp: {secret, uri}}; active only after auth.mfa_enable(code).';

-- Activates the enrolment with a first code and the account's password; returns {success,
-- backup_codes: [10 codes]}. The password because a stolen session alone must not be able to
-- put the thief's authenticator on the account (and, as enabling ends the other sessions,
-- lock the owner out; found by a red-team review). A wrong one counts toward the lockout.
CREATE FUNCTION auth.mfa_enable(code text, password text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  account auth.users;
  factor auth.mfa_factors;
  step bigint;
  codes text[];
BEGIN
  SELECT * INTO account FROM auth.users WHERE id = auth.mfa_user();
  IF NOT FOUND THEN
    RAISE EXCEPTION 'enabling 2FA needs a signed-in user' USING ERRCODE = '42501';
  END IF;
  IF NOT auth.proves_password(account, password) THEN
    RETURN auth.failure('INVALID_CREDENTIALS', 'the password is not valid');
  END IF;
  SELECT * INTO factor FROM auth.mfa_factors f WHERE f.user_id = auth.mfa_user() AND f.status = 'unverified' FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no 2FA enrolment is pending; call setup first' USING ERRCODE = 'FB400';
  END IF;
  step := fluxbase.totp_match(fluxbase.decrypt_secret(factor.secret_encrypted), code, factor.last_used_step);
  IF step IS NULL THEN
    RAISE EXCEPTION 'the code is not valid' USING ERRCODE = 'FB401';
  END IF;
  UPDATE auth.mfa_factors SET status = 'verified', last_used_step = step, updated_at = now() WHERE id = factor.id;
  SELECT array_agg(upper(substr(fluxbase.random_token(), 1, 10))) INTO codes FROM generate_series(1, 10);
  DELETE FROM auth.mfa_backup_codes WHERE user_id = auth.mfa_user();
  INSERT INTO auth.mfa_backup_codes (user_id, code_hash) SELECT auth.mfa_user(), auth.token_hash(c) FROM unnest(codes) AS c;
  -- The account's other sessions were opened with the password alone (a thief's among them,
  -- perhaps): they end, and from now on a sign-in needs the second factor too.
  PERFORM auth.revoke_session(s.id, '2fa_enabled') FROM auth.sessions s
  WHERE s.user_id = auth.mfa_user() AND s.revoked_at IS NULL AND s.id IS DISTINCT FROM auth.session_id();
  PERFORM auth.record_event('auth.2fa_enable', 'success', auth.mfa_user());
  RETURN jsonb_build_object('success', true, 'backup_codes', to_jsonb(codes));
END
$$;
COMMENT ON FUNCTION auth.mfa_enable(text, text) IS 'Activate TOTP with a first code and the password; returns 10 single-use backup codes (stored hashed).';

-- Checks a code for a user: a TOTP code from an unused time step, or an unused backup code.
-- Marks it used. Returns the method ('totp' / 'backup_code') or NULL.
CREATE FUNCTION auth.mfa_check_code(user_id uuid, code text) RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  factor auth.mfa_factors;
  step bigint;
  backup_id bigint;
BEGIN
  SELECT * INTO factor FROM auth.mfa_factors f WHERE f.user_id = mfa_check_code.user_id AND f.status = 'verified' FOR UPDATE;
  IF NOT FOUND OR code IS NULL THEN
    RETURN NULL;
  END IF;
  step := fluxbase.totp_match(fluxbase.decrypt_secret(factor.secret_encrypted), code, factor.last_used_step);
  IF step IS NOT NULL THEN
    UPDATE auth.mfa_factors SET last_used_step = step, updated_at = now() WHERE id = factor.id;
    RETURN 'totp';
  END IF;
  SELECT b.id INTO backup_id FROM auth.mfa_backup_codes b
  WHERE b.user_id = mfa_check_code.user_id AND b.used_at IS NULL AND b.code_hash = auth.token_hash(upper(btrim(code)))
  FOR UPDATE;
  IF FOUND THEN
    UPDATE auth.mfa_backup_codes SET used_at = now() WHERE id = backup_id;
    RETURN 'backup_code';
  END IF;
  RETURN NULL;
END
$$;
COMMENT ON FUNCTION auth.mfa_check_code(uuid, text) IS 'Internal: accept a TOTP code (each time step once) or an unused backup code, and mark it used.';
REVOKE ALL ON FUNCTION auth.mfa_check_code(uuid, text) FROM PUBLIC;

-- Completes a 2FA sign-in: the mfa_token from the password step plus a code. Wrong codes
-- count toward the lockout. Returns the token response (aal2) or {"error": {...}}.
CREATE FUNCTION auth.mfa_verify(mfa_token text, code text, client_ip inet DEFAULT NULL) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  challenge auth.one_time_tokens;
  account auth.users;
  keys text[];
  method text;
BEGIN
  SELECT * INTO challenge FROM auth.one_time_tokens t
  WHERE t.token_hash = auth.token_hash(mfa_verify.mfa_token) AND t.kind = 'mfa_challenge' FOR UPDATE;
  IF NOT FOUND OR challenge.used_at IS NOT NULL OR challenge.expires_at <= now() THEN
    RETURN auth.failure('INVALID_MFA_TOKEN', 'invalid or expired 2FA challenge');
  END IF;
  IF challenge.attempts >= auth.setting_int('max_login_attempts') THEN
    UPDATE auth.one_time_tokens SET used_at = now() WHERE token_hash = challenge.token_hash;
    RETURN auth.failure('INVALID_MFA_TOKEN', 'invalid or expired 2FA challenge');
  END IF;
  SELECT * INTO account FROM auth.users u WHERE u.id = challenge.user_id;
  keys := auth.lockout_keys(account.email, client_ip);
  IF auth.lock_attempt_keys(keys) THEN
    PERFORM auth.record_event('auth.2fa_verify', 'locked', account.id, client_ip);
    RETURN auth.failure('INVALID_MFA_CODE', 'invalid 2FA code');
  END IF;
  method := auth.mfa_check_code(account.id, code);
  IF method IS NULL THEN
    PERFORM auth.record_login_failure(keys, client_ip);
    UPDATE auth.one_time_tokens SET attempts = attempts + 1 WHERE token_hash = challenge.token_hash;
    PERFORM auth.record_event('auth.2fa_verify', 'failure', account.id, client_ip);
    RETURN auth.failure('INVALID_MFA_CODE', 'invalid 2FA code');
  END IF;
  UPDATE auth.one_time_tokens SET used_at = now() WHERE token_hash = challenge.token_hash;
  PERFORM auth.clear_login_failures(ARRAY(SELECT k FROM unnest(keys) AS k WHERE k LIKE 'email:%'));
  PERFORM auth.record_event('auth.login', 'success', account.id, client_ip, jsonb_build_object('mfa', method));
  RETURN auth.start_session(account, 'aal2', jsonb_build_array('password', CASE method WHEN 'totp' THEN 'totp' ELSE 'recovery' END), client_ip);
END
$$;
COMMENT ON FUNCTION auth.mfa_verify(text, text, inet) IS
  'Second sign-in step: the mfa_token from the password step and a TOTP or backup code; returns an aal2 token response or {"error":{...}}.';

-- Turns 2FA off: needs the password and a current code (and an aal2 session when
-- require_2fa_for_sensitive_ops is on).
CREATE FUNCTION auth.mfa_disable(password text, code text) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  account auth.users;
BEGIN
  SELECT * INTO account FROM auth.users WHERE id = auth.uid();
  IF NOT FOUND THEN
    RAISE EXCEPTION 'disabling 2FA needs a signed-in user' USING ERRCODE = '42501';
  END IF;
  IF NOT auth.has_mfa(account.id) THEN
    RAISE EXCEPTION '2FA is not enabled' USING ERRCODE = 'FB400';
  END IF;
  PERFORM auth.require_sensitive_op_assurance();
  IF NOT auth.proves_password(account, password) THEN
    RETURN auth.failure('INVALID_CREDENTIALS', 'the password or the code is not valid');
  END IF;
  -- A wrong code counts toward the lockout like a wrong password (else a stolen session with
  -- the password could guess codes here without end; found by a review).
  IF auth.mfa_check_code(account.id, code) IS NULL THEN
    PERFORM auth.record_login_failure(ARRAY['email:' || account.email], NULL);
    RETURN auth.failure('INVALID_CREDENTIALS', 'the password or the code is not valid');
  END IF;
  DELETE FROM auth.mfa_factors WHERE user_id = account.id;
  DELETE FROM auth.mfa_backup_codes WHERE user_id = account.id;
  PERFORM auth.record_event('auth.2fa_disable', 'success', account.id);
  RETURN jsonb_build_object('success', true);
END
$$;
COMMENT ON FUNCTION auth.mfa_disable(text, text) IS 'Turn 2FA off with the password and a current code (aal2 needed under require_2fa_for_sensitive_ops).';

-- The caller's 2FA state.
CREATE FUNCTION auth.mfa_status() RETURNS jsonb
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT jsonb_build_object(
    'enabled', coalesce(bool_or(f.status = 'verified'), false),
    'pending', coalesce(bool_or(f.status = 'unverified'), false),
    'type', CASE WHEN bool_or(f.status = 'verified') THEN 'totp' END,
    'backup_codes_left', (SELECT count(*) FROM auth.mfa_backup_codes b WHERE b.user_id = auth.mfa_user() AND b.used_at IS NULL))
  FROM auth.mfa_factors f WHERE f.user_id = auth.mfa_user()
$$;
COMMENT ON FUNCTION auth.mfa_status() IS 'The caller''s 2FA state: {enabled, pending, type, backup_codes_left}.';

-- After a correct password: a 2FA challenge when the account has TOTP; for an admin role
-- without 2FA (require_2fa_for_admins), a session that only allows enrolling; otherwise a session.
CREATE OR REPLACE FUNCTION auth.complete_password_step(account auth.users, client_ip inet) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF auth.has_mfa(account.id) THEN
    RETURN auth.issue_one_time_token(account.id, 'mfa_challenge', interval '5 minutes', client_ip);
  END IF;
  IF auth.setting_bool('require_2fa_for_admins') AND auth.is_admin_role(account.role) THEN
    RETURN auth.start_session(account, 'aal1', '["password"]'::jsonb, client_ip, true)
           || jsonb_build_object('mfa_enrollment_required', true);
  END IF;
  RETURN auth.start_session(account, 'aal1', '["password"]'::jsonb, client_ip);
END
$$;
