-- Fluxbase extension, last part: who may call what. Runs after everything else (`finalize`).

-- Internals: nobody but the extension's own SECURITY DEFINER functions (owned by the
-- installing superuser) may sign tokens or touch hashes.
REVOKE ALL ON FUNCTION fluxbase.sign_token(jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION fluxbase.hash_password(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION fluxbase.verify_password(text, text) FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA auth FROM PUBLIC;

-- Every API role may resolve auth.* names (policies call auth.uid()).
GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role, fluxbase_authenticator;

-- The server's group: it may only authenticate a request (which switches role) and read
-- the public settings; it owns nothing and is a member of no API role.
REVOKE ALL ON FUNCTION auth.authenticate(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.authenticate(text) TO fluxbase_authenticator;

-- Sign-up and sign-in run as `anon` (the server authenticates the request with no token first).
REVOKE ALL ON FUNCTION auth.sign_up(text, text, jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION auth.sign_in(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.sign_up(text, text, jsonb) TO anon;
GRANT EXECUTE ON FUNCTION auth.sign_in(text, text) TO anon;

COMMENT ON FUNCTION auth.authenticate(text) IS
  'Verify a bearer token (HS256 signature, exp, nbf, iss, aud, token_type=access) and switch this transaction to its role (anon when NULL). Raises 28000 with the reason when refused.';
COMMENT ON FUNCTION auth.uid() IS 'The verified user id of this request, or NULL. Reads only what auth.authenticate verified.';
COMMENT ON FUNCTION auth.role() IS 'The verified application role claim of this request.';
COMMENT ON FUNCTION auth.email() IS 'The verified e-mail claim of this request, or NULL.';
COMMENT ON FUNCTION auth.jwt() IS 'All verified claims of this request as jsonb, or NULL.';
COMMENT ON FUNCTION auth.session_id() IS 'The verified session id of this request, or NULL.';
COMMENT ON FUNCTION auth.aal() IS 'The verified assurance level (aal1/aal2) of this request, or NULL.';
COMMENT ON FUNCTION fluxbase.sign_token(jsonb) IS 'Internal: sign claims with fluxbase.jwt_secret. Not executable by any API role.';
COMMENT ON FUNCTION fluxbase.hash_password(text) IS 'Internal: argon2id (19 MiB, t=2, p=1) PHC hash.';
COMMENT ON FUNCTION fluxbase.verify_password(text, text) IS 'Internal: constant-work password check (a NULL hash verifies a dummy).';
