#!/usr/bin/env bash
# `make run`: a local cluster in .fluxbase/dev (created once, reused after), the demo schema,
# and the server on 127.0.0.1:8080 with a curl walkthrough printed first.
# `make run DEMO=chinook` (DEMO=chinook scripts/run.sh) also loads the Chinook demo (tables,
# data, RLS and 67 accounts; see README "Chinook demo") and prints its walkthrough instead.
set -euo pipefail
cd "$(dirname "$0")/.."
STATE=.fluxbase/dev
DEMO=${DEMO:-notes}
case "$DEMO" in
  notes) WALKTHROUGH='## Walkthrough' ;;
  chinook) WALKTHROUGH='## Chinook demo' ;;
  *) echo "unknown DEMO=$DEMO (notes or chinook)" >&2; exit 2 ;;
esac

scripts/cluster.sh init "$STATE" fluxbase
scripts/cluster.sh restart "$STATE"   # loads the extension library just installed
if [ "$(scripts/cluster.sh psql "$STATE" fluxbase -Atc "SELECT to_regclass('public.notes') IS NOT NULL")" != t ]; then
  scripts/cluster.sh psql "$STATE" fluxbase -f sql/demo.sql
fi
if [ "$DEMO" = chinook ] &&
   [ "$(scripts/cluster.sh psql "$STATE" fluxbase -Atc "SELECT to_regclass('public.invoice') IS NOT NULL")" != t ]; then
  echo "loading the Chinook demo (data, policies, accounts) ..."
  scripts/load-chinook.sh "$STATE" fluxbase
fi

set -a; . "$STATE/server.env"; set +a
echo
echo "Fluxbase is starting on http://127.0.0.1:8080  (SQL console: make psql)"
echo "Try it in another terminal (the README's walkthrough):"
echo
# Printed from README.md itself, so the two cannot drift apart.
awk -v h="$WALKTHROUGH" '$0==h{w=1} w&&/^```sh/{p=1;next} p&&/^```/{exit} p' README.md
echo
exec cargo run --quiet --release -p fluxbase-server --bin fluxbase -- serve --config fluxbase.yaml
