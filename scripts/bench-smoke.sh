#!/usr/bin/env bash
# Stage 4 of `make test`: `make bench` still runs end to end. Every benchmark runs for one
# second and each figure it should print is checked for (with a number in it) — never its
# value: speed is read from `make bench` on a quiet machine, not tested. Why this exists: in
# session 4 a change to the session reset broke the first step of `make bench`, and nothing
# noticed until the next person ran it.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp)
trap 'rm -f "$out"' EXIT
status=0
BENCH_SECONDS=1 scripts/bench.sh >"$out" 2>&1 || status=$?

python3 - "$out" "$status" <<'PY'
import re, sys
text = open(sys.argv[1], errors="replace").read()
status = int(sys.argv[2])
NUM = r"[0-9][0-9.]*"
# What each part of make bench must print: the auth kernel's micro figures and request
# transactions, every audit figure with its floor and common-trigger baselines and the
# chain check, and every data API cell beside pgbench.
expected = {
    "auth: per-call cost, empty blacklist": rf"blacklist of 0 rows: remembered {NUM} us \| looked up {NUM} us \| first sight {NUM} us",
    "auth: per-call cost, 1M-row blacklist": rf"blacklist of 1000000 rows: remembered {NUM} us",
    "auth: sign-in latency": rf"sign-in latency: p50 {NUM} ms, p99 {NUM} ms",
    "auth: failed sign-in latency": rf"failed sign-in p50: wrong password {NUM} ms \| unknown e-mail {NUM} ms \| locked account {NUM} ms",
    "auth: verified/unchecked ratio": rf"ratio verified/unchecked: {NUM}",
    "auth: verified under epoch churn": rf"bumps the revocation epoch .*: {NUM} tps",
    "audit: 1-row durable, 1 client": rf"1-row inserts, synchronous_commit=on , 1 client : no audit +{NUM} tps, audit on +{NUM} tps .*ratio {NUM}",
    "audit: 1-row durable, 2 clients": rf"1-row inserts, synchronous_commit=on , 2 clients: no audit +{NUM} tps, audit on +{NUM} tps .*ratio {NUM}",
    "audit: 100-row durable": rf"100-row inserts, synchronous_commit=on .*ratio {NUM}",
    "audit: 1-row async": rf"1-row inserts, synchronous_commit=off.*ratio {NUM}",
    "audit: 100-row async": rf"100-row inserts, synchronous_commit=off.*ratio {NUM}",
    "audit: the floor beside each 1-row figure": (rf"floor, the same audit row .*: +{NUM} tps; ratio {NUM}", 3),
    "audit: the common trigger beside each 1-row figure": (rf"the common kind of plpgsql audit trigger .*: +{NUM} tps; ratio {NUM}", 3),
    "audit: the chain of every row written is intact": rf"audit\.verify\(\) over the [1-9][0-9]* audit rows written: intact",
    "data API: artist by id": (rf"artist by id +(4|32) +{NUM} .* {NUM}x", 2),
    "data API: artist by id + albums": (rf"artist by id \+ albums +(4|32) +{NUM} .* {NUM}x", 2),
    "data API: invoices + lines + tracks": (rf"invoices \+ lines \+ tracks \(list\) +(4|32) +{NUM} .* {NUM}x", 2),
    "data API: bulk insert": (rf"bulk insert \(10 rows\) +(4|32) +{NUM} .* {NUM}x", 2),
    "data API: one SQL statement per embedded request": rf"SQL statements per embedded request .*: {NUM}",
}
passed = failed = 0
for name, rule in expected.items():
    pattern, times = rule if isinstance(rule, tuple) else (rule, 1)
    found = len(re.findall(pattern, text))
    if found >= times:
        passed += 1
    else:
        failed += 1
        print(f"bench smoke FAILED: {name}: expected {times} line(s) matching {pattern!r}, found {found}")
if status != 0:
    failed += 1
    print(f"bench smoke FAILED: scripts/bench.sh exited with {status}")
if failed:
    print("---- make bench printed:")
    print(text[-6000:])
print(f"bench smoke: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
PY
