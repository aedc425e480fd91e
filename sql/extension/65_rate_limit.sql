-- Fluxbase extension: rate-limit counters shared by every server on this database
-- (`rate_limiting.store: postgres`). Fixed windows: a key's window starts at a multiple of
-- its length since the epoch, so every server agrees on which window a request falls in.

-- One row per key: the current window's start and how many requests it has seen. UNLOGGED:
-- the counters are hot, short-lived and worth no WAL; a crash empties them, which at worst
-- grants one fresh window. The key names the budget and the client
-- (`ip:<endpoint>:<address>`, `user:<token hash>`), never a token.
CREATE UNLOGGED TABLE fluxbase.rate_limit_windows (
  key            text PRIMARY KEY,
  window_seconds integer NOT NULL,
  window_start   timestamptz NOT NULL,
  hits           integer NOT NULL
);
COMMENT ON TABLE fluxbase.rate_limit_windows IS 'Rate-limit counters of the servers (rate_limiting.store: postgres): the current fixed window of each key. UNLOGGED.';

-- Counts one request against `key` (at most `"limit"` per `window_seconds`) and answers
-- whether it may pass, how many remain in this window and how many seconds until the window
-- ends. One INSERT .. ON CONFLICT DO UPDATE: the row lock makes concurrent hits from any
-- number of servers count one after the other, so the limit holds exactly. Refused hits
-- count too (a client hammering a closed window gains nothing and costs one row update).
CREATE FUNCTION fluxbase.rate_limit_hit(key text, "limit" integer, window_seconds integer,
                                        OUT allowed boolean, OUT remaining integer,
                                        OUT reset_seconds double precision)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  now_ts  timestamptz := clock_timestamp();
  started timestamptz;
  counted integer;
BEGIN
  IF key IS NULL OR "limit" IS NULL OR "limit" < 1 OR window_seconds IS NULL OR window_seconds < 1 THEN
    RAISE EXCEPTION 'rate_limit_hit needs a key, a limit >= 1 and a window >= 1 second'
      USING ERRCODE = '22023';
  END IF;
  started := to_timestamp(floor(extract(epoch FROM now_ts) / window_seconds) * window_seconds);
  INSERT INTO fluxbase.rate_limit_windows AS w (key, window_seconds, window_start, hits)
  VALUES (rate_limit_hit.key, rate_limit_hit.window_seconds, started, 1)
  ON CONFLICT ON CONSTRAINT rate_limit_windows_pkey DO UPDATE
    SET hits = CASE WHEN w.window_start = excluded.window_start THEN w.hits + 1 ELSE 1 END,
        window_start = excluded.window_start,
        window_seconds = excluded.window_seconds
  RETURNING w.hits INTO counted;
  allowed := counted <= "limit";
  remaining := greatest("limit" - counted, 0);
  reset_seconds := extract(epoch FROM (started + make_interval(secs => window_seconds)) - now_ts);
END
$$;
COMMENT ON FUNCTION fluxbase.rate_limit_hit(text, integer, integer) IS
  'Server only: count one request against key (limit per window_seconds, fixed windows) and return allowed, remaining and the seconds until the window ends. Atomic across servers.';

-- Drops the counters of windows that have ended (the server calls it every few minutes);
-- returns how many.
CREATE FUNCTION fluxbase.rate_limit_purge() RETURNS bigint
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
  WITH gone AS (
    DELETE FROM fluxbase.rate_limit_windows
    WHERE window_start + make_interval(secs => window_seconds) < clock_timestamp()
    RETURNING 1)
  SELECT count(*) FROM gone
$$;
COMMENT ON FUNCTION fluxbase.rate_limit_purge() IS 'Server only: delete rate-limit windows that have ended; returns how many.';
