-- What the server sent for the 50 embedded requests just made, per request: every statement
-- except transaction control, auth.authenticate and the session reset after each request
-- (fluxbase.reset_session(): CLOSE ALL, RESET ALL, DISCARD ...), which are not the query.
SELECT format('   SQL statements per embedded request (select=*,album(*)), besides BEGIN/COMMIT, auth.authenticate and the pool reset: %s',
              round(coalesce(sum(calls), 0) / 50.0, 2))
FROM pg_stat_statements
WHERE query !~* '^\s*(begin|commit|rollback|start transaction|close all|set session authorization|reset all|unlisten|discard|select pg_advisory_unlock_all)'
  AND query !~* 'auth\.authenticate'
  AND query !~* 'fluxbase\.reset_session'
  AND query !~* 'pg_stat_statements';
