#!/usr/bin/env bash
# Runs gantry's chain and fanout benchmarks and the Celery peer
# (../shared/peers/celery_dag.py) on the same Redis, machine and session, and
# prints every figure plus the ratios. Usage: scripts/bench-compare.sh [FANOUT_NODES]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
eval "$(scripts/services.sh)"
FANOUT="${1:-5000}"
PEERS="${GANTRY_PEERS_DIR:-$ROOT/../shared/peers}"
cargo build --release -p gantry >&2
G="$ROOT/target/release/gantry"
python3 -c 'import celery, redis' 2>/dev/null || pip install -q "celery[redis]==5.5.*" >&2

chain="$("$G" bench chain 2>/dev/null | tail -1)"
fanout="$("$G" bench fanout --nodes "$FANOUT" 2>/dev/null | tail -1)"
peer="$(python3 "$PEERS/celery_dag.py" --redis "${GANTRY_REDIS_URL}/15" --chain 200 --fanout "$FANOUT" 2>/dev/null | tail -1)"
echo "gantry chain:  $chain"
echo "gantry fanout: $fanout"
echo "celery:        $peer"
python3 - "$chain" "$fanout" "$peer" <<'PY'
import json, sys
c, f, p = (json.loads(a) for a in sys.argv[1:4])
print(json.dumps({
    "hop_p50_celery_over_gantry": round(p["hop_ms_p50"] / c["hop_ms_p50"], 2),
    "hop_p99_celery_over_gantry": round(p["hop_ms_p99"] / c["hop_ms_p99"], 2),
    "fanout_gantry_over_celery": round(f["nodes_per_s"] / p["fanout_nodes_per_s"], 2),
}))
PY
