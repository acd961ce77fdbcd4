#!/usr/bin/env bash
# Builds every agent under agents/ as a static binary and packs it into a local Docker image
# gantry/<name>:0.1.0 (FROM scratch, no registry involved), then checks each image runs
# hardened and answers the agent protocol with valid JSON. Idempotent; prints the images.
#
# Static linking uses glibc's crt-static on the gnu target: the musl target is not installed.
# With --target, RUSTFLAGS reach only the target artifacts, not build scripts or proc-macros,
# which is what we want. Usage: scripts/build-agent-images.sh [agent-name...]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TARGET=x86_64-unknown-linux-gnu
VERSION="${GANTRY_AGENT_VERSION:-0.1.0}"
TARGET_DIR="$(cargo metadata --format-version 1 --no-deps \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
log() { echo "build-agent-images: $*" >&2; }
die() { log "error: $*"; exit 1; }

command -v docker >/dev/null || die "docker is not installed"
docker info >/dev/null 2>&1 || die "the docker engine is not reachable"

if [ "$#" -gt 0 ]; then
  AGENTS=("$@")
else
  AGENTS=()
  for dir in agents/*/; do
    [ -f "$dir/Dockerfile" ] && AGENTS+=("$(basename "$dir")")
  done
fi
[ "${#AGENTS[@]}" -gt 0 ] || die "no agents found under agents/"

packages=()
for name in "${AGENTS[@]}"; do
  [ -f "agents/$name/Dockerfile" ] || die "agents/$name has no Dockerfile"
  packages+=(-p "agent-$name")
done

log "building ${AGENTS[*]} (release, static, $TARGET)"
# strip=debuginfo keeps images small; the release profile's line tables are for servers.
RUSTFLAGS="-C target-feature=+crt-static -C strip=debuginfo" \
  cargo build --release --locked --target "$TARGET" "${packages[@]}"

CONTEXT="$(mktemp -d)"
trap 'rm -rf "$CONTEXT" "$CONTEXT.log"' EXIT

for name in "${AGENTS[@]}"; do
  bin="$TARGET_DIR/$TARGET/release/agent-$name"
  [ -x "$bin" ] || die "missing binary $bin"
  # `file` says "statically linked" (or "static-pie linked"); ldd must find no libraries.
  file -L "$bin" | grep -Eq 'static(ally|-pie) linked' || die "$bin is not statically linked: $(file -L "$bin")"
  if ldd "$bin" 2>&1 | grep -q '=>'; then
    die "$bin links shared libraries: $(ldd "$bin" 2>&1 | tr '\n' ' ')"
  fi

  # A context of exactly two files: never the repository.
  rm -rf "${CONTEXT:?}"/*
  cp "agents/$name/Dockerfile" "$CONTEXT/Dockerfile"
  cp "$bin" "$CONTEXT/agent-$name"
  image="gantry/$name:$VERSION"
  log "docker build $image"
  if ! docker build --quiet --tag "$image" \
    --label "org.opencontainers.image.title=$name" \
    --label "org.opencontainers.image.version=$VERSION" \
    "$CONTEXT" >"$CONTEXT.log" 2>&1; then
    cat "$CONTEXT.log" >&2
    die "docker build $image failed"
  fi

  # Smoke test under the same hardening the worker applies.
  out="$(echo '{"files":[]}' | docker run --rm -i --network none --read-only \
    --user 65534:65534 --cap-drop ALL --security-opt no-new-privileges \
    --memory 64m --pids-limit 32 "$image")" || die "$image exited non-zero on {\"files\":[]}"
  printf '%s' "$out" | python3 -c 'import json,sys; json.load(sys.stdin)' \
    || die "$image did not print valid JSON: $out"
  log "ok $image -> $out"
done

docker image ls --format '{{.Repository}}:{{.Tag}}\t{{.Size}}\t{{.ID}}' \
  | grep -E "^gantry/($(IFS='|'; echo "${AGENTS[*]}")):$VERSION" | sort
