#!/usr/bin/env bash
# End-to-end check of the gantry image as docker-compose runs it: migrate, api, coordinator
# and a worker as hardened containers (read-only, no capabilities, uid 10001), the worker
# with the host's Docker socket, TMPDIR shared at the same path and a secrets directory.
# Their health checks (`gantry probe`) must pass, the security review (five docker agents,
# the notifier reading its webhook secret) must succeed, and the worker must exit 0 on
# SIGTERM. Uses the loopback Redis and Postgres of scripts/services.sh, in a database and
# Redis prefix of its own; removes every container, the database and the keys afterwards.
# Usage: scripts/smoke-gantry-image.sh    (after scripts/build-gantry-image.sh and
#        scripts/build-agent-images.sh)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
IMAGE="${GANTRY_IMAGE:-gantry/gantry:0.1.0}"
log() { echo "smoke-gantry-image: $*" >&2; }
die() { log "FAIL: $*"; exit 1; }

docker image inspect "$IMAGE" >/dev/null 2>&1 || die "no image $IMAGE: run scripts/build-gantry-image.sh"
eval "$(scripts/services.sh)" >/dev/null
NAME="gantry-smoke-$$"
DB="gantry_smoke_$$"
export GANTRY_DATABASE_URL="${GANTRY_DATABASE_URL%/*}/$DB" GANTRY_REDIS_PREFIX="$NAME"
read -r API_PORT COORD_PORT WORKER_PORT < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])')
SECRETS="$(mktemp -d)"
ADMIN_URL="${GANTRY_DATABASE_URL%/*}/postgres"

cleanup() {
  docker rm -f "$NAME-api" "$NAME-coordinator" "$NAME-worker" >/dev/null 2>&1 || true
  "$GANTRY_PG_BIN/psql" -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true
  redis-cli -u "$GANTRY_REDIS_URL" --scan --pattern "$NAME:*" 2>/dev/null \
    | xargs -r redis-cli -u "$GANTRY_REDIS_URL" del >/dev/null 2>&1 || true
  rm -rf "$SECRETS"
}
trap cleanup EXIT

"$GANTRY_PG_BIN/psql" -q "$ADMIN_URL" -c "CREATE DATABASE $DB" >/dev/null
printf %s 'https://hooks.example.invalid/T000/smoke' >"$SECRETS/SLACK_WEBHOOK_URL"
chown -R 10001 "$SECRETS"
chmod 0400 "$SECRETS/SLACK_WEBHOOK_URL"
chmod 0500 "$SECRETS"

hardened=(--network host --read-only --cap-drop ALL --security-opt no-new-privileges
  -e GANTRY_DATABASE_URL -e GANTRY_REDIS_URL -e GANTRY_REDIS_PREFIX -e GANTRY_LOG=warn)
docker run --rm "${hardened[@]}" "$IMAGE" migrate >/dev/null || die "migrate"
docker run -d --name "$NAME-api" "${hardened[@]}" --tmpfs /tmp \
  -e GANTRY_LISTEN="127.0.0.1:$API_PORT" "$IMAGE" api >/dev/null
docker run -d --name "$NAME-coordinator" "${hardened[@]}" --tmpfs /tmp \
  -e GANTRY_METRICS_LISTEN="127.0.0.1:$COORD_PORT" "$IMAGE" coordinator >/dev/null
docker run -d --name "$NAME-worker" "${hardened[@]}" \
  --group-add "$(stat -c %g /var/run/docker.sock)" -v /var/run/docker.sock:/var/run/docker.sock \
  -v /tmp:/tmp -e TMPDIR=/tmp -v "$SECRETS:/run/gantry/secrets:ro" -e GANTRY_SECRETS_DIR=/run/gantry/secrets \
  -e GANTRY_SECRET_BINDINGS=notifier=SLACK_WEBHOOK_URL \
  -e GANTRY_DOCKER=on -e GANTRY_METRICS_LISTEN="127.0.0.1:$WORKER_PORT" -e GANTRY_WORKER_ID="$NAME-worker" \
  "$IMAGE" worker >/dev/null

# The health checks docker-compose runs (exec form: the image has no shell).
for check in "api http://127.0.0.1:$API_PORT/readyz" "coordinator http://127.0.0.1:$COORD_PORT/healthz" \
  "worker http://127.0.0.1:$WORKER_PORT/healthz"; do
  set -- $check
  ok=""
  for _ in $(seq 1 60); do
    if docker exec "$NAME-$1" gantry probe "$2" 2>/dev/null; then ok=1; break; fi
    sleep 0.5
  done
  [ -n "$ok" ] || { docker logs "$NAME-$1" 2>&1 | tail -5 >&2; die "$1 is not healthy ($2)"; }
  log "ok $1 healthy ($2)"
done
docker exec "$NAME-worker" gantry probe "http://127.0.0.1:$WORKER_PORT/no-such-path" 2>/dev/null \
  && die "gantry probe accepted a 404"

client() {
  docker run --rm -i --network host -v "$ROOT/examples:/examples:ro" \
    -e GANTRY_API_URL="http://127.0.0.1:$API_PORT" "$IMAGE" "$@"
}
client agents apply -f /examples/agents-docker.json >/dev/null || die "agents apply"
client workflows apply -f /examples/security-review.json >/dev/null || die "workflows apply"
out="$(timeout 300 docker run --rm --network host -e GANTRY_API_URL="http://127.0.0.1:$API_PORT" "$IMAGE" \
  runs start security-review --input "$(cat examples/security-review-input.json)" --wait 2>&1)" \
  || { printf '%s\n' "$out" | tail -20 >&2; docker logs "$NAME-worker" 2>&1 | tail -10 >&2; die "the security review did not succeed"; }
printf '%s\n' "$out" | grep -q '^run .* succeeded' || die "no success line: $out"
# The notifier got its webhook URL as /run/secrets/SLACK_WEBHOOK_URL (it reports the
# https URL it refuses to call), so secrets crossed the host engine's bind mount.
printf '%s\n' "$out" | grep -q 'notify: .*https webhooks are not supported' \
  || die "the notifier did not read its secret: $(printf '%s\n' "$out" | grep 'notify:')"
log "ok security review through the containerised worker and the host's engine"

docker stop -t 45 "$NAME-worker" >/dev/null
code="$(docker inspect "$NAME-worker" --format '{{.State.ExitCode}}')"
[ "$code" = 0 ] || die "the worker exited $code on SIGTERM"
log "ok worker stopped cleanly on SIGTERM"
log "passed"
