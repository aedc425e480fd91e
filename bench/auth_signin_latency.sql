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

-- Failure timing (security property 6): a wrong password, an unknown e-mail and a locked key,
-- 30 of each, p50 side by side. They should agree within noise.
SELECT auth.set_setting('lockout_type', 'email');
SELECT auth.sign_in('bench99@example.com', 'Wrong-password-1') FROM generate_series(1, 5);
DO $$
DECLARE
  t timestamptz;
  wrong double precision[] := '{}';
  unknown double precision[] := '{}';
  locked double precision[] := '{}';
BEGIN
  FOR i IN 1..30 LOOP
    PERFORM auth.unlock(email => format('bench%s@example.com', 1 + i % 50));
    t := clock_timestamp();
    PERFORM auth.sign_in(format('bench%s@example.com', 1 + i % 50), 'Wrong-password-1');
    wrong := wrong || extract(epoch FROM clock_timestamp() - t) * 1000;
    t := clock_timestamp();
    PERFORM auth.sign_in(format('nobody%s@example.com', i), 'Wrong-password-1');
    unknown := unknown || extract(epoch FROM clock_timestamp() - t) * 1000;
    t := clock_timestamp();
    PERFORM auth.sign_in('bench99@example.com', 'Bench-password-1');
    locked := locked || extract(epoch FROM clock_timestamp() - t) * 1000;
  END LOOP;
  RAISE NOTICE 'failed sign-in p50: wrong password % ms | unknown e-mail % ms | locked account % ms',
    round((SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM unnest(wrong) x)::numeric, 1),
    round((SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM unnest(unknown) x)::numeric, 1),
    round((SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) FROM unnest(locked) x)::numeric, 1);
END
$$;
