#!/usr/bin/env bash
# A local PostgreSQL 15 cluster with the fluxbase extension, for `make run` and `make test`.
#
#   scripts/cluster.sh init  STATE_DIR DB   create (once) and start a cluster, create DB with the
#                                           extension and the server's login role
#   scripts/cluster.sh start STATE_DIR      start an existing cluster
#   scripts/cluster.sh stop  STATE_DIR      stop it (no error when not running)
#   scripts/cluster.sh restart STATE_DIR    restart it (to load a newly installed extension library)
#   scripts/cluster.sh destroy STATE_DIR    stop it and delete it
#   scripts/cluster.sh psql  STATE_DIR DB [psql args]   psql as the cluster's superuser
#
# STATE_DIR receives: port, server.env (FLUXBASE_DB_PORT, FLUXBASE_DB_PASSWORD), socket_dir, and
# with FLUXBASE_EXPOSE_SECRET_FOR_TESTS=1 (test clusters only) jwt_secret.
# PostgreSQL refuses to run as root, so as root every server command runs as the `postgres` OS
# user; as an ordinary user it runs as that user.
set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
cmd=${1:?usage: cluster.sh init|start|stop|destroy|psql STATE_DIR ...}
state=$(realpath -m "${2:?state dir required}")
shift 2

is_root() { [ "$(id -u)" = 0 ]; }
as_pg() { if is_root; then runuser -u postgres -- "$@"; else "$@"; fi; }

# Where the data lives: inside STATE_DIR when the postgres user can reach it, otherwise
# (root running from a folder postgres cannot traverse) under /var/tmp, recorded in STATE_DIR.
pg_root() {
  if [ -f "$state/pg_root" ]; then cat "$state/pg_root"; return; fi
  local root="$state/pg"
  if is_root && ! runuser -u postgres -- test -x "$state" 2>/dev/null; then
    root="/var/tmp/fluxbase-$(printf %s "$state" | sha1sum | cut -c1-12)"
  fi
  echo "$root"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

random_secret() { head -c 48 /dev/urandom | base64 | tr -d '/+=\n'; }

psql_admin() {
  local db=$1; shift
  psql -X -q -v ON_ERROR_STOP=1 -h "$(cat "$state/socket_dir")" -p "$(cat "$state/port")" -U postgres -d "$db" "$@"
}

start() {
  local root; root=$(pg_root)
  if as_pg "$PGBIN/pg_ctl" -D "$root/data" status >/dev/null 2>&1; then return 0; fi
  # RUST_BACKTRACE in the caller's environment would make the extension (pgrx) attach Rust
  # backtraces to error details that clients receive; the server never inherits it.
  as_pg env -u RUST_BACKTRACE -u RUST_LIB_BACKTRACE "$PGBIN/pg_ctl" -D "$root/data" -l "$root/postgres.log" -w -t 60 start >/dev/null
}

init() {
  local db=${1:?database name required}
  mkdir -p "$state"
  local root; root=$(pg_root)
  echo "$root" > "$state/pg_root"
  if [ ! -f "$root/data/PG_VERSION" ]; then
    mkdir -p "$root/run"
    is_root && chown -R postgres "$root"
    chmod 700 "$root"
    as_pg "$PGBIN/initdb" -D "$root/data" -U postgres -E UTF8 --locale=C.UTF-8 \
      --auth-local=trust --auth-host=scram-sha-256 >/dev/null
    local port; port=$(free_port)
    local secret; secret=$(random_secret)
    local mfa_key; mfa_key=$(random_secret)
    echo "$port" > "$state/port"
    echo "$root/run" > "$state/socket_dir"
    # Only the black-box tests need the signing secret outside the cluster (to forge expired
    # and wrong-audience tokens); a development cluster keeps it to itself.
    if [ "${FLUXBASE_EXPOSE_SECRET_FOR_TESTS:-}" = 1 ]; then
      (umask 077; echo "$secret" > "$state/jwt_secret")
    fi
    # The signing secret and the TOTP encryption key go into their own file, readable only by the cluster's owner.
    as_pg sh -c "umask 077; printf \"fluxbase.jwt_secret = '%s'\nfluxbase.mfa_encryption_key = '%s'\n\" '$secret' '$mfa_key' > '$root/data/fluxbase_secret.conf'"
    as_pg sh -c "cat >> '$root/data/postgresql.conf'" <<CONF

# --- Fluxbase ---
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$root/run'
unix_socket_permissions = 0700
shared_preload_libraries = 'fluxbase'
include_if_exists = 'fluxbase_secret.conf'
CONF
  fi
  start
  if ! psql_admin postgres -Atc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1; then
    psql_admin postgres -c "CREATE DATABASE \"$db\""
    psql_admin "$db" -c "CREATE EXTENSION fluxbase"
  fi
  if [ ! -f "$state/server.env" ]; then
    local password; password=$(random_secret)
    psql_admin postgres -v pw="$password" <<'SQL'
SELECT format('CREATE ROLE fluxbase_server LOGIN PASSWORD %L IN ROLE fluxbase_authenticator', :'pw')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'fluxbase_server') \gexec
SELECT format('ALTER ROLE fluxbase_server PASSWORD %L', :'pw') \gexec
SQL
    (umask 077; printf 'FLUXBASE_DB_PORT=%s\nFLUXBASE_DB_PASSWORD=%s\n' "$(cat "$state/port")" "$password" > "$state/server.env")
  fi
}

stop() {
  [ -f "$state/pg_root" ] || return 0
  local root; root=$(cat "$state/pg_root")
  if as_pg "$PGBIN/pg_ctl" -D "$root/data" status >/dev/null 2>&1; then
    as_pg "$PGBIN/pg_ctl" -D "$root/data" -m fast -w stop >/dev/null
  fi
}

case "$cmd" in
  init) init "$@" ;;
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  destroy) stop; [ -f "$state/pg_root" ] && rm -rf "$(cat "$state/pg_root")"; rm -rf "$state" ;;
  psql) db=${1:?database name required}; shift; psql_admin "$db" "$@" ;;
  *) echo "unknown command: $cmd" >&2; exit 2 ;;
esac
