-- Fluxbase extension, part 4: account self-service (password change and reset, profile
-- updates) and the SQL administration functions.

-- TOTP factors (one per user). The secret is encrypted with a key the server cannot read.
CREATE TABLE auth.mfa_factors (
  id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  user_id          uuid NOT NULL UNIQUE REFERENCES auth.users (id) ON DELETE CASCADE,
  factor_type      text NOT NULL DEFAULT 'totp' CHECK (factor_type = 'totp'),
  secret_encrypted text NOT NULL,
  status           text NOT NULL DEFAULT 'unverified' CHECK (status IN ('unverified', 'verified')),
  last_used_step   bigint,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE auth.mfa_factors IS 'TOTP factors; secret_encrypted is AES-256-GCM under fluxbase.mfa_encryption_key; last_used_step stops replays.';

-- Backup codes, hashed, each usable once.
CREATE TABLE auth.mfa_backup_codes (
  id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  user_id   uuid NOT NULL REFERENCES auth.users (id) ON DELETE CASCADE,
  code_hash bytea NOT NULL,
  used_at   timestamptz
);
COMMENT ON TABLE auth.mfa_backup_codes IS 'Single-use 2FA backup codes (SHA-256 only).';
CREATE INDEX mfa_backup_codes_user_idx ON auth.mfa_backup_codes (user_id);

-- Whether a user has a verified TOTP factor.
CREATE FUNCTION auth.has_mfa(user_id uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  SELECT EXISTS (SELECT FROM auth.mfa_factors f WHERE f.user_id = has_mfa.user_id AND f.status = 'verified')
$$;
COMMENT ON FUNCTION auth.has_mfa(uuid) IS 'Whether the user has a verified TOTP factor.';
REVOKE ALL ON FUNCTION auth.has_mfa(uuid) FROM PUBLIC;

-- Raises unless this request may perform a sensitive operation: with 2FA on and
-- require_2fa_for_sensitive_ops, the session must be aal2.
CREATE FUNCTION auth.require_sensitive_op_assurance() RETURNS void
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF auth.setting_bool('require_2fa_for_sensitive_ops') AND auth.has_mfa(auth.uid())
     AND coalesce(auth.aal(), 'aal1') <> 'aal2' THEN
    RAISE EXCEPTION 'this operation needs a session verified with 2FA (aal2)' USING ERRCODE = 'FB403';
  END IF;
END
$$;
COMMENT ON FUNCTION auth.require_sensitive_op_assurance() IS 'Internal: FB403 unless an account with 2FA uses an aal2 session.';
REVOKE ALL ON FUNCTION auth.require_sensitive_op_assurance() FROM PUBLIC;

-- Checks a password of a signed-in account the way sign-in does: counted against the e-mail's
-- lockout key (and refused while it is locked), so re-entering a password cannot be used to
-- guess it. Returns whether it matched; the caller returns (not raises) on false so the
-- count commits.
CREATE FUNCTION auth.proves_password(account auth.users, password text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  keys text[] := ARRAY['email:' || account.email];
  locked boolean := auth.lock_attempt_keys(keys);
  ok boolean := fluxbase.verify_password(CASE WHEN locked THEN NULL ELSE account.encrypted_password END, password);
BEGIN
  IF locked THEN
    RETURN false;
  END IF;
  IF NOT ok THEN
    PERFORM auth.record_login_failure(keys, NULL);
    PERFORM auth.record_event('auth.password_check', 'failure', account.id);
  END IF;
  RETURN ok;
END
$$;
COMMENT ON FUNCTION auth.proves_password(auth.users, text) IS 'Internal: a lockout-counted password check for a signed-in account.';
REVOKE ALL ON FUNCTION auth.proves_password(auth.users, text) FROM PUBLIC;

-- Sets a new (policy-checked) password and revokes sessions: all of them, or all but `keep`.
CREATE FUNCTION auth.set_password(user_id uuid, new_password text, keep_session uuid DEFAULT NULL) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  sid uuid;
BEGIN
  PERFORM auth.check_password_policy(new_password);
  UPDATE auth.users u SET encrypted_password = fluxbase.hash_password(new_password),
                          password_changed_at = now(), updated_at = now()
  WHERE u.id = set_password.user_id;
  FOR sid IN SELECT s.id FROM auth.sessions s
             WHERE s.user_id = set_password.user_id AND s.revoked_at IS NULL
               AND s.id IS DISTINCT FROM keep_session LOOP
    PERFORM auth.revoke_session(sid, 'password_changed');
  END LOOP;
END
$$;
COMMENT ON FUNCTION auth.set_password(uuid, text, uuid) IS 'Internal: set a policy-checked password and revoke the other sessions.';
REVOKE ALL ON FUNCTION auth.set_password(uuid, text, uuid) FROM PUBLIC;

-- Completes a sign-in whose password had expired: the one thing it allows is a new password.
CREATE FUNCTION auth.change_expired_password(password_change_token text, new_password text,
                                             client_ip inet DEFAULT NULL) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  uid uuid := auth.consume_one_time_token(password_change_token, 'password_change');
  account auth.users;
BEGIN
  IF uid IS NULL THEN
    RETURN auth.failure('INVALID_TOKEN', 'invalid or expired password change token');
  END IF;
  SELECT * INTO account FROM auth.users WHERE id = uid;
  -- The expired password again would be no change at all (password_max_age_days would mean
  -- nothing). Raised, so the token's use rolls back and it can be used with another password.
  IF fluxbase.verify_password(account.encrypted_password, new_password) THEN
    RAISE EXCEPTION 'the password does not meet the policy: must differ from the expired password'
      USING ERRCODE = 'FB422', DETAIL = '["must differ from the expired password"]';
  END IF;
  PERFORM auth.set_password(uid, new_password);
  SELECT * INTO account FROM auth.users WHERE id = uid;
  PERFORM auth.record_event('auth.password_change', 'success', uid, client_ip);
  RETURN auth.complete_password_step(account, client_ip);
END
$$;
COMMENT ON FUNCTION auth.change_expired_password(text, text, inet) IS
  'Set a new password with the token a sign-in with an expired password returned; then continue the sign-in.';

-- Starts a password reset: returns the raw single-use token for the server to e-mail, or
-- NULL for an unknown address. Only the server's own role may call it (not anon), since the
-- token is as good as the password.
CREATE FUNCTION auth.create_password_reset(email text, client_ip inet DEFAULT NULL) RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  account_id uuid;
  token text;
BEGIN
  SELECT u.id INTO account_id FROM auth.users u WHERE u.email = auth.normalize_email(create_password_reset.email);
  PERFORM auth.record_event('auth.password_reset', CASE WHEN account_id IS NULL THEN 'unknown_email' ELSE 'requested' END,
    account_id, client_ip);
  IF account_id IS NULL THEN
    RETURN NULL;
  END IF;
  token := fluxbase.random_token();
  INSERT INTO auth.one_time_tokens (token_hash, kind, user_id, expires_at, ip)
  VALUES (auth.token_hash(token), 'password_reset', account_id, now() + interval '1 hour', client_ip);
  RETURN token;
END
$$;
COMMENT ON FUNCTION auth.create_password_reset(text, inet) IS
  'Server only: create a 1-hour single-use reset token for an account (NULL for an unknown e-mail).';

-- Completes a reset: a policy-checked new password, every session revoked, lockout cleared.
CREATE FUNCTION auth.reset_password(token text, new_password text, client_ip inet DEFAULT NULL) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  uid uuid := auth.consume_one_time_token(token, 'password_reset');
BEGIN
  IF uid IS NULL THEN
    RETURN auth.failure('INVALID_RESET_TOKEN', 'invalid or expired reset token');
  END IF;
  PERFORM auth.set_password(uid, new_password);
  PERFORM auth.clear_login_failures(ARRAY['email:' || (SELECT email FROM auth.users WHERE id = uid)]);
  PERFORM auth.record_event('auth.password_reset', 'success', uid, client_ip);
  RETURN jsonb_build_object('success', true);
END
$$;
COMMENT ON FUNCTION auth.reset_password(text, text, inet) IS
  'Use a reset token once: set a policy-checked password, revoke every session, clear the lockout.';

-- Self-service profile update. Accepts only user_metadata, email and password (the latter two
-- with current_password, or an aal2 session); any other field is refused and nothing changes.
CREATE FUNCTION auth.update_user(changes jsonb) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  account auth.users;
  field text;
BEGIN
  IF auth.uid() IS NULL THEN
    RAISE EXCEPTION 'updating a user needs a signed-in user' USING ERRCODE = '42501';
  END IF;
  IF changes IS NULL OR jsonb_typeof(changes) <> 'object' THEN
    RAISE EXCEPTION 'the body must be a JSON object' USING ERRCODE = 'FB400';
  END IF;
  FOR field IN SELECT jsonb_object_keys(changes) LOOP
    IF field NOT IN ('user_metadata', 'email', 'password', 'current_password') THEN
      RAISE EXCEPTION 'the field "%" cannot be changed here', left(field, 64) USING ERRCODE = 'FB400';
    END IF;
  END LOOP;
  SELECT * INTO account FROM auth.users WHERE id = auth.uid() FOR UPDATE;
  IF changes ? 'email' OR changes ? 'password' THEN
    PERFORM auth.require_sensitive_op_assurance();
    IF coalesce(auth.aal(), 'aal1') <> 'aal2' THEN
      IF jsonb_typeof(changes->'current_password') IS DISTINCT FROM 'string' THEN
        RAISE EXCEPTION 'changing the email or password needs the current password' USING ERRCODE = 'FB403';
      END IF;
      -- Counted like a sign-in, so a stolen access token cannot guess the password online.
      IF NOT auth.proves_password(account, changes->>'current_password') THEN
        RETURN auth.failure('INVALID_CREDENTIALS', 'the current password is not correct');
      END IF;
    END IF;
  END IF;
  IF changes ? 'user_metadata' THEN
    PERFORM auth.check_metadata(changes->'user_metadata');
    UPDATE auth.users SET user_metadata = changes->'user_metadata', updated_at = now() WHERE id = account.id;
  END IF;
  IF changes ? 'email' THEN
    IF jsonb_typeof(changes->'email') <> 'string'
       OR auth.normalize_email(changes->>'email') !~ '^[^@\s]+@[^@\s]+\.[^@\s]+$' THEN
      RAISE EXCEPTION 'a valid email address is required' USING ERRCODE = 'FB400';
    END IF;
    BEGIN
      UPDATE auth.users SET email = auth.normalize_email(changes->>'email'), email_verified = false, updated_at = now()
      WHERE id = account.id;
    EXCEPTION WHEN unique_violation THEN
      RAISE EXCEPTION 'unable to change the email address' USING ERRCODE = 'FB400';
    END;
    PERFORM auth.record_event('auth.email_change', 'success', account.id);
  END IF;
  IF changes ? 'password' THEN
    IF jsonb_typeof(changes->'password') <> 'string' THEN
      RAISE EXCEPTION 'password must be a string' USING ERRCODE = 'FB400';
    END IF;
    PERFORM auth.set_password(account.id, changes->>'password', auth.session_id());
    PERFORM auth.record_event('auth.password_change', 'success', account.id);
  END IF;
  RETURN auth.me();
END
$$;
COMMENT ON FUNCTION auth.update_user(jsonb) IS
  'Self-service update of user_metadata, email, password (the last two need current_password or aal2). Any other field: FB400, nothing changes.';

-- ---------------------------------------------------------------------------------------
-- Administration (superuser; EXECUTE is revoked from everyone else)
-- ---------------------------------------------------------------------------------------

-- Creates an account with the password policy applied. Returns its id.
CREATE FUNCTION auth.create_user(email text, password text, role text DEFAULT 'authenticated',
                                 user_metadata jsonb DEFAULT '{}'::jsonb, app_metadata jsonb DEFAULT '{}'::jsonb,
                                 email_verified boolean DEFAULT true) RETURNS uuid
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  created uuid;
BEGIN
  PERFORM auth.check_password_policy(create_user.password);
  PERFORM auth.check_metadata(create_user.user_metadata);
  INSERT INTO auth.users (email, encrypted_password, role, user_metadata, app_metadata, email_verified)
  VALUES (auth.normalize_email(create_user.email), fluxbase.hash_password(create_user.password), create_user.role,
          create_user.user_metadata, create_user.app_metadata, create_user.email_verified)
  RETURNING id INTO created;
  PERFORM auth.record_event('admin.user_create', 'success', created, NULL, jsonb_build_object('role', create_user.role));
  RETURN created;
END
$$;
COMMENT ON FUNCTION auth.create_user(text, text, text, jsonb, jsonb, boolean) IS 'Admin: create an account (password policy applies); returns its id.';

-- Changes a user's application role; their sessions are revoked so old tokens lose the old role.
CREATE FUNCTION auth.set_role(user_id uuid, new_role text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  old_role text;
BEGIN
  SELECT u.role INTO old_role FROM auth.users u WHERE u.id = set_role.user_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no such user' USING ERRCODE = 'FB404';
  END IF;
  UPDATE auth.users u SET role = new_role, updated_at = now() WHERE u.id = set_role.user_id;
  PERFORM auth.revoke_sessions(set_role.user_id);
  PERFORM auth.record_event('admin.role_change', 'success', set_role.user_id, NULL,
    jsonb_build_object('from', old_role, 'to', new_role));
END
$$;
COMMENT ON FUNCTION auth.set_role(uuid, text) IS 'Admin: change a user''s application role and revoke their sessions.';

-- Bans a user for a while (NULL lifts the ban). Their existing tokens stop working at once.
CREATE FUNCTION auth.ban_user(user_id uuid, duration interval DEFAULT interval '100 years') RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  UPDATE auth.users u SET banned_until = CASE WHEN duration IS NULL THEN NULL ELSE now() + duration END,
                          updated_at = now()
  WHERE u.id = ban_user.user_id;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no such user' USING ERRCODE = 'FB404';
  END IF;
  IF duration IS NOT NULL THEN
    -- Lifting the ban later must not revive the tokens issued before it.
    PERFORM auth.revoke_sessions(ban_user.user_id);
  END IF;
  PERFORM auth.record_event(CASE WHEN duration IS NULL THEN 'admin.user_unban' ELSE 'admin.user_ban' END,
    'success', ban_user.user_id, NULL, jsonb_build_object('duration', duration::text));
END
$$;
COMMENT ON FUNCTION auth.ban_user(uuid, interval) IS 'Admin: ban a user for a duration (NULL unbans); their tokens are refused at once.';

-- Deletes a user with their sessions, factors and tokens.
CREATE FUNCTION auth.delete_user(user_id uuid) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  DELETE FROM auth.users u WHERE u.id = delete_user.user_id;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no such user' USING ERRCODE = 'FB404';
  END IF;
  PERFORM auth.record_event('admin.user_delete', 'success', delete_user.user_id);
END
$$;
COMMENT ON FUNCTION auth.delete_user(uuid) IS 'Admin: delete a user; their tokens are refused at once.';

-- Revokes every session of a user. Returns how many.
CREATE FUNCTION auth.revoke_sessions(user_id uuid) RETURNS integer
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  sid uuid;
  n integer := 0;
BEGIN
  FOR sid IN SELECT s.id FROM auth.sessions s WHERE s.user_id = revoke_sessions.user_id AND s.revoked_at IS NULL LOOP
    PERFORM auth.revoke_session(sid, 'admin');
    n := n + 1;
  END LOOP;
  RETURN n;
END
$$;
COMMENT ON FUNCTION auth.revoke_sessions(uuid) IS 'Admin: revoke every session of a user; returns how many.';

-- Issues a long-lived API key (a signed token with role anon or service_role and no user).
CREATE FUNCTION auth.issue_api_key(role text, name text, lifetime interval DEFAULT interval '1 year') RETURNS text
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  jti text := gen_random_uuid()::text;
  expires timestamptz := now() + lifetime;
BEGIN
  IF role NOT IN ('anon', 'service_role') THEN
    RAISE EXCEPTION 'an API key is for anon or service_role, not "%"', role USING ERRCODE = 'FB400';
  END IF;
  INSERT INTO auth.api_keys (jti, name, role, expires_at) VALUES (jti, name, role, expires);
  PERFORM auth.record_event('admin.api_key_issue', 'success', NULL, NULL, jsonb_build_object('name', name, 'role', role, 'jti', jti));
  RETURN fluxbase.sign_token(jsonb_build_object(
    'role', role, 'iss', auth.setting('jwt_issuer'), 'aud', auth.setting('jwt_audience'),
    'iat', floor(extract(epoch FROM now()))::bigint, 'exp', floor(extract(epoch FROM expires))::bigint,
    'jti', jti, 'token_type', 'access'));
END
$$;
COMMENT ON FUNCTION auth.issue_api_key(text, text, interval) IS 'Admin: issue an anon or service_role API key (a signed token); revoke with auth.revoke_api_key(jti).';

-- Revokes an API key by its jti.
CREATE FUNCTION auth.revoke_api_key(jti text) RETURNS void
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF NOT EXISTS (SELECT FROM auth.api_keys k WHERE k.jti = revoke_api_key.jti) THEN
    RAISE EXCEPTION 'no such API key' USING ERRCODE = 'FB404';
  END IF;
  INSERT INTO auth.revoked_tokens (jti, expires_at)
  SELECT k.jti, k.expires_at FROM auth.api_keys k WHERE k.jti = revoke_api_key.jti
  ON CONFLICT DO NOTHING;
  PERFORM auth.record_event('admin.api_key_revoke', 'success', NULL, NULL, jsonb_build_object('jti', jti));
END
$$;
COMMENT ON FUNCTION auth.revoke_api_key(text) IS 'Admin: revoke an API key at once.';
