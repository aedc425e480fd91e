#!/usr/bin/env bash
# Installs what building and running Fluxbase needs, skipping whatever is already there:
# Debian's PostgreSQL 15 (server and headers, and pgaudit, which the audit tests preload beside
# fluxbase), libclang for pgrx's bindings, sudo (pgrx test uses it to run the test cluster as
# `postgres`), curl and wrk (make bench's HTTP load), Node and npm (the postgrest-js suite),
# prometheus (only its promtool: the metrics test runs `promtool check metrics`; the package's
# service is not started), and cargo-pgrx at the exact pgrx version.
set -euo pipefail
PGRX_VERSION=0.18.0
PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

packages=(postgresql-15 postgresql-server-dev-15 postgresql-contrib postgresql-15-pgaudit libclang-dev clang sudo python3 pkg-config curl wrk openssl prometheus)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Node (>= 18, for node:test) and npm run the @supabase/postgrest-js compatibility suite.
if ! command -v node >/dev/null || ! command -v npm >/dev/null \
   || [ "$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)" -lt 18 ]; then
  echo "setup: installing nodejs and npm"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi

if ! cargo pgrx --version 2>/dev/null | grep -q "$PGRX_VERSION"; then
  echo "setup: installing cargo-pgrx $PGRX_VERSION (several minutes)"
  cargo install cargo-pgrx --version "$PGRX_VERSION" --locked
fi

if ! grep -qs "^pg15 = \"$PG_CONFIG\"" "${PGRX_HOME:-$HOME/.pgrx}/config.toml"; then
  cargo pgrx init --pg15 "$PG_CONFIG" >/dev/null
fi
