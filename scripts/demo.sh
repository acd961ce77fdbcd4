#!/usr/bin/env bash
# README command 1: install and start Redis and Postgres if needed, build
# gantry, start `gantry dev`, register the example agents and workflow, run
# it, and print its outputs. Exits 0 only when the run succeeded.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
eval "$(scripts/services.sh)"

if ! command -v cargo >/dev/null; then
  echo "demo: cargo is required (https://rustup.rs)" >&2; exit 1
fi
cargo build --release -p gantry >&2
GANTRY="$ROOT/target/release/gantry"

export GANTRY_LISTEN="${GANTRY_LISTEN:-127.0.0.1:8080}"
export GANTRY_API_URL="http://$GANTRY_LISTEN"
mkdir -p .gantry
"$GANTRY" dev >.gantry/dev.log 2>&1 &
DEV=$!
trap 'kill $DEV 2>/dev/null; wait $DEV 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -fsS "$GANTRY_API_URL/readyz" >/dev/null 2>&1 && break
  kill -0 $DEV 2>/dev/null || { echo "demo: gantry dev exited; see .gantry/dev.log" >&2; tail -20 .gantry/dev.log >&2; exit 1; }
  sleep 0.2
done

"$GANTRY" agents apply -f examples/agents.json
"$GANTRY" workflows apply -f examples/diamond.json
"$GANTRY" runs start diamond --input '{"repo": "github.com/example/app"}' --wait
