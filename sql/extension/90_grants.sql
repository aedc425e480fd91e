-- Fluxbase extension, last part: who may call what. Runs after everything else (`finalize`).
-- Default: nothing. Every grant below is a door on purpose.

-- Internals: nobody but the extension's own SECURITY DEFINER functions (owned by the
-- installing superuser) may sign tokens, hash, or make tokens.
REVOKE ALL ON FUNCTION fluxbase.sign_token(jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION fluxbase.enrolment_claims() FROM PUBLIC;
REVOKE ALL ON FUNCTION fluxbase.note_login_failures(text[], bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION fluxbase.rolled_back_login_failures(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION fluxbase.forget_rolled_back_login_failures(text[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION auth.mfa_user() FROM PUBLIC;
REVOKE ALL ON FUNCTION auth.mfa_email() FROM PUBLIC;
REVOKE ALL ON FUNCTION fluxbase.hash_password(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION fluxbase.verify_password(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION fluxbase.password_needs_rehash(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION fluxbase.random_token() FROM PUBLIC;
REVOKE ALL ON FUNCTION fluxbase.note_revocation_change() FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA auth FROM PUBLIC;

-- Every API role may resolve auth.* names (policies call auth.uid()).
GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role, fluxbase_authenticator;

-- The server's own role: authenticate a request (which switches role), apply the yaml
-- settings at start, and start a password reset (whose token it e-mails; anon must never
-- see one). It owns nothing else.
REVOKE ALL ON FUNCTION auth.authenticate(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION auth.create_password_reset(text, inet) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.authenticate(text) TO fluxbase_authenticator;
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
-- anon too: an enrolment-only session runs as anon (the anon key itself has no session to end:
-- it gets 42501).
GRANT EXECUTE ON FUNCTION auth.sign_out(text) TO authenticated, anon;
GRANT EXECUTE ON FUNCTION auth.update_user(jsonb) TO authenticated;
GRANT EXECUTE ON FUNCTION auth.me() TO authenticated, service_role;

-- 2FA: enrolment and status for any signed-in user (an enrolment-only admin session runs as
-- anon, so anon may call them too: each one requires a verified user id). The second sign-in
-- step is anonymous and needs the mfa_token.
REVOKE ALL ON FUNCTION auth.mfa_setup() FROM PUBLIC;
REVOKE ALL ON FUNCTION auth.mfa_enable(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION auth.mfa_disable(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION auth.mfa_status() FROM PUBLIC;
REVOKE ALL ON FUNCTION auth.mfa_verify(text, text, inet) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.mfa_setup() TO anon, authenticated;
GRANT EXECUTE ON FUNCTION auth.mfa_enable(text, text) TO anon, authenticated;
GRANT EXECUTE ON FUNCTION auth.mfa_status() TO anon, authenticated;
GRANT EXECUTE ON FUNCTION auth.mfa_disable(text, text) TO authenticated;
GRANT EXECUTE ON FUNCTION auth.mfa_verify(text, text, inet) TO anon;

REVOKE ALL ON FUNCTION auth.public_config() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION auth.public_config() TO anon, authenticated, service_role;

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
REVOKE ALL ON FUNCTION fluxbase.totp_new_secret() FROM PUBLIC;
REVOKE ALL ON FUNCTION fluxbase.totp_uri(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION fluxbase.totp_current_code(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION fluxbase.totp_match(text, text, bigint) FROM PUBLIC;
REVOKE ALL ON FUNCTION fluxbase.encrypt_secret(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION fluxbase.decrypt_secret(text) FROM PUBLIC;
COMMENT ON FUNCTION fluxbase.totp_new_secret() IS 'Internal: a new 160-bit TOTP secret (base32).';
COMMENT ON FUNCTION fluxbase.totp_uri(text, text) IS 'Internal: the otpauth:// URI for a secret and account.';
COMMENT ON FUNCTION fluxbase.totp_current_code(text) IS 'Internal: the current TOTP code of a secret.';
COMMENT ON FUNCTION fluxbase.totp_match(text, text, bigint) IS 'Internal: the time step a code matches if later than the last used one.';
COMMENT ON FUNCTION fluxbase.encrypt_secret(text) IS 'Internal: AES-256-GCM under fluxbase.mfa_encryption_key.';
COMMENT ON FUNCTION fluxbase.decrypt_secret(text) IS 'Internal: decrypt what encrypt_secret produced.';

-- The security report: catalog facts for the server (logged at start, `fluxbase check`) and
-- for service_role tokens (dashboards). USAGE on the fluxbase schema opens nothing else:
-- every other function in it has EXECUTE revoked above (a pg_test checks that).
GRANT USAGE ON SCHEMA fluxbase TO fluxbase_authenticator, service_role;
REVOKE ALL ON FUNCTION fluxbase.security_report(text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION fluxbase.security_report(text[]) TO fluxbase_authenticator, service_role;
-- The reset the server runs on a pooled connection after every request (and only the server).
REVOKE ALL ON FUNCTION fluxbase.reset_session() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION fluxbase.reset_session() TO fluxbase_authenticator;
COMMENT ON FUNCTION fluxbase.reset_session() IS 'Undo the session state a request could leave on a pooled connection (CLOSE ALL, role, RESET ALL, UNLISTEN *, advisory locks, DISCARD TEMP, DISCARD SEQUENCES) in one call; run by the server after every request.';
-- The server's shared rate-limit counters and its security-event feed: the login role's
-- group alone (not service_role: a token must not reset or read them). The table itself is
-- reachable only through these functions.
REVOKE ALL ON TABLE fluxbase.rate_limit_windows FROM PUBLIC;
REVOKE ALL ON FUNCTION fluxbase.rate_limit_hit(text, integer, integer) FROM PUBLIC;
REVOKE ALL ON FUNCTION fluxbase.rate_limit_purge() FROM PUBLIC;
REVOKE ALL ON FUNCTION fluxbase.security_events_head() FROM PUBLIC;
REVOKE ALL ON FUNCTION fluxbase.security_events_after(bigint, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION fluxbase.rate_limit_hit(text, integer, integer) TO fluxbase_authenticator;
GRANT EXECUTE ON FUNCTION fluxbase.rate_limit_purge() TO fluxbase_authenticator;
GRANT EXECUTE ON FUNCTION fluxbase.security_events_head() TO fluxbase_authenticator;
GRANT EXECUTE ON FUNCTION fluxbase.security_events_after(bigint, integer) TO fluxbase_authenticator;
-- The schema-change event trigger's function runs only as an event trigger.
REVOKE ALL ON FUNCTION fluxbase.notify_schema_change() FROM PUBLIC;

-- Audit: nothing for the API roles. They cannot read, change, delete or truncate audit.log
-- (nor the chain anchors or the tracking table), call the administration functions, or
-- disable tracking; the triggers that write the log run as the installing superuser.
REVOKE ALL ON ALL TABLES IN SCHEMA audit FROM PUBLIC;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA audit FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA audit FROM PUBLIC;
REVOKE ALL ON FUNCTION fluxbase.audit_link(oid, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION fluxbase.audit_hash(bytea, integer, bigint, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION fluxbase.audit_outer_role() FROM PUBLIC;
REVOKE ALL ON FUNCTION fluxbase.audit_caller_is_superuser() FROM PUBLIC;
REVOKE ALL ON FUNCTION fluxbase.audit_capture() FROM PUBLIC;
REVOKE ALL ON FUNCTION fluxbase.audit_forget_tracking(oid) FROM PUBLIC;
COMMENT ON FUNCTION fluxbase.audit_link(oid, text) IS 'Internal: chain one audit row onto this backend''s lane (lane, seq, hash).';
COMMENT ON FUNCTION fluxbase.audit_hash(bytea, integer, bigint, text) IS 'Internal: sha256(prev || ''<lane>:<seq>:'' || content), the hash an audit row must carry.';
COMMENT ON FUNCTION fluxbase.audit_outer_role() IS 'Internal: the role the statement runs as, beneath SECURITY DEFINER.';
COMMENT ON FUNCTION fluxbase.audit_caller_is_superuser() IS 'Internal: whether that role is a superuser.';
COMMENT ON FUNCTION fluxbase.audit_forget_tracking(oid) IS 'Internal: invalidate a tracked table''s relcache entry so backends re-read audit.tracked (0: all tables).';
COMMENT ON FUNCTION fluxbase.audit_capture() IS 'Internal: the AFTER ... FOR EACH STATEMENT trigger of tracked tables (installed by audit.enable): one hash-chained audit row per changed row.';
