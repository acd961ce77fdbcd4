#!/usr/bin/env bash
# scripts/bench-retention.sh BIN [RUNS]: retention under load (issue 14). On a
# fresh database (retdb): `bench fanout --nodes 5000` three times with no old
# runs; then RUNS (default 200,000) finished runs of four nodes with an
# attempt each, created 40 days ago (past the default 30); then a
# `gantry coordinator` purging them while `bench fanout --nodes 5000` runs
# three times more; then how long the purge took, and the sizes of runs,
# nodes and attempts (table and indexes) empty, seeded, and after the purge
# and a VACUUM.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
services_env="$("$ROOT/scripts/services.sh")"
eval "$services_env"
bin=$1; n=${2:-200000}
base="${GANTRY_DATABASE_URL%/*}"
psql "$base/postgres" -qc "DROP DATABASE IF EXISTS retdb WITH (FORCE)" >/dev/null
psql "$base/postgres" -qc "CREATE DATABASE retdb" >/dev/null
export GANTRY_DATABASE_URL="$base/retdb" GANTRY_REDIS_PREFIX="ret-$RANDOM"
db="$GANTRY_DATABASE_URL"
"$bin" migrate >/dev/null 2>&1
sizes() {
  psql "$db" -qAtc "SELECT string_agg(c.relname || ' ' || pg_size_pretty(pg_total_relation_size(c.oid)), ', ' ORDER BY c.relname)
    FROM pg_class c WHERE c.relname IN ('runs', 'nodes', 'attempts') AND c.relkind = 'r'"
}
fanout() { "$bin" bench fanout --nodes 5000 2>/dev/null | tail -1 | grep -o '"nodes_per_s":[0-9.]*'; }
"$bin" bench fanout --nodes 2 >/dev/null 2>&1   # the template run (four nodes)
echo "empty: $(sizes)"
for i in 1 2 3; do echo "fanout without purge: $(fanout)"; done
echo "before the seed: $(sizes)"
template=$(psql "$db" -qAtc "SELECT id FROM runs WHERE workflow_name = 'bench-fanout-2' LIMIT 1")
psql "$db" -qc "
  CREATE TEMP TABLE seeded AS
    SELECT gen_random_uuid() AS id, g AS n,
           now() - interval '40 days' - make_interval(secs => g::float8) AS at
    FROM generate_series(1, $n) AS g;
  INSERT INTO runs (id, workflow_id, workflow_name, workflow_version, plan_hash, input, status,
                    remaining, failed, created_at, updated_at, finished_at)
    SELECT s.id, t.workflow_id, t.workflow_name, t.workflow_version, t.plan_hash,
           jsonb_build_object('seed', s.n), 'succeeded', 0, 0, s.at, s.at, s.at + interval '1 second'
    FROM seeded s, runs t WHERE t.id = '$template';
  INSERT INTO nodes (run_id, idx, node_id, agent, queue, status, attempt, tries, waiting_on,
                     queued_at, started_at, finished_at, output)
    SELECT s.id, n.idx, n.node_id, n.agent, n.queue, 'succeeded', 1, 1, 0, s.at, s.at, s.at, '{}'
    FROM seeded s, nodes n
    WHERE n.run_id = '$template';
  INSERT INTO attempts (run_id, idx, attempt, worker, status, started_at, finished_at, exit_code, output)
    SELECT n.run_id, n.idx, 1, 'seed', 'succeeded', n.started_at, n.finished_at, 0, '{}'
    FROM nodes n JOIN seeded s ON s.id = n.run_id;
  ANALYZE runs, nodes, attempts;"
echo "seeded $n runs: $(sizes)"
t0=$(date +%s)
"$bin" coordinator >/tmp/bench-retention-coordinator.log 2>&1 &
coord=$!
trap 'kill $coord 2>/dev/null || true' EXIT
sleep 2
for i in 1 2 3; do echo "fanout while purging: $(fanout)"; done
for _ in $(seq 1 1800); do
  left=$(psql "$db" -qAtc "SELECT count(*) FROM runs WHERE input ? 'seed'")
  [ "$left" = 0 ] && break
  sleep 1
done
echo "purged in $(( $(date +%s) - t0 )) s (runs left: $left)"
kill $coord 2>/dev/null || true
psql "$db" -qc "VACUUM runs, nodes, attempts"
echo "after the purge and VACUUM: $(sizes)"
