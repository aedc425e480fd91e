-- Fluxbase extension, part 0: roles and schemas.
-- Runs before everything pgrx generates (it is the `bootstrap` file).

-- The API roles. They are cluster-wide, so a second database that installs the extension
-- finds them already there; create each only when missing.
--   anon            requests without a token
--   authenticated   requests with a verified user token
--   service_role    trusted back-office tokens; bypasses RLS
--   fluxbase_authenticator  the group the server's login role belongs to. It is a member of
--                   the three roles above (so SET LOCAL ROLE works) without inheriting their
--                   privileges; the extension's role guard refuses any statement run as one of
--                   them that auth.authenticate() did not switch to.
DO $roles$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'anon') THEN
    CREATE ROLE anon NOLOGIN NOINHERIT;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'authenticated') THEN
    CREATE ROLE authenticated NOLOGIN NOINHERIT;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'service_role') THEN
    CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'fluxbase_authenticator') THEN
    CREATE ROLE fluxbase_authenticator NOLOGIN NOINHERIT;
  END IF;
END
$roles$;
GRANT anon, authenticated, service_role TO fluxbase_authenticator;

-- `auth` holds the accounts and the functions every request goes through. It is never
-- exposed through the REST or GraphQL API.
CREATE SCHEMA auth;
COMMENT ON SCHEMA auth IS 'Fluxbase accounts, sessions and the request-authentication functions. Never exposed over HTTP.';

-- `fluxbase` holds the kernel's internal primitives (signing, hashing). Nobody but the
-- extension's own SECURITY DEFINER functions may call them.
CREATE SCHEMA fluxbase;
COMMENT ON SCHEMA fluxbase IS 'Fluxbase internals: token signing and password hashing primitives. Not for direct use.';
REVOKE ALL ON SCHEMA fluxbase FROM PUBLIC;
