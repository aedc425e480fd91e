-- Fluxbase extension, part 2c: telling auth.authenticate that a remembered check is stale.
-- auth.authenticate may reuse, within one backend, the answer of its database lookup for a
-- token (blacklist, session, user, issuer, audience) until any of these change. Each change
-- fires one statement trigger that bumps the revocation epoch (see pg_ext/src/revocation.rs).

-- The trigger function: note the change, nothing else.
CREATE FUNCTION auth.revocation_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  PERFORM fluxbase.note_revocation_change();
  RETURN NULL;
END
$$;
COMMENT ON FUNCTION auth.revocation_changed() IS 'Internal: bumps the revocation epoch after a change auth.authenticate must see.';

-- A blacklisted (or un-blacklisted) token.
CREATE TRIGGER revoked_tokens_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON auth.revoked_tokens
  FOR EACH STATEMENT EXECUTE FUNCTION auth.revocation_changed();
-- A revoked, shortened or deleted session (new sessions change no existing token's answer).
CREATE TRIGGER sessions_changed AFTER UPDATE OF id, revoked_at, expires_at, user_id OR DELETE OR TRUNCATE ON auth.sessions
  FOR EACH STATEMENT EXECUTE FUNCTION auth.revocation_changed();
-- A banned or deleted user.
CREATE TRIGGER users_changed AFTER UPDATE OF banned_until, id OR DELETE OR TRUNCATE ON auth.users
  FOR EACH STATEMENT EXECUTE FUNCTION auth.revocation_changed();
-- A new issuer or audience.
CREATE TRIGGER settings_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON auth.settings
  FOR EACH STATEMENT EXECUTE FUNCTION auth.revocation_changed();

-- ALWAYS: they fire under session_replication_role = replica too (logical replication apply,
-- restores), where ordinary triggers are skipped.
ALTER TABLE auth.revoked_tokens ENABLE ALWAYS TRIGGER revoked_tokens_changed;
ALTER TABLE auth.sessions ENABLE ALWAYS TRIGGER sessions_changed;
ALTER TABLE auth.users ENABLE ALWAYS TRIGGER users_changed;
ALTER TABLE auth.settings ENABLE ALWAYS TRIGGER settings_changed;

-- Deleting an API key's row revokes the key (its jti goes on the blacklist until it expires).
CREATE FUNCTION auth.api_key_deleted() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  INSERT INTO auth.revoked_tokens (jti, expires_at) VALUES (OLD.jti, OLD.expires_at) ON CONFLICT (jti) DO NOTHING;
  RETURN OLD;
END
$$;
COMMENT ON FUNCTION auth.api_key_deleted() IS 'Internal: a deleted API key is blacklisted.';

-- Blacklist on delete.
CREATE TRIGGER api_keys_deleted AFTER DELETE ON auth.api_keys
  FOR EACH ROW EXECUTE FUNCTION auth.api_key_deleted();
