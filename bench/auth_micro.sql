-- Per-call and latency figures measured inside the database (printed as NOTICEs).
-- :token is a valid access token; run as a superuser.
\set ON_ERROR_STOP 1
SELECT set_config('bench.token', :'token', false) \gset
DO $$
DECLARE
  token text := current_setting('bench.token');
  started timestamptz;
  n int := 20000;
  blacklisted bigint := (SELECT count(*) FROM auth.revoked_tokens);
BEGIN
  started := clock_timestamp();
  FOR i IN 1..n LOOP
    PERFORM auth.authenticate(token);
  END LOOP;
  RAISE NOTICE 'auth.authenticate: % us per call (blacklist rows: %)',
    round((extract(epoch FROM clock_timestamp() - started) * 1e6 / n)::numeric, 2),
    blacklisted;
END
$$;
