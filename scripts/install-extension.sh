#!/usr/bin/env bash
# Builds the fluxbase extension (release: argon2 is far too slow unoptimised) and installs it
# into Debian's PostgreSQL 15. Each file is copied beside its destination and renamed into
# place, so a cluster that is running while we install (and has the old library mapped) is not
# disturbed. Running clusters must restart to load the new library (it is preloaded);
# scripts/run.sh and scripts/test.sh do that.
set -euo pipefail
cd "$(dirname "$0")/.."
PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
(cd pg_ext && cargo pgrx package --pg-config "$PG_CONFIG" >/dev/null)
staged="$TARGET/release/fluxbase-pg15"
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
for dir in "$("$PG_CONFIG" --pkglibdir)" "$("$PG_CONFIG" --sharedir)/extension"; do
  for file in "$staged$dir"/*; do
    dest="$dir/$(basename "$file")"
    as_root cp "$file" "$dest.fluxbase-tmp"
    as_root mv -f "$dest.fluxbase-tmp" "$dest"
  done
done
echo "installed the fluxbase extension into $("$PG_CONFIG" --pkglibdir) and $("$PG_CONFIG" --sharedir)/extension"
