#!/usr/bin/env bash
# Builds the fluxbase extension (release: argon2 is far too slow unoptimised) and installs it
# into Debian's PostgreSQL 15. Clusters that already run must restart to load the new library
# (it is preloaded); scripts/run.sh and scripts/test.sh do that.
set -euo pipefail
cd "$(dirname "$0")/../pg_ext"
PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
if [ "$(id -u)" = 0 ]; then
  cargo pgrx install --release --pg-config "$PG_CONFIG"
else
  cargo pgrx install --release --sudo --pg-config "$PG_CONFIG"
fi
