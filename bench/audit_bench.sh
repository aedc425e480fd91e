#!/usr/bin/env bash
# The audit section of `make bench` (called by scripts/bench.sh with the bench cluster's state
# folder and database): pgbench single-row and 100-row inserts into a table with audit on,
# beside the same table without, in the same run. Each pair is measured twice, interleaved
# (plain, audited, plain, audited), so a noisy neighbour on this shared machine hits both sides.
# Durable commits (the cluster's defaults: synchronous_commit on, fsync) are what a production
# write pays; the same figures with synchronous_commit = off show the CPU cost alone.
set -euo pipefail
cd "$(dirname "$0")/.."
STATE=${1:?state dir}
DB=${2:?database}
PGBENCH=/usr/lib/postgresql/15/bin/pgbench
DURATION=${BENCH_SECONDS:-10}
CLIENTS=${BENCH_CLIENTS:-2}
port=$(cat "$STATE/port"); socket=$(cat "$STATE/socket_dir")

scripts/cluster.sh psql "$STATE" "$DB" -f bench/audit_setup.sql >/dev/null

tps() { sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -1; }
run() { # script, commit mode, clients -> tps; then empties the tables written (not the audit log)
  PGOPTIONS="-c synchronous_commit=$2" "$PGBENCH" -h "$socket" -p "$port" -U postgres -n -M prepared \
    -c "$3" -j "$3" -T "$DURATION" -f "bench/$1.pgbench" "$DB" 2>/dev/null | tps
  local written="public.bench_${1##*_}"
  [ "${1##*_}" = floor ] && written="$written, public.bench_floor_log"
  [ "${1##*_}" = common ] && written="$written, public.bench_common_log"
  scripts/cluster.sh psql "$STATE" "$DB" -c "TRUNCATE $written" >/dev/null
}
measure() { # shape, commit mode, clients -> prints a line (single rows: and the floor's and the common trigger's)
  local p1 a1 p2 a2 f1=0 f2=0 c1=0 c2=0
  p1=$(run "audit_insert_${1}_plain" "$2" "$3"); a1=$(run "audit_insert_${1}_audited" "$2" "$3")
  if [ "$1" = one ]; then f1=$(run audit_insert_one_floor "$2" "$3"); c1=$(run audit_insert_one_common "$2" "$3"); fi
  p2=$(run "audit_insert_${1}_plain" "$2" "$3"); a2=$(run "audit_insert_${1}_audited" "$2" "$3")
  if [ "$1" = one ]; then f2=$(run audit_insert_one_floor "$2" "$3"); c2=$(run audit_insert_one_common "$2" "$3"); fi
  python3 - "$1" "$2" "$3" "$p1" "$a1" "$p2" "$a2" "$f1" "$f2" "$c1" "$c2" <<'PY'
import sys
shape, mode, clients = sys.argv[1:4]
p1, a1, p2, a2, f1, f2, c1, c2 = map(float, sys.argv[4:])
plain, audited, floor, common = (p1 + p2) / 2, (a1 + a2) / 2, (f1 + f2) / 2, (c1 + c2) / 2
rows = 1 if shape == "one" else 100
target = "  (target >= 0.75)" if shape == "one" and mode == "on" else ""
print(f"     {rows:>3}-row inserts, synchronous_commit={mode:<3}, {clients} client{'s' if clients != '1' else ' '}: no audit {plain:8.0f} tps,"
      f" audit on {audited:8.0f} tps ({audited * rows:8.0f} audit rows/s); ratio {audited / plain:.2f}{target}")
if floor:
    print(f"         floor, the same audit row written by plain SQL in the same statement (no trigger): {floor:8.0f} tps; ratio {floor / plain:.2f}")
if common:
    print(f"         the common kind of plpgsql audit trigger (to_jsonb(NEW) into a log, no chain):    {common:8.0f} tps; ratio {common / plain:.2f}")
PY
}

# After each figure: verify what was written, then empty both tables and the log (millions of
# rows otherwise fill a shared disk). The pgbench backends are gone by then, so no lane head
# outlives the TRUNCATE (the TRUNCATE's own audit row starts the chain afresh).
verified=0; broken=0
verify_and_empty() {
  local out
  out=$(scripts/cluster.sh psql "$STATE" "$DB" -Atc "SELECT (SELECT count(*) FROM audit.log) || ' ' || (SELECT count(*) FROM audit.verify())")
  verified=$((verified + ${out% *})); broken=$((broken + ${out#* }))
  scripts/cluster.sh psql "$STATE" "$DB" -c "TRUNCATE audit.log" -c "CHECKPOINT" >/dev/null
}

echo "== audit log: pgbench inserts, 2 x ${DURATION}s per figure, table with audit on beside the same without"
# Single-row durable inserts at 1 and 2 clients: with durable commits the WAL flush is what
# both sides wait for, and how well two clients share one flush depends on how long each
# transaction keeps its backend busy, so the ratio differs between the two.
for figure in "one on 1" "one on $CLIENTS" "hundred on $CLIENTS" "one off $CLIENTS" "hundred off $CLIENTS"; do
  # shellcheck disable=SC2086
  measure $figure
  verify_and_empty
done
echo "     audit.verify() over the ${verified} audit rows written: $([ "$broken" = 0 ] && echo "intact" || echo "BROKEN")"
