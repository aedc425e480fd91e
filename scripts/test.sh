#!/usr/bin/env bash
# `make test`: everything, against real parts.
#   1. the server's unit tests (no database needed)
#   2. the extension's #[pg_test]s, in a PostgreSQL 15 that pgrx starts
#   3. black-box tests: a throwaway cluster in .fluxbase/test, a real server per test on a free port
#   4. `make bench` still runs: every figure, one second each, checked for, not judged
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# Every runner's output is kept so the closing line can total what ran.
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT
run() { "$@" 2>&1 | tee -a "$LOG"; }

echo "== 1/4 server unit tests"
run cargo test -p fluxbase-server --no-fail-fast

echo "== 2/4 extension tests (cargo pgrx test pg15)"
# cargo pgrx test installs its test build over the installed library in place (it copies into
# the file), and a running cluster that has that file mapped (a `make run` on this machine)
# dies of SIGILL/SIGSEGV and stays down (found by a reviewer). Give the path a fresh copy
# first: running clusters keep the file they mapped, pgrx overwrites the copy.
lib="$(/usr/lib/postgresql/15/bin/pg_config --pkglibdir)/fluxbase.so"
if [ -f "$lib" ]; then
  as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
  as_root cp -p "$lib" "$lib.fluxbase-detach"
  as_root mv -f "$lib.fluxbase-detach" "$lib"
fi
(
  cd pg_ext
  if [ "$(id -u)" = 0 ]; then
    # PostgreSQL will not run as root: pgrx starts its test cluster as `postgres` via sudo,
    # in a folder that user owns.
    PGRX_DATA=/var/tmp/fluxbase-pgrx-test
    rm -rf "$PGRX_DATA"; mkdir -p "$PGRX_DATA"; chown postgres "$PGRX_DATA"
    run cargo pgrx test pg15 --runas postgres --pgdata "$PGRX_DATA/data"
  else
    # As an ordinary user pgrx installs the test build with sudo (the PostgreSQL folders are
    # root's) and runs the cluster as this same user.
    PGRX_DATA=${TMPDIR:-/tmp}/fluxbase-pgrx-test-$(id -un)
    rm -rf "$PGRX_DATA"; mkdir -p "$PGRX_DATA"
    run cargo pgrx test pg15 --runas "$(id -un)" --pgdata "$PGRX_DATA/data"
  fi
)

echo "== 3/4 black-box tests (real cluster, real server)"
# pgrx test installed its own (debug, test-only) build; put the release build back.
scripts/install-extension.sh >/dev/null
STATE=.fluxbase/test
scripts/cluster.sh destroy "$STATE"
trap 'scripts/cluster.sh destroy "$STATE"; rm -f "$LOG"' EXIT
FLUXBASE_EXPOSE_SECRET_FOR_TESTS=1 scripts/cluster.sh init "$STATE" fluxbase_template
scripts/cluster.sh psql "$STATE" fluxbase_template -f sql/demo.sql
# The Chinook demo's tables, data and policies go into the shared template too (about a second);
# its 67 accounts only into a template of their own (cloned from it), because other tests
# count users: tests/tests/chinook_rls.rs clones that one.
scripts/load-chinook.sh "$STATE" fluxbase_template --no-accounts
scripts/cluster.sh psql "$STATE" postgres -c "CREATE DATABASE fluxbase_chinook TEMPLATE fluxbase_template"
scripts/cluster.sh psql "$STATE" fluxbase_chinook -f sql/demo_chinook/accounts.sql
# The client compatibility suite's dependencies (@supabase/postgrest-js, pinned by the lockfile).
npm ci --prefix tests/js --no-audit --no-fund >/dev/null
FLUXBASE_TEST_STATE="$ROOT/$STATE" FLUXBASE_REPO="$ROOT" run cargo test -p fluxbase-tests --no-fail-fast

echo "== 4/4 make bench runs end to end (scripts/bench-smoke.sh)"
run scripts/bench-smoke.sh

# The closing line: every test of the four stages, totalled.
python3 - "$LOG" <<'PY'
import re, sys
passed = failed = 0
for line in open(sys.argv[1], errors="replace"):
    m = re.search(r"test result: \w+\. (\d+) passed; (\d+) failed", line)
    if m:
        passed += int(m.group(1)); failed += int(m.group(2))
    # scripts/bench-smoke.sh: one check per figure make bench prints.
    m = re.match(r"bench smoke: (\d+) passed, (\d+) failed$", line.strip())
    if m:
        passed += int(m.group(1)); failed += int(m.group(2))
    # node --test (the postgrest-js suite, run inside one cargo test): its spec summary.
    m = re.match(r"\u2139 (pass|fail) (\d+)$", line.strip())
    if m:
        if m.group(1) == "pass":
            passed += int(m.group(2))
        else:
            failed += int(m.group(2))
print(f"total: {passed} passed, {failed} failed")
sys.exit(1 if failed or passed == 0 else 0)
PY
