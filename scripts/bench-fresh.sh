#!/usr/bin/env bash
# scripts/bench-fresh.sh LABEL BIN SCENARIO ARGS...: one `gantry bench` on a freshly
# created database (benchdb), migrated by BIN itself; prints LABEL and the result.
# GANTRY_BENCH_SQL, when set, is run on benchdb after the migration (for trying a
# schema change before writing it as one).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
services_env="$("$ROOT/scripts/services.sh")"
eval "$services_env"
label=$1; bin=$2; shift 2
base="${GANTRY_DATABASE_URL%/*}"
admin="$base/postgres"
psql "$admin" -qc "DROP DATABASE IF EXISTS benchdb WITH (FORCE)" >/dev/null
psql "$admin" -qc "CREATE DATABASE benchdb" >/dev/null
export GANTRY_DATABASE_URL="$base/benchdb"
export GANTRY_REDIS_PREFIX="bench-$RANDOM"
"$bin" migrate >/dev/null 2>&1
if [ -n "${GANTRY_BENCH_SQL:-}" ]; then psql "$GANTRY_DATABASE_URL" -qc "$GANTRY_BENCH_SQL" >/dev/null; fi
out=$("$bin" bench "$@" 2>/dev/null | tail -1)
echo "$label $* $out"
