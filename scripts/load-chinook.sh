#!/usr/bin/env bash
# The Chinook demo into a database of a cluster made by scripts/cluster.sh:
#   scripts/load-chinook.sh STATE_DIR DB [--no-accounts]
# 1. sql/demo_chinook/schema.sql (the tables), 2. the CSVs of demo/chinook/data (psql \copy,
# client side, so the cluster's OS user needs no access to this folder), 3. the identity
# sequences moved past the loaded ids, 4. sql/demo_chinook/policies.sql (RLS and grants),
# 5. unless --no-accounts, sql/demo_chinook/accounts.sql (a Fluxbase account per customer and
# employee, password Chinook-Demo-2024). One transaction: it loads fully or not at all.
set -euo pipefail
cd "$(dirname "$0")/.."
usage="usage: load-chinook.sh STATE_DIR DB [--no-accounts]"
STATE=${1:?$usage}
DB=${2:?$usage}
ACCOUNTS=1
case "${3:-}" in
  "") ;;
  --no-accounts) ACCOUNTS=0 ;;
  *) echo "$usage" >&2; exit 2 ;;
esac
DATA=demo/chinook/data

# Parents before children (the foreign keys are checked row by row).
TABLES="artist album genre media_type track playlist playlist_track employee customer invoice invoice_line"

{
  echo '\set ON_ERROR_STOP 1'
  echo 'BEGIN;'
  echo '\o /dev/null'   # the setval() results
  echo '\i sql/demo_chinook/schema.sql'
  for t in $TABLES; do
    # The header names the columns, so the CSV's column order is what counts.
    cols=$(head -1 "$DATA/$t.csv" | tr -d '\r')
    echo "\\copy public.$t ($cols) FROM '$DATA/$t.csv' WITH (FORMAT csv, HEADER true)"
    echo "SELECT setval(pg_get_serial_sequence('public.$t', 'id'), (SELECT max(id) FROM public.$t));"
  done
  echo '\i sql/demo_chinook/policies.sql'
  if [ "$ACCOUNTS" = 1 ]; then echo '\i sql/demo_chinook/accounts.sql'; fi
  echo 'COMMIT;'
} | scripts/cluster.sh psql "$STATE" "$DB" -f -
