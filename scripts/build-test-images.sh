#!/usr/bin/env bash
# Builds gantry/testbox:latest, the tiny image the docker runtime tests and
# `gantry bench docker` use, WITHOUT any registry: a rootfs holding Debian's
# static busybox (every applet as a symlink), a passwd with nobody (65534)
# and /tmp, imported with `docker import`. Idempotent: an existing image is
# kept unless --force is given.
set -euo pipefail
IMAGE="gantry/testbox:latest"
log() { echo "build-test-images: $*" >&2; }

force=0
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    -h|--help) echo "usage: $0 [--force]"; exit 0 ;;
    *) log "unknown argument $arg"; exit 2 ;;
  esac
done

command -v docker >/dev/null || { log "docker is not installed"; exit 1; }
docker info >/dev/null 2>&1 || { log "the docker daemon is not reachable"; exit 1; }

if [ "$force" = 0 ] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
  log "$IMAGE already exists (use --force to rebuild)"
  exit 0
fi

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
BUSYBOX=/bin/busybox
if ! dpkg -s busybox-static >/dev/null 2>&1; then
  log "installing busybox-static"
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq busybox-static >&2
fi
# The static build must be the one copied: a dynamic busybox would need libc in the image.
if ! file -L "$BUSYBOX" 2>/dev/null | grep -q 'statically linked'; then
  if ! ldd "$BUSYBOX" 2>&1 | grep -q 'not a dynamic executable'; then
    log "$BUSYBOX is not statically linked"; exit 1
  fi
fi

ROOTFS="$(mktemp -d)"
trap 'rm -rf "$ROOTFS"' EXIT
mkdir -p "$ROOTFS"/{bin,etc,tmp,run/secrets,workspace}
chmod 1777 "$ROOTFS/tmp"
cp "$BUSYBOX" "$ROOTFS/bin/busybox"
chmod 755 "$ROOTFS/bin/busybox"
# The named tools first (the tests rely on them), then every other applet.
for tool in sh cat id sleep head dd nc wget echo touch yes base64 env tr sort tail; do
  ln -sf busybox "$ROOTFS/bin/$tool"
done
for tool in $("$BUSYBOX" --list); do
  [ -e "$ROOTFS/bin/$tool" ] || ln -s busybox "$ROOTFS/bin/$tool"
done
cat > "$ROOTFS/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/sh
EOF
cat > "$ROOTFS/etc/group" <<'EOF'
root:x:0:
nogroup:x:65534:
EOF

log "importing $IMAGE"
tar -C "$ROOTFS" --numeric-owner --owner=0 --group=0 -c . |
  docker import --change 'USER 65534:65534' --change 'ENV PATH=/bin' \
    --change 'CMD ["/bin/sh"]' - "$IMAGE" >/dev/null
docker run --rm --network none "$IMAGE" sh -c 'test "$(id -u)" = 65534' ||
  { log "$IMAGE does not run as 65534"; exit 1; }
log "built $IMAGE"
