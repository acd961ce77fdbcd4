#!/usr/bin/env bash
# Builds gantry as a static binary and packs it into the local image gantry/gantry:0.1.0
# (FROM scratch, uid 10001, no registry involved), then checks the image starts and that
# the static binary resolves host names inside a container on a user-defined network.
#
# The binary is built exactly as scripts/build-agent-images.sh builds the agents (glibc
# crt-static on x86_64-unknown-linux-gnu), so both share one build cache.
# Usage: scripts/build-gantry-image.sh        (GANTRY_IMAGE overrides the tag)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TARGET=x86_64-unknown-linux-gnu
VERSION="$(cargo metadata --format-version 1 --no-deps \
  | python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "gantry"))')"
IMAGE="${GANTRY_IMAGE:-gantry/gantry:$VERSION}"
TARGET_DIR="$(cargo metadata --format-version 1 --no-deps \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
log() { echo "build-gantry-image: $*" >&2; }
die() { log "error: $*"; exit 1; }

command -v docker >/dev/null || die "docker is not installed"
docker info >/dev/null 2>&1 || die "the docker engine is not reachable"

log "building gantry (release, static, $TARGET)"
RUSTFLAGS="-C target-feature=+crt-static -C strip=debuginfo" \
  cargo build --release --locked --target "$TARGET" -p gantry

bin="$TARGET_DIR/$TARGET/release/gantry"
[ -x "$bin" ] || die "missing binary $bin"
file -L "$bin" | grep -Eq 'static(ally|-pie) linked' || die "$bin is not statically linked: $(file -L "$bin")"
if ldd "$bin" 2>&1 | grep -q '=>'; then
  die "$bin links shared libraries: $(ldd "$bin" 2>&1 | tr '\n' ' ')"
fi

CONTEXT="$(mktemp -d)"
NET="gantry-image-check-$$"
cleanup() {
  docker network rm "$NET" >/dev/null 2>&1 || true
  rm -rf "$CONTEXT" "$CONTEXT.log"
}
trap cleanup EXIT

# The context: the Dockerfile, the binary and a tiny root filesystem. Never the repository.
cp deploy/docker/Dockerfile "$CONTEXT/Dockerfile"
cp "$bin" "$CONTEXT/gantry"
mkdir -p "$CONTEXT/rootfs/tmp" "$CONTEXT/rootfs/etc"
chmod 1777 "$CONTEXT/rootfs/tmp"
echo 'gantry:x:10001:10001:gantry:/tmp:/sbin/nologin' >"$CONTEXT/rootfs/etc/passwd"
echo 'gantry:x:10001:' >"$CONTEXT/rootfs/etc/group"
log "docker build $IMAGE"
docker build --quiet --tag "$IMAGE" \
  --label "org.opencontainers.image.title=gantry" \
  --label "org.opencontainers.image.version=$VERSION" \
  --label "org.opencontainers.image.revision=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
  "$CONTEXT" >"$CONTEXT.log" 2>&1 || { cat "$CONTEXT.log" >&2; die "docker build $IMAGE failed"; }

# 1. It starts, as a non-root user, hardened the way the manifests run it.
docker run --rm --read-only --cap-drop ALL --security-opt no-new-privileges "$IMAGE" --help \
  | grep -q 'worker' || die "$IMAGE --help does not list the roles"
user="$(docker image inspect --format '{{.Config.User}}' "$IMAGE")"
[ "${user%%:*}" != "0" ] && [ -n "$user" ] || die "$IMAGE runs as root ($user)"
log "ok $IMAGE --help (user $user)"

# 2. Name resolution from the static binary (static glibc has no NSS plugins to load, so
# this is worth checking). A user-defined network gives containers Docker's embedded DNS
# (127.0.0.11), which is how compose services find `redis` and `postgres`. The container
# asks for its own network alias (known only to that DNS, not to /etc/hosts) on a closed
# port: "connection refused" means the name resolved; a lookup error means it did not.
# A name that does not exist must then fail as a lookup error, so the check can fail.
docker network create "$NET" >/dev/null
probe() {
  docker run --rm --network "$NET" --network-alias gantry-dns-check "$IMAGE" probe \
    "http://$1:1/healthz" 2>&1 || true
}
lookup_error='lookup|resolve|name or service|nodename|not known|temporary failure'
out="$(probe gantry-dns-check)"
log "connecting to its own alias: $(printf '%s' "$out" | tail -1)"
printf '%s' "$out" | grep -Eqi "$lookup_error" \
  && die "the static binary cannot resolve a name on a user-defined network: $out"
printf '%s' "$out" | grep -qi 'refused' || die "expected connection refused: $out"
out="$(probe no-such-host.invalid)"
log "connecting to an unknown name: $(printf '%s' "$out" | tail -1)"
printf '%s' "$out" | grep -Eqi "$lookup_error" || die "an unknown name did not fail as a lookup error: $out"
log "ok name resolution on a user-defined network"

docker image ls --format '{{.Repository}}:{{.Tag}}\t{{.Size}}\t{{.ID}}' | grep -F "$IMAGE"
