-- Fluxbase extension, last part: who may call what. Runs after everything else (`finalize`).
-- Default: nothing. Every grant below is a door on purpose.

-- Internals: nobody but the extension's own SECURITY DEFINER functions (owned by the
-- installing superuser) may sign tokens, hash, or make tokens.
REVOKE ALL ON FUNCTION fluxbase.sign_token(jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION fluxbase.hash_password(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION fluxbase.verify_password(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION fluxbase.password_needs_rehash(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION fluxbase.random_token() FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA auth FROM PUBLIC;

-- Every API role may resolve auth.* names (policies call auth.uid()).
GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role, fluxbase_authenticator;

-- The server's own role: authenticate a request (which switches role), apply the yaml
-- settings at start, and start a password reset (whose token it e-mails; anon must never
-- see one). It owns nothing else.
REVOKE ALL ON FUNCTION auth.authenticate(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION auth.create_password_reset(text, inet) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.authenticate(text) TO fluxbase_authenticator;
GRANT EXECUTE ON FUNCTION auth.token_is_active(text, uuid, uuid) TO fluxbase_authenticator;
GRANT EXECUTE ON FUNCTION auth.apply_settings(jsonb) TO fluxbase_authenticator;
GRANT EXECUTE ON FUNCTION auth.create_password_reset(text, inet) TO fluxbase_authenticator;

-- What an anonymous request may do: sign up, sign in, refresh, finish a reset or an
-- expired-password change.
REVOKE ALL ON FUNCTION auth.sign_up(text, text, jsonb, inet) FROM PUBLIC;
REVOKE ALL ON FUNCTION auth.sign_in(text, text, inet) FROM PUBLIC;
REVOKE ALL ON FUNCTION auth.refresh(text, inet) FROM PUBLIC;
REVOKE ALL ON FUNCTION auth.reset_password(text, text, inet) FROM PUBLIC;
REVOKE ALL ON FUNCTION auth.change_expired_password(text, text, inet) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.sign_up(text, text, jsonb, inet) TO anon;
GRANT EXECUTE ON FUNCTION auth.sign_in(text, text, inet) TO anon;
GRANT EXECUTE ON FUNCTION auth.refresh(text, inet) TO anon;
GRANT EXECUTE ON FUNCTION auth.reset_password(text, text, inet) TO anon;
GRANT EXECUTE ON FUNCTION auth.change_expired_password(text, text, inet) TO anon;

-- What a signed-in user may do about their own account.
REVOKE ALL ON FUNCTION auth.sign_out(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION auth.update_user(jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION auth.me() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.sign_out(text) TO authenticated;
GRANT EXECUTE ON FUNCTION auth.update_user(jsonb) TO authenticated;
GRANT EXECUTE ON FUNCTION auth.me() TO authenticated, service_role;

-- Administration: superuser only.
REVOKE ALL ON FUNCTION auth.create_user(text, text, text, jsonb, jsonb, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION auth.set_role(uuid, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION auth.ban_user(uuid, interval) FROM PUBLIC;
REVOKE ALL ON FUNCTION auth.delete_user(uuid) FROM PUBLIC;
REVOKE ALL ON FUNCTION auth.revoke_sessions(uuid) FROM PUBLIC;
REVOKE ALL ON FUNCTION auth.issue_api_key(text, text, interval) FROM PUBLIC;
REVOKE ALL ON FUNCTION auth.revoke_api_key(text) FROM PUBLIC;

COMMENT ON FUNCTION auth.authenticate(text) IS
  'Verify a bearer token (HS256 chosen by the server, kid, exp, nbf, iss, aud, token_type=access, not revoked, session live, user unbanned) and switch this transaction to its role (anon when NULL). Raises 28000 with the reason when refused.';
COMMENT ON FUNCTION auth.uid() IS 'The verified user id of this request, or NULL. Reads only what auth.authenticate verified.';
COMMENT ON FUNCTION auth.role() IS 'The verified application role claim of this request.';
COMMENT ON FUNCTION auth.email() IS 'The verified e-mail claim of this request, or NULL.';
COMMENT ON FUNCTION auth.jwt() IS 'All verified claims of this request as jsonb, or NULL.';
COMMENT ON FUNCTION auth.session_id() IS 'The verified session id of this request, or NULL.';
COMMENT ON FUNCTION auth.aal() IS 'The verified assurance level (aal1/aal2) of this request, or NULL.';
COMMENT ON FUNCTION fluxbase.sign_token(jsonb) IS 'Internal: sign claims with fluxbase.jwt_secret. Not executable by any API role.';
COMMENT ON FUNCTION fluxbase.hash_password(text) IS 'Internal: argon2id (19 MiB, t=2, p=1) PHC hash.';
COMMENT ON FUNCTION fluxbase.verify_password(text, text) IS 'Internal: constant-work password check (a NULL hash verifies a dummy).';
COMMENT ON FUNCTION fluxbase.password_needs_rehash(text) IS 'Internal: whether a stored hash uses other than the current argon2id parameters.';
COMMENT ON FUNCTION fluxbase.random_token() IS 'Internal: 32 random bytes (hex) for opaque tokens.';
