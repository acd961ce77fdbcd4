#!/usr/bin/env bash
# Builds every local image Gantry uses, with no registry: the five agents
# (gantry/<agent>:0.1.0, FROM scratch with static binaries) and the test box
# (gantry/testbox:latest, busybox-static imported). What a missing-image
# error tells you to run. Idempotent.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/build-test-images.sh"
bash "$ROOT/scripts/build-agent-images.sh"
