#!/usr/bin/env bash
# The data API benchmark (issue 4), part of `make bench`: PostgREST's published benchmark shapes
# on the Chinook data, over HTTP with a customer's token (so RLS applies), printed beside
# pgbench running the same transaction directly against the database in the same run.
#
# HTTP load: wrk (Debian's package) on loopback, keep-alive, 4 and 32 connections, one thread
# (and pgbench with one thread too: on 2 cores the load generator competes with what it measures).
# Baseline: pgbench, same connections count, the same three statements the server sends
# (BEGIN; SELECT auth.authenticate(token); the query; COMMIT), over TCP like the server.
set -euo pipefail
cd "$(dirname "$0")/.."
STATE=.fluxbase/bench-rest
PGBENCH=/usr/lib/postgresql/15/bin/pgbench
DURATION=${BENCH_SECONDS:-10}
command -v wrk >/dev/null || { echo "wrk is missing: run scripts/setup.sh" >&2; exit 1; }

scripts/cluster.sh destroy "$STATE"
server_pid=
cleanup() { if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi; scripts/cluster.sh destroy "$STATE" || true; }
trap cleanup EXIT
scripts/cluster.sh init "$STATE" chinook >/dev/null
psql_admin() { scripts/cluster.sh psql "$STATE" chinook "$@"; }
# pg_stat_statements counts the statements each request sends (one SQL statement per request).
psql_admin -qc "ALTER SYSTEM SET shared_preload_libraries = 'fluxbase', 'pg_stat_statements'" >/dev/null
scripts/cluster.sh restart "$STATE" >/dev/null
psql_admin -qc "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null
scripts/load-chinook.sh "$STATE" chinook >/dev/null
psql_admin -q -f bench/rest/setup.sql >/dev/null

. "$STATE/server.env"
http_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
cat > "$STATE/fluxbase.yaml" <<YAML
server:
  host: 127.0.0.1
  port: $http_port
database:
  url: "postgres://fluxbase_server:${FLUXBASE_DB_PASSWORD}@127.0.0.1:${FLUXBASE_DB_PORT}/chinook"
  # As many database connections as the most HTTP connections measured (pgbench's 32 use 32):
  # a smaller pool would cap how many commits share one WAL flush, which is what bounds the
  # bulk insert. Idle ones are opened only when needed.
  max_connections: 32
api:
  exposed_schemas: ["public"]
# The limiter stays on, so its cost is in the figures, but with budgets no single load
# generator on one address can reach; the metrics listener is on too (on a free port).
rate_limiting:
  per_minute: 1000000000
  per_hour: 1000000000
  per_user: { per_minute: 1000000000, per_hour: 1000000000 }
monitoring:
  port: 0
YAML
cargo build --quiet --release -p fluxbase-server --bin fluxbase
FLUXBASE_LOG=${FLUXBASE_LOG:-info} "${CARGO_TARGET_DIR:-target}/release/fluxbase" serve --config "$STATE/fluxbase.yaml" >"$STATE/server.log" 2>&1 &
server_pid=$!
base="http://127.0.0.1:$http_port"
for _ in $(seq 100); do curl -fs "$base/health" >/dev/null 2>&1 && break; sleep 0.1; done

password=Chinook-Demo-2024   # the demo accounts' password (sql/demo_chinook/accounts.sql)
token=$(curl -fs "$base/api/v1/auth/signin" -H 'content-type: application/json' \
  -d "{\"email\":\"customer2@example.com\",\"password\":\"${password}\"}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
export BENCH_TOKEN=$token

# wrk prints "Requests/sec: N" and, with --latency, "50%  1.23ms" / "99%  ...".
wrk_run() { # conns url [lua]
  local conns=$1 url=$2 lua=${3:-bench/rest/get.lua}
  # A second of warm-up, not measured: the pool opens its connections on demand (pgbench too
  # connects all its clients before its clock starts).
  wrk -t1 -c"$conns" -d1s -s "$lua" "$url" >/dev/null 2>&1
  wrk -t1 -c"$conns" -d"${DURATION}s" --latency -s "$lua" "$url" 2>&1 | python3 bench/rest/wrk_summary.py
}
pgbench_run() { # conns script
  "$PGBENCH" -h 127.0.0.1 -p "$FLUXBASE_DB_PORT" -U fluxbase_server -n -M prepared \
    -c "$1" -j 1 -T "$DURATION" -D token="$token" -f "$2" chinook 2>/dev/null \
    | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -1
}
export PGPASSWORD=$FLUXBASE_DB_PASSWORD

echo "== data API on Chinook (issue 4): HTTP (wrk, keep-alive) beside pgbench, customer2's token under RLS, ${DURATION}s each"
printf '   %-34s %5s %12s %9s %9s %12s %7s\n' shape conns "http req/s" "p50" "p99" "pgbench tps" ratio
shape() { # name path pgbench-file [lua]
  local name=$1 path=$2 file=$3 lua=${4:-bench/rest/get.lua}
  for conns in 4 32; do
    local figures; figures=$(wrk_run "$conns" "$base$path" "$lua")
    read -r rps p50 p99 <<<"$figures"
    tps=$(pgbench_run "$conns" "$file")
    python3 - "$name" "$conns" "$rps" "$p50" "$p99" "$tps" <<'PY'
import sys
name, conns, rps, p50, p99, tps = sys.argv[1:]
ratio = float(rps) / float(tps) if float(tps) else 0.0
print(f"   {name:<34} {conns:>5} {float(rps):>12.0f} {p50:>9} {p99:>9} {float(tps):>12.0f} {ratio:>6.2f}x")
PY
  done
}
shape "artist by id" "/api/v1/tables/artist?select=*&id=eq.90" bench/rest/artist_by_id.pgbench
shape "artist by id + albums" "/api/v1/tables/artist?select=*,album(*)&id=eq.90" bench/rest/artist_albums.pgbench
shape "invoices + lines + tracks (list)" "/api/v1/tables/invoice?select=*,invoice_line(*,track(name))&limit=10" bench/rest/invoice_list.pgbench
shape "bulk insert (10 rows)" "/api/v1/tables/bench_note" bench/rest/bulk_insert.pgbench bench/rest/bulk_insert.lua
echo "   target: http/pgbench >= 0.50x on this 2-core machine (wrk, the server and PostgreSQL share the cores)"

# One SQL statement per request, embedding included: count what the server sent.
psql_admin -qAtc "SELECT pg_stat_statements_reset()" >/dev/null
for _ in $(seq 50); do curl -fs -o /dev/null -H "Authorization: Bearer $token" "$base/api/v1/tables/artist?select=*,album(*)&id=eq.90"; done
psql_admin -At -f bench/rest/statements_per_request.sql
