-- Per-call cost of auth.authenticate, measured inside the database (printed as NOTICEs).
-- :token is a valid access token; run as a superuser. Three cases:
--   remembered   the same token again: the backend reuses its verification and lookup
--   looked up    the same token, with the revocation epoch bumped before each call, so the
--                database lookup (blacklist, session, user, settings) runs every time
--   first sight  2,000 different tokens in turn: signature verification and lookup each time
\set ON_ERROR_STOP 1
SELECT set_config('bench.token', :'token', false) \gset
CREATE TEMP TABLE bench_tokens AS
  SELECT (auth.start_session(u, 'aal1', '["password"]'::jsonb, NULL))->>'access_token' AS token
  FROM auth.users u, generate_series(1, 20);
DO $$
DECLARE
  token text := current_setting('bench.token');
  tokens text[] := (SELECT array_agg(b.token) FROM bench_tokens b);
  started timestamptz;
  n int := 20000;
  blacklisted bigint := (SELECT count(*) FROM auth.revoked_tokens);
  remembered numeric;
  looked_up numeric;
  first_sight numeric;
BEGIN
  started := clock_timestamp();
  FOR i IN 1..n LOOP
    PERFORM auth.authenticate(token);
  END LOOP;
  remembered := extract(epoch FROM clock_timestamp() - started) * 1e6 / n;
  started := clock_timestamp();
  FOR i IN 1..n LOOP
    PERFORM fluxbase.note_revocation_change();
    PERFORM auth.authenticate(token);
  END LOOP;
  looked_up := extract(epoch FROM clock_timestamp() - started) * 1e6 / n;
  started := clock_timestamp();
  FOR i IN 1..n LOOP
    PERFORM auth.authenticate(tokens[1 + i % cardinality(tokens)]);
  END LOOP;
  first_sight := extract(epoch FROM clock_timestamp() - started) * 1e6 / n;
  RAISE NOTICE 'auth.authenticate per call, blacklist of % rows: remembered % us | looked up % us | first sight % us',
    blacklisted, round(remembered, 2), round(looked_up, 2), round(first_sight, 2);
END
$$;
