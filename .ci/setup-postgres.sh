#!/usr/bin/env bash
# Start a throwaway PostgreSQL server for the tuning tests (shared Optuna storage).
#
#   source .ci/setup-postgres.sh     # exports KARYOBENCH_TEST_POSTGRES_URL (CI does this)
#   bash .ci/setup-postgres.sh       # prints the export lines
#
# Installs the server with apt-get when missing (set KARYOBENCH_PG_NO_INSTALL=1 to only
# use binaries already on the machine), makes a cluster in a temporary folder (as the
# 'postgres' user when run as root: initdb refuses root), listens on 127.0.0.1 only with
# trust authentication, creates the database 'karyobench' and exports
#   KARYOBENCH_TEST_POSTGRES_URL=postgresql+psycopg2://postgres@127.0.0.1:<port>/karyobench
#   KARYOBENCH_TEST_POSTGRES_DATA=<cluster folder>   (pg_ctl -D "$it/data" stop)
# Safe to source under `set -euo pipefail`: failures return non-zero, never exit.

_kb_pg_log() { echo "setup-postgres: $*" >&2; }

_kb_pg_bindir() {
  local bin
  if bin=$(command -v pg_ctl 2>/dev/null) && [ -n "$bin" ]; then
    dirname "$(readlink -f "$bin")"
    return 0
  fi
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$bin" ] && [ -x "$bin/pg_ctl" ] && echo "$bin"
}

_kb_pg_free_port() {
  python3 - <<'PY'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
}

_kb_pg_setup() {
  local bindir tmp port owner url as_owner
  bindir=$(_kb_pg_bindir || true)
  if [ -z "$bindir" ]; then
    if [ "${KARYOBENCH_PG_NO_INSTALL:-0}" = "1" ] || ! command -v apt-get >/dev/null 2>&1; then
      _kb_pg_log "PostgreSQL server binaries not found (and not installing)"
      return 1
    fi
    _kb_pg_log "installing postgresql with apt-get"
    apt-get update -qq >/dev/null || return 1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      postgresql >/dev/null || return 1
    bindir=$(_kb_pg_bindir || true)
    [ -n "$bindir" ] || { _kb_pg_log "no pg_ctl after installing"; return 1; }
  fi
  if ! python3 -c "import psycopg2" 2>/dev/null; then
    python3 -m pip install -q psycopg2-binary >/dev/null 2>&1 || \
      _kb_pg_log "warning: psycopg2-binary not installed (pip install 'karyobench[postgres]')"
  fi
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/karyobench-pg.XXXXXX") || return 1
  chmod 755 "$tmp"
  owner=$(id -un)
  as_owner=()
  if [ "$(id -u)" = "0" ]; then
    owner=postgres
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres || return 1
    chown postgres "$tmp"
    if command -v runuser >/dev/null 2>&1; then
      as_owner=(runuser -u postgres --)
    else
      as_owner=(su postgres -s /bin/sh -c)
    fi
  fi
  _kb_pg_run() {
    if [ "${as_owner[0]:-}" = "su" ]; then
      "${as_owner[@]}" "$(printf '%q ' "$@")"
    else
      "${as_owner[@]}" "$@"
    fi
  }
  port=$(_kb_pg_free_port) || return 1
  _kb_pg_run "$bindir/initdb" -D "$tmp/data" -U postgres -A trust -E UTF8 --no-sync \
    >"$tmp/initdb.log" 2>&1 || { _kb_pg_log "initdb failed:"; cat "$tmp/initdb.log" >&2; return 1; }
  _kb_pg_run "$bindir/pg_ctl" -D "$tmp/data" -l "$tmp/server.log" -w -t 60 \
    -o "-p $port -k $tmp -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100" \
    start >/dev/null || { _kb_pg_log "server did not start:"; cat "$tmp/server.log" >&2; return 1; }
  _kb_pg_run "$bindir/createdb" -h 127.0.0.1 -p "$port" -U postgres karyobench || return 1
  url="postgresql+psycopg2://postgres@127.0.0.1:$port/karyobench"
  export KARYOBENCH_TEST_POSTGRES_URL="$url"
  export KARYOBENCH_TEST_POSTGRES_DATA="$tmp"
  _kb_pg_log "PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (owner $owner, cluster $tmp/data)"
  echo "export KARYOBENCH_TEST_POSTGRES_URL=$url"
  echo "export KARYOBENCH_TEST_POSTGRES_DATA=$tmp"
}

_kb_pg_setup
