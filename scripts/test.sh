#!/usr/bin/env bash
# `make test`: everything, against real parts.
#   1. the server's unit tests (no database needed)
#   2. the extension's #[pg_test]s, in a PostgreSQL 15 that pgrx starts
#   3. black-box tests: a throwaway cluster in .fluxbase/test, a real server per test on a free port
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

echo "== 1/3 server unit tests"
cargo test -p fluxbase-server

echo "== 2/3 extension tests (cargo pgrx test pg15)"
(
  cd pg_ext
  if [ "$(id -u)" = 0 ]; then
    # PostgreSQL will not run as root: pgrx starts its test cluster as `postgres` via sudo,
    # in a folder that user owns.
    PGRX_DATA=/var/tmp/fluxbase-pgrx-test
    rm -rf "$PGRX_DATA"; mkdir -p "$PGRX_DATA"; chown postgres "$PGRX_DATA"
    cargo pgrx test pg15 --runas postgres --pgdata "$PGRX_DATA/data"
  else
    cargo pgrx test pg15
  fi
)

echo "== 3/3 black-box tests (real cluster, real server)"
# pgrx test installed its own (debug, test-only) build; put the release build back.
scripts/install-extension.sh >/dev/null
STATE=.fluxbase/test
scripts/cluster.sh destroy "$STATE"
trap 'scripts/cluster.sh destroy "$STATE"' EXIT
scripts/cluster.sh init "$STATE" fluxbase_template
scripts/cluster.sh psql "$STATE" fluxbase_template -f sql/demo.sql
FLUXBASE_TEST_STATE="$ROOT/$STATE" FLUXBASE_REPO="$ROOT" cargo test -p fluxbase-tests
