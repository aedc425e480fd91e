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
cat <<'TXT'

Fluxbase is starting on http://127.0.0.1:8080  (SQL console: make psql)

Try it (needs curl and python3; or paste the tokens by hand):
  B=http://127.0.0.1:8080/api/v1
  tok() { python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'; }
  ALICE=$(curl -s $B/auth/signup -H 'Content-Type: application/json' \
          -d '{"email":"alice@example.com","password":"Alice-password-1"}' | tok)
  BOB=$(curl -s $B/auth/signup -H 'Content-Type: application/json' \
          -d '{"email":"bob@example.com","password":"Bob-password-22"}' | tok)
  curl -s $B/tables/notes -H "Authorization: Bearer $ALICE" -H 'Content-Type: application/json' \
       -d '{"title":"private plans"}'
  curl -s $B/tables/notes -H "Authorization: Bearer $ALICE" -H 'Content-Type: application/json' \
       -d '{"title":"hello world","is_public":true}'
  curl -s "$B/tables/notes?select=title,is_public" -H "Authorization: Bearer $BOB"   # only the public note
  curl -s "$B/tables/notes?select=title"                                              # anonymous: public only
  curl -s -i $B/auth/user -H "Authorization: Bearer ${ALICE}x"                        # tampered: 401

TXT
exec cargo run --quiet --release -p fluxbase-server --bin fluxbase -- serve --config fluxbase.yaml
