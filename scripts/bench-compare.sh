#!/usr/bin/env bash
# Runs gantry's chain and fanout benchmarks and the Celery peer
# (../shared/peers/celery_dag.py) on the same Redis, machine and session, and
# prints every figure plus the ratios (on the median of three gantry runs). Usage: scripts/bench-compare.sh [FANOUT_NODES]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# Assigned first: `eval "$(...)"` alone would hide a failing services.sh.
services_env="$(scripts/services.sh)"
eval "$services_env"
FANOUT="${1:-5000}"
PEERS="${GANTRY_PEERS_DIR:-$ROOT/../shared/peers}"
cargo build --release -p gantry >&2
G="$ROOT/target/release/gantry"
python3 -c 'import celery, redis' 2>/dev/null || pip install -q "celery[redis]==5.5.*" >&2

# Three runs of each gantry scenario (a 2-core machine is noisy); the ratios
# use the median run.
chains=(); fanouts=()
for _ in 1 2 3; do
  chains+=("$("$G" bench chain 2>/dev/null | tail -1)")
  fanouts+=("$("$G" bench fanout --nodes "$FANOUT" 2>/dev/null | tail -1)")
done
peer="$(python3 "$PEERS/celery_dag.py" --redis "${GANTRY_REDIS_URL}/15" --chain 200 --fanout "$FANOUT" 2>/dev/null | tail -1)"
for c in "${chains[@]}"; do echo "gantry chain:  $c"; done
for f in "${fanouts[@]}"; do echo "gantry fanout: $f"; done
echo "celery:        $peer"
python3 - "$peer" "${chains[@]}" "${fanouts[@]}" <<'PY'
import json, statistics, sys
p = json.loads(sys.argv[1])
runs = [json.loads(a) for a in sys.argv[2:]]
chains = [r for r in runs if r["scenario"] == "chain"]
fanouts = [r for r in runs if r["scenario"] == "fanout"]
med = lambda rs, k: statistics.median(r[k] for r in rs)
print(json.dumps({
    "gantry_hop_ms_p50_median": med(chains, "hop_ms_p50"),
    "gantry_hop_ms_p99_median": med(chains, "hop_ms_p99"),
    "gantry_fanout_nodes_per_s_median": med(fanouts, "nodes_per_s"),
    "hop_p50_celery_over_gantry": round(p["hop_ms_p50"] / med(chains, "hop_ms_p50"), 2),
    "hop_p99_celery_over_gantry": round(p["hop_ms_p99"] / med(chains, "hop_ms_p99"), 2),
    "fanout_gantry_over_celery": round(med(fanouts, "nodes_per_s") / p["fanout_nodes_per_s"], 2),
}))
PY
