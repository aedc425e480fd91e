-- What the server sent for the 50 embedded requests just made, per request: every statement
-- except transaction control and auth.authenticate, which are not the query. (There is no
-- session-reset statement to leave out: auth.authenticate has the COMMIT reset the session.)
SELECT format('   SQL statements per embedded request (select=*,album(*)), besides BEGIN/COMMIT and auth.authenticate: %s',
              round(coalesce(sum(calls), 0) / 50.0, 2))
FROM pg_stat_statements
WHERE query !~* '^\s*(begin|commit|rollback|start transaction)'
  AND query !~* 'auth\.authenticate'
  AND query !~* 'pg_stat_statements';
