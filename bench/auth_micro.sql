-- Per-call cost of auth.authenticate, measured inside the database (printed as NOTICEs).
-- :token is a valid access token; run as a superuser. Three cases, each its own transaction:
--   remembered   the same token again: the backend reuses its verification and lookup
--   looked up    the same token in a transaction that holds an xid (as one that has written
--                would), where remembered lookups are never used: the database lookup
--                (blacklist, session, user, settings) runs every time
--   first sight  2,000 different tokens in turn: signature verification and lookup each time
--
-- The token and the results are kept in plain tables, not in a session setting or temporary
-- tables: a transaction that called auth.authenticate ends with the session reset (RESET ALL,
-- DISCARD TEMP), so neither would reach the next block.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
DROP TABLE IF EXISTS public.bench_micro_token, public.bench_tokens, public.bench_results;
SET client_min_messages = notice;
CREATE TABLE public.bench_micro_token AS SELECT :'token'::text AS token;
CREATE TABLE public.bench_tokens AS
  SELECT (auth.start_session(u, 'aal1', '["password"]'::jsonb, NULL))->>'access_token' AS token
  FROM auth.users u, generate_series(1, 20);
CREATE TABLE public.bench_results (name text, us numeric);
GRANT ALL ON public.bench_results TO authenticated;

DO $$
DECLARE
  token text := (SELECT t.token FROM public.bench_micro_token t);
  started timestamptz := clock_timestamp();
BEGIN
  FOR i IN 1..20000 LOOP
    PERFORM auth.authenticate(token);
  END LOOP;
  INSERT INTO public.bench_results VALUES ('remembered', extract(epoch FROM clock_timestamp() - started) * 1e6 / 20000);
END
$$;

DO $$
DECLARE
  token text := (SELECT t.token FROM public.bench_micro_token t);
  started timestamptz;
BEGIN
  PERFORM txid_current();
  started := clock_timestamp();
  FOR i IN 1..20000 LOOP
    PERFORM auth.authenticate(token);
  END LOOP;
  INSERT INTO public.bench_results VALUES ('looked up', extract(epoch FROM clock_timestamp() - started) * 1e6 / 20000);
END
$$;

DO $$
DECLARE
  tokens text[] := (SELECT array_agg(b.token) FROM public.bench_tokens b);
  started timestamptz := clock_timestamp();
BEGIN
  FOR i IN 1..20000 LOOP
    PERFORM auth.authenticate(tokens[1 + i % cardinality(tokens)]);
  END LOOP;
  INSERT INTO public.bench_results VALUES ('first sight', extract(epoch FROM clock_timestamp() - started) * 1e6 / 20000);
END
$$;

DO $$
BEGIN
  RAISE NOTICE 'auth.authenticate per call, blacklist of % rows: remembered % us | looked up % us | first sight % us',
    (SELECT count(*) FROM auth.revoked_tokens),
    (SELECT round(us, 2) FROM public.bench_results WHERE name = 'remembered'),
    (SELECT round(us, 2) FROM public.bench_results WHERE name = 'looked up'),
    (SELECT round(us, 2) FROM public.bench_results WHERE name = 'first sight');
END
$$;

DROP TABLE public.bench_micro_token, public.bench_tokens, public.bench_results;
