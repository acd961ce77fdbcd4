#!/usr/bin/env bash
# scripts/bench-profile.sh BIN SCENARIO ARGS...: one `gantry bench` against a
# Postgres of its own (.gantry/prof, port 55434, with pg_stat_statements) on a
# fresh database, then where Postgres spent its time: the ten statements with
# the most execution time, the total, and the WAL the run wrote. Measures
# where a change saves database work, which a timed benchmark on a shared
# machine cannot show.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
services_env="$(GANTRY_STATE_DIR="$ROOT/.gantry/prof" GANTRY_PG_PORT=55434 GANTRY_REDIS_PORT=56381 \
  GANTRY_PG_OPTS="-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all" \
  "$ROOT/scripts/services.sh")"
eval "$services_env"
bin=$1; shift
base="${GANTRY_DATABASE_URL%/*}"
psql "$base/postgres" -qc "DROP DATABASE IF EXISTS profdb WITH (FORCE)" >/dev/null
psql "$base/postgres" -qc "CREATE DATABASE profdb" >/dev/null
export GANTRY_DATABASE_URL="$base/profdb" GANTRY_REDIS_PREFIX="prof-$RANDOM"
db="$GANTRY_DATABASE_URL"
"$bin" migrate >/dev/null 2>&1
psql "$db" -qc "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null
psql "$db" -qAtc "SELECT pg_stat_statements_reset()" >/dev/null
wal0=$(psql "$db" -qAtc "SELECT pg_current_wal_lsn()")
out=$("$bin" bench "$@" 2>/dev/null | tail -1)
echo "$* $out"
psql "$db" -qAtc "SELECT 'wal_mb ' || round(pg_wal_lsn_diff(pg_current_wal_lsn(), '$wal0') / 1e6, 1)"
psql "$db" -qc "SELECT round(total_exec_time::numeric, 1) AS ms, calls, rows,
       left(regexp_replace(query, '\s+', ' ', 'g'), 90) AS statement
  FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
  WHERE d.datname = 'profdb' ORDER BY total_exec_time DESC LIMIT 10"
psql "$db" -qAtc "SELECT 'total_exec_ms ' || round(sum(total_exec_time)::numeric, 1)
  FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = 'profdb'"
