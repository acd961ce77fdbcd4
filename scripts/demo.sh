#!/usr/bin/env bash
# README command 1: install and start Redis and Postgres if needed, build
# gantry and the agent images, start `gantry dev`, register the five Docker
# agents and the security-review and security-triage workflows, run them on
# the example repositories, then the ci-gate workflow, which waits for a
# ci.finished event that the script sends, and print every node's output.
# Exits 0 only when every run succeeded.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# Assigned first: `eval "$(...)"` alone would hide a failing services.sh.
services_env="$(scripts/services.sh)"
eval "$services_env"

if ! command -v cargo >/dev/null; then
  echo "demo: cargo is required (https://rustup.rs)" >&2; exit 1
fi
command -v docker >/dev/null && docker info >/dev/null 2>&1 || {
  echo "demo: the example runs its agents in Docker; start the docker engine first" >&2; exit 1; }
cargo build --release -p gantry >&2
bash scripts/build-images.sh >&2
GANTRY="$ROOT/target/release/gantry"

export GANTRY_LISTEN="${GANTRY_LISTEN:-127.0.0.1:8080}"
export GANTRY_API_URL="http://$GANTRY_LISTEN"
# The notifier's webhook secret, as a file (never an env var). The host does
# not resolve and the agent has no network, so the message comes back as output.
mkdir -p .gantry/secrets
printf 'http://hooks.gantry.invalid/T000/B000/demo' > .gantry/secrets/SLACK_WEBHOOK_URL
chmod 600 .gantry/secrets/SLACK_WEBHOOK_URL
export GANTRY_SECRETS_DIR="$ROOT/.gantry/secrets"
# Only the notifier may read it: without a binding no agent gets any secret.
export GANTRY_SECRET_BINDINGS="notifier=SLACK_WEBHOOK_URL"
GANTRY_DOCKER=on "$GANTRY" dev >.gantry/dev.log 2>&1 &
DEV=$!
trap 'kill $DEV 2>/dev/null; wait $DEV 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -fsS "$GANTRY_API_URL/readyz" >/dev/null 2>&1 && break
  kill -0 $DEV 2>/dev/null || { echo "demo: gantry dev exited; see .gantry/dev.log" >&2; tail -20 .gantry/dev.log >&2; exit 1; }
  sleep 0.2
done

"$GANTRY" agents apply -f examples/agents-docker.json
"$GANTRY" workflows apply -f examples/security-review.json
"$GANTRY" runs start security-review --input "$(cat examples/security-review-input.json)" --wait

# The triage (SPEC 2.1): a patch per finding only when the scan found any,
# a child security-review per repository, an alert on any failure and a
# report in any case. The patcher needs approval, and each of its instances
# has its own gate (4 at a time, max_parallel): approve the node whenever it
# waits, then follow the run to its end and print its output.
"$GANTRY" workflows apply -f examples/security-triage.json
started="$("$GANTRY" runs start security-triage --input "$(cat examples/security-triage-input.json)")"
echo "$started"
id="${started#run }"; id="${id%% started}"
for _ in $(seq 1 600); do
  shown="$("$GANTRY" runs show "$id")"
  if grep -qE '^ +fix +waiting_approval' <<<"$shown"; then
    # A 409 means its instances started since the read: look again.
    "$GANTRY" runs approve "$id" fix || true
  fi
  grep -qE '^ +fix +(pending|waiting_approval|running)( |$)' <<<"$shown" || break
  sleep 0.2
done
"$GANTRY" runs wait "$id"
"$GANTRY" runs show "$id"

# Waiting on the outside world (SPEC 9): the ci-gate run parks on a wait
# node until an event ci.finished keyed by its run id arrives, here sent
# as CI would, then notifies.
"$GANTRY" workflows apply -f examples/ci-gate.json
started="$("$GANTRY" runs start ci-gate --input '{}')"
echo "$started"
gate="${started#run }"; gate="${gate%% started}"
for _ in $(seq 1 100); do
  "$GANTRY" runs show "$gate" | grep -qE '^ +ci +waiting( |$)' && break
  sleep 0.1
done
"$GANTRY" runs show "$gate"
"$GANTRY" events send ci.finished --key "$gate" --data '{"status": "green", "passed": 128}'
"$GANTRY" runs wait "$gate"
"$GANTRY" runs show "$gate"
