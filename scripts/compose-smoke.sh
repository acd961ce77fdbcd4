#!/usr/bin/env bash
# Runs docker-compose.yml for real on a machine without a registry: `docker-compose up
# --scale worker=2` of redis, postgres, migrate, api, coordinator and worker, then checks
# that every health check passes, GET /v1/workers lists both workers, and the security
# review (five docker agents, one secret) succeeds through the scaled workers and the
# host's Docker socket. The observability services are not started (their images cannot
# be pulled here; scripts/check-observability.sh checks their configs).
#
# redis:7.4-alpine and postgres:16-alpine cannot be pulled either, so an override file
# swaps in stand-ins built from this machine's Debian redis-server and PostgreSQL 15 on the
# busybox test box (gantry/testbox), with the same commands, environment and health
# checks as the real images. Everything runs under its own compose project name and is
# removed afterwards (`down -v`); the stand-in images gantry/compose-smoke-{redis,postgres}:local
# stay for the next run. Takes about a minute. Needs gantry/gantry:0.1.0, the agent images and
# gantry/testbox (scripts/build-gantry-image.sh, scripts/build-images.sh).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PROJECT="gantrysmoke$$"
IMAGE="${GANTRY_IMAGE:-gantry/gantry:0.1.0}"
STANDIN_TAG="compose-smoke"
log() { echo "compose-smoke: $*" >&2; }
die() { log "FAIL: $*"; exit 1; }

for img in "$IMAGE" gantry/testbox:latest gantry/notifier:0.1.0; do
  docker image inspect "$img" >/dev/null 2>&1 || die "missing image $img (scripts/build-gantry-image.sh, scripts/build-images.sh)"
done
PG_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
command -v redis-server >/dev/null && [ -x "$PG_BIN/postgres" ] \
  || die "redis-server and PostgreSQL are needed for the stand-ins (eval \"\$(scripts/services.sh)\" installs them)"
PG_VERSION="$(basename "$(dirname "$PG_BIN")")"

WORK="$(mktemp -d)"
SECRETS="$(mktemp -d)"
API_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
export GANTRY_API_PORT="$API_PORT" DOCKER_GID="$(stat -c %g /var/run/docker.sock)" \
  GANTRY_SECRETS_DIR="$SECRETS" GANTRY_IMAGE="$IMAGE" COMPOSE_PROJECT_NAME="$PROJECT"
compose() { docker-compose -f docker-compose.yml -f "$WORK/override.yml" "$@"; }
cleanup() {
  if [ -n "${KEEP:-}" ]; then log "kept project $PROJECT"; return; fi
  compose down -v --remove-orphans >/dev/null 2>&1 || true
  rm -rf "$WORK" "$SECRETS"
}
trap cleanup EXIT

# Stand-in images: the binaries, their shared libraries and data, on busybox.
stage() { # rootfs, files...: each file and the shared libraries it loads
  local root="$1" f lib
  shift
  for f in "$@"; do
    mkdir -p "$root$(dirname "$f")"
    cp -L "$f" "$root$f"
    ldd "$f" 2>/dev/null | awk '/=>/ {print $3} /ld-linux/ {print $1}' | while read -r lib; do
      [ -f "$lib" ] && mkdir -p "$root$(dirname "$lib")" && cp -L "$lib" "$root$lib"
    done
  done
}
mkdir -p "$WORK/redis/rootfs/usr/local/bin" "$WORK/postgres/rootfs/usr/local/bin"
stage "$WORK/redis/rootfs" "$(command -v redis-server)" "$(command -v redis-cli)"
cat >"$WORK/redis/Dockerfile" <<'EOF'
FROM gantry/testbox:latest
USER 0:0
COPY rootfs/ /
RUN mkdir -p /data && chown 999:999 /data && echo 'redis:x:999:999::/data:/bin/sh' >> /etc/passwd
ENV PATH=/usr/local/bin:/usr/bin:/bin
WORKDIR /data
USER 999:999
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
EOF
# As the official image does: without a config file, protected mode off (the network
# policy and the compose network are the boundary).
cat >"$WORK/redis/rootfs/usr/local/bin/docker-entrypoint.sh" <<'EOF'
#!/bin/sh
[ "$1" = redis-server ] && shift && exec redis-server "$@" --protected-mode no
exec "$@"
EOF
chmod +x "$WORK/redis/rootfs/usr/local/bin/docker-entrypoint.sh"
stage "$WORK/postgres/rootfs" "$PG_BIN/postgres" "$PG_BIN/initdb" "$PG_BIN/pg_isready"
mkdir -p "$WORK/postgres/rootfs/usr/lib/postgresql/$PG_VERSION" "$WORK/postgres/rootfs/usr/share/postgresql"
cp -a "/usr/lib/postgresql/$PG_VERSION/lib" "$WORK/postgres/rootfs/usr/lib/postgresql/$PG_VERSION/"
cp -a "/usr/share/postgresql/$PG_VERSION" "$WORK/postgres/rootfs/usr/share/postgresql/"
cp -aL /usr/share/zoneinfo "$WORK/postgres/rootfs/usr/share/"
# The official image's entrypoint in brief: POSTGRES_USER, POSTGRES_PASSWORD and
# POSTGRES_DB on first start (single-user mode, before any client can connect), then the
# server on every address with its socket where pg_isready looks.
cat >"$WORK/postgres/rootfs/usr/local/bin/docker-entrypoint.sh" <<'EOF'
#!/bin/sh
set -e
export PGDATA=/var/lib/postgresql/data
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  printf %s "$POSTGRES_PASSWORD" > /tmp/pw
  initdb -U "$POSTGRES_USER" --pwfile=/tmp/pw -A scram-sha-256 -E UTF8 --locale=C >/dev/null
  rm -f /tmp/pw
  echo "host all all 0.0.0.0/0 scram-sha-256" >> "$PGDATA/pg_hba.conf"
  echo "CREATE DATABASE \"$POSTGRES_DB\" OWNER \"$POSTGRES_USER\";" | postgres --single -D "$PGDATA" postgres >/dev/null
