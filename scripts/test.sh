#!/usr/bin/env bash
# README command 2: the whole test suite against real Redis, Postgres and
# Docker. Starts Redis and Postgres (scripts/services.sh), builds the local
# images the Docker tests run (scripts/build-images.sh), then checks
# formatting and lints and runs
# every test. A missing service or engine fails the run; nothing is skipped.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# Assigned first: `eval "$(...)"` alone would hide a failing services.sh.
services_env="$(scripts/services.sh)"
eval "$services_env"
export GANTRY_REQUIRE_SERVICES=1 GANTRY_REQUIRE_DOCKER=1
# Incremental caches for every test binary double the target directory and
# buy nothing on a one-shot run; a developer can set CARGO_INCREMENTAL=1.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
command -v docker >/dev/null || { echo "test: docker is not installed" >&2; exit 1; }
docker info >/dev/null 2>&1 || { echo "test: the docker engine is not reachable" >&2; exit 1; }
bash scripts/build-images.sh >/dev/null
# Headless Chromium and chromedriver for the dashboard's browser tests.
bash scripts/browser.sh >/dev/null
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
# Prometheus config, alert rules (with promtool unit tests), Alertmanager,
# dashboards.
bash scripts/check-observability.sh
# docker-compose.yml and the Kubernetes manifests, validated offline. The
# kustomize render needs kubectl, which Debian's Docker hosts do not always
# carry: without it only that part is left out, and it says so.
if command -v kubectl >/dev/null; then
  bash scripts/check-deploy.sh
else
  echo "test: kubectl is not installed; deploy/ manifests not rendered (docker-compose.yml still checked)" >&2
  docker-compose -f docker-compose.yml config -q
fi
cargo test --workspace -- --test-threads "${GANTRY_TEST_THREADS:-4}"
