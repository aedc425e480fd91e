#!/usr/bin/env bash
# `make run`: a local cluster in .fluxbase/dev (created once, reused after), the demo schema,
# and the server on 127.0.0.1:8080 with a curl walkthrough printed first.
set -euo pipefail
cd "$(dirname "$0")/.."
STATE=.fluxbase/dev

scripts/cluster.sh init "$STATE" fluxbase
scripts/cluster.sh restart "$STATE"   # loads the extension library just installed
if [ "$(scripts/cluster.sh psql "$STATE" fluxbase -Atc "SELECT to_regclass('public.notes') IS NOT NULL")" != t ]; then
  scripts/cluster.sh psql "$STATE" fluxbase -f sql/demo.sql
fi

set -a; . "$STATE/server.env"; set +a
echo
echo "Fluxbase is starting on http://127.0.0.1:8080  (SQL console: make psql)"
echo "Try it in another terminal (the README's walkthrough):"
echo
# Printed from README.md itself, so the two cannot drift apart.
awk '/^## Walkthrough/{w=1} w&&/^```sh/{p=1;next} p&&/^```/{exit} p' README.md
echo
exec cargo run --quiet --release -p fluxbase-server --bin fluxbase -- serve --config fluxbase.yaml
