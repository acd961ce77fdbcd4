#!/usr/bin/env bash
# Installs Redis and PostgreSQL from the OS packages when they are missing and
# starts them on loopback with their data under .gantry/ in the repo.
# Idempotent: services already running are left alone. Prints nothing to
# stdout but the environment to use (`eval "$(scripts/services.sh)"`).
# GANTRY_PG_OPTS adds server options to a Postgres this script starts
# (scripts/bench-profile.sh loads pg_stat_statements that way).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${GANTRY_STATE_DIR:-$ROOT/.gantry}"
PG_PORT="${GANTRY_PG_PORT:-55432}"
REDIS_PORT="${GANTRY_REDIS_PORT:-56379}"
log() { echo "services: $*" >&2; }

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

pg_bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }

install_missing() {
  local pkgs=()
  command -v redis-server >/dev/null || pkgs+=(redis-server)
  [ -n "$(pg_bindir)" ] || pkgs+=(postgresql)
  if [ ${#pkgs[@]} -gt 0 ]; then
    log "installing ${pkgs[*]}"
    $SUDO apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${pkgs[@]}" >&2
  fi
}

start_redis() {
  mkdir -p "$STATE/redis"
  if redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1; then
    # A Redis left by a checkout since deleted saves into a directory that
    # is gone (it reports an empty `dir`) and, after its next failed save,
    # refuses every write (MISCONF): replace it. Any other Redis is kept.
    local out dir
    out="$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" config get dir 2>/dev/null)"
    dir="$(sed -n 2p <<<"$out")"
    if [ "$(sed -n 1p <<<"$out")" != dir ] || { [ -n "$dir" ] && [ -d "$dir" ]; }; then
      return
    fi
    log "redis on 127.0.0.1:$REDIS_PORT saves into a directory that no longer exists; restarting it"
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
    for _ in $(seq 50); do
      redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1 || break
      sleep 0.1
    done
  fi
  log "starting redis on 127.0.0.1:$REDIS_PORT"
  # AOF and noeviction: Redis holds deliveries, which must not be evicted.
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$STATE/redis" \
    --appendonly yes --appendfsync everysec --maxmemory-policy noeviction \
    --daemonize yes --logfile "$STATE/redis/redis.log" --pidfile "$STATE/redis/redis.pid" >&2
  for _ in $(seq 1 50); do
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1 && return
    sleep 0.1
  done
  log "redis did not start; see $STATE/redis/redis.log"; exit 1
}

# Runs a PostgreSQL tool as the user that owns the cluster (initdb and
# postgres refuse to run as root).
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_postgres() {
  local bin; bin="$(pg_bindir)"
  local data="$PG_DATA"
  mkdir -p "$data"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$data" && chmod 700 "$data"
  if [ ! -f "$data/PG_VERSION" ]; then
    log "initialising postgres in $data"
    local pw; pw="$(mktemp)"; echo gantry > "$pw"; chmod 644 "$pw"
    as_pg "$bin/initdb" -D "$data" -U gantry --pwfile="$pw" --auth=scram-sha-256 -E UTF8 >&2
    rm -f "$pw"
  fi
  if as_pg "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then return; fi
  log "starting postgres on 127.0.0.1:$PG_PORT (fsync and synchronous_commit on)"
  as_pg "$bin/pg_ctl" -D "$data" -l "$data/postgres.log" -w -t 60 start \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $data -c max_connections=400 -c fsync=on -c synchronous_commit=on -c shared_buffers=256MB ${GANTRY_PG_OPTS:-}" >&2
  for _ in $(seq 1 50); do
    PGPASSWORD=gantry psql -h 127.0.0.1 -p "$PG_PORT" -U gantry -d postgres -tAc 'select 1' >/dev/null 2>&1 && break
    sleep 0.2
  done
  if ! PGPASSWORD=gantry psql -h 127.0.0.1 -p "$PG_PORT" -U gantry -d postgres -tAc "select 1 from pg_database where datname='gantry'" | grep -q 1; then
    PGPASSWORD=gantry psql -h 127.0.0.1 -p "$PG_PORT" -U gantry -d postgres -qc 'create database gantry' >&2
  fi
}

install_missing
mkdir -p "$STATE"
PG_DATA="$STATE/pg"
if [ "$(id -u)" = 0 ] && ! runuser -u postgres -- test -x "$STATE" 2>/dev/null; then
  # The repo is not reachable by the postgres user (e.g. under /root).
  PG_DATA="/var/tmp/gantry-pg-$(echo "$ROOT" | sha1sum | cut -c1-8)"
fi
start_redis
start_postgres
cat <<ENV
export GANTRY_PG_DATA=$PG_DATA
export GANTRY_PG_BIN=$(pg_bindir)
export GANTRY_DATABASE_URL=postgres://gantry:gantry@127.0.0.1:$PG_PORT/gantry
export DATABASE_URL=postgres://gantry:gantry@127.0.0.1:$PG_PORT/gantry
export GANTRY_REDIS_URL=redis://127.0.0.1:$REDIS_PORT
ENV
