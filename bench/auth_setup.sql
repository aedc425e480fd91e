-- Benchmark fixtures for the auth kernel (loaded by scripts/bench.sh into a throwaway database).
-- Two identical tables of 10,000 rows owned by 100 users: one guarded by auth.uid() (the
-- verified way), one by request.jwt.claims read with current_setting (PostgREST's unchecked way).
SELECT auth.set_setting('password_max_age_days', '0');
SELECT auth.create_user(format('bench%s@example.com', i), 'Bench-password-1') FROM generate_series(1, 100) AS i;

CREATE TABLE public.bench_verified (id int PRIMARY KEY, user_id uuid NOT NULL, body text NOT NULL);
CREATE TABLE public.bench_unchecked (LIKE public.bench_verified INCLUDING ALL);
INSERT INTO public.bench_verified
  SELECT i, (SELECT id FROM auth.users ORDER BY email OFFSET (i % 100) LIMIT 1), md5(i::text)
  FROM generate_series(1, 10000) AS i;
INSERT INTO public.bench_unchecked SELECT * FROM public.bench_verified;

ALTER TABLE public.bench_verified ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.bench_unchecked ENABLE ROW LEVEL SECURITY;
CREATE POLICY own ON public.bench_verified FOR SELECT TO authenticated USING (user_id = auth.uid());
CREATE POLICY own ON public.bench_unchecked FOR SELECT TO authenticated
  USING (user_id = (current_setting('request.jwt.claims', true)::json->>'sub')::uuid);
GRANT SELECT ON public.bench_verified, public.bench_unchecked TO authenticated;
-- Lets the in-SQL loops call authenticate again after the first call switched role.
GRANT EXECUTE ON FUNCTION auth.authenticate(text) TO authenticated;
ANALYZE;
