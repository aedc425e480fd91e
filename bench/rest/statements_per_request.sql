-- What the server sent for the 50 embedded requests just made: statements other than the
-- transaction's BEGIN/COMMIT and auth.authenticate, per request.
SELECT format('   SQL statements per embedded request (select=*,album(*)), besides BEGIN, auth.authenticate and COMMIT: %s',
              round(sum(calls) / 50.0, 2))
FROM pg_stat_statements
WHERE query !~* '^\s*(begin|commit|rollback|start transaction)'
  AND query !~* 'auth\.authenticate'
  AND query !~* 'pg_stat_statements';
