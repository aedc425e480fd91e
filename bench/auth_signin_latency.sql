-- Sign-in latency (p50/p99 over 60 sign-ins) beside the raw argon2id hash time (60 hashes).
\set ON_ERROR_STOP 1
DO $$
DECLARE
  t timestamptz;
  signin double precision[] := '{}';
  hash double precision[] := '{}';
BEGIN
  FOR i IN 1..60 LOOP
    t := clock_timestamp();
    PERFORM auth.sign_in(format('bench%s@example.com', 1 + i % 100), 'Bench-password-1', '127.0.0.1');
    signin := signin || extract(epoch FROM clock_timestamp() - t) * 1000;
    t := clock_timestamp();
    PERFORM fluxbase.hash_password('Bench-password-1');
    hash := hash || extract(epoch FROM clock_timestamp() - t) * 1000;
  END LOOP;
  RAISE NOTICE 'sign-in latency: p50 % ms, p99 % ms | raw argon2id hash: p50 % ms, p99 % ms',
    round((SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM unnest(signin) x)::numeric, 1),
    round((SELECT percentile_cont(0.99) WITHIN GROUP (ORDER BY x) FROM unnest(signin) x)::numeric, 1),
    round((SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM unnest(hash) x)::numeric, 1),
    round((SELECT percentile_cont(0.99) WITHIN GROUP (ORDER BY x) FROM unnest(hash) x)::numeric, 1);
END
$$;