fi
exec postgres -c listen_addresses='*' -k /var/run/postgresql
EOF
chmod +x "$WORK/postgres/rootfs/usr/local/bin/docker-entrypoint.sh"
cat >"$WORK/postgres/Dockerfile" <<EOF
FROM gantry/testbox:latest
USER 0:0
COPY rootfs/ /
RUN echo 'postgres:x:999:999::/var/lib/postgresql:/bin/sh' >> /etc/passwd \\
 && mkdir -p /var/lib/postgresql/data /var/run/postgresql /tmp && chmod 1777 /tmp \\
 && chown -R 999:999 /var/lib/postgresql /var/run/postgresql && chmod 0700 /var/lib/postgresql/data
ENV PATH=/usr/local/bin:$PG_BIN:/bin:/usr/bin
USER 999:999
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
EOF
for name in redis postgres; do
  docker build -q -t "gantry/$STANDIN_TAG-$name:local" "$WORK/$name" >"$WORK/build-$name.log" 2>&1 \
    || { cat "$WORK/build-$name.log" >&2; die "building the $name stand-in"; }
done
cat >"$WORK/override.yml" <<EOF
services:
  redis:
    image: gantry/$STANDIN_TAG-redis:local
  postgres:
    image: gantry/$STANDIN_TAG-postgres:local
EOF
log "stand-ins built; docker-compose up --scale worker=2 (project $PROJECT, api on 127.0.0.1:$API_PORT)"

printf %s 'https://hooks.example.invalid/T000/compose-smoke' >"$SECRETS/SLACK_WEBHOOK_URL"
chown -R 10001 "$SECRETS" && chmod 0400 "$SECRETS/SLACK_WEBHOOK_URL" && chmod 0500 "$SECRETS"

compose config -q || die "docker-compose config with the override"
compose up -d --no-build --scale worker=2 api coordinator worker >"$WORK/up.log" 2>&1 \
  || { cat "$WORK/up.log" >&2; die "docker-compose up"; }

# Every health check (compose's own, exec form through `gantry probe`) turns healthy.
want="redis postgres api coordinator worker worker"
healthy=""
for _ in $(seq 1 90); do
  states="$(compose ps -q | xargs -r docker inspect --format '{{index .Config.Labels "com.docker.compose.service"}}={{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}')"
  if [ "$(printf '%s\n' "$states" | grep -c '=healthy$')" -ge 6 ]; then healthy=1; break; fi
  sleep 1
done
printf '%s\n' "$states" | sort >&2
[ -n "$healthy" ] || { compose logs --tail 20 >&2; die "not every service of $want became healthy"; }
migrate="$(docker inspect --format '{{.State.ExitCode}}' "$(compose ps -q migrate)")"
[ "$migrate" = 0 ] || die "migrate exited $migrate"
log "ok every service healthy; migrate exited 0"

workers="$(curl -fsS "http://127.0.0.1:$API_PORT/v1/workers" | python3 -c 'import json,sys; d=json.load(sys.stdin); d=d.get("workers", d) if isinstance(d, dict) else d; print(len(d))')"
[ "$workers" = 2 ] || die "GET /v1/workers lists $workers workers, not 2"
log "ok GET /v1/workers lists the 2 scaled workers"

client() {
  docker run --rm -i --network host -v "$ROOT/examples:/examples:ro" \
    -e GANTRY_API_URL="http://127.0.0.1:$API_PORT" "$IMAGE" "$@"
}
client agents apply -f /examples/agents-docker.json >/dev/null || die "agents apply"
client workflows apply -f /examples/security-review.json >/dev/null || die "workflows apply"
out="$(timeout 300 docker run --rm --network host -e GANTRY_API_URL="http://127.0.0.1:$API_PORT" "$IMAGE" \
  runs start security-review --input "$(cat examples/security-review-input.json)" --wait 2>&1)" \
  || { printf '%s\n' "$out" | tail -20 >&2; compose logs --tail 20 worker >&2; die "the security review did not succeed"; }
printf '%s\n' "$out" | grep -q 'notify: .*https webhooks are not supported' \
  || die "the notifier did not read its secret: $(printf '%s\n' "$out" | grep 'notify:')"
log "ok security review through docker-compose's workers and the host's engine"
log "passed"
