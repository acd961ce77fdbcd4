#!/usr/bin/env bash
# README command 2: the whole test suite against real Redis and Postgres
# (started by scripts/services.sh), plus formatting and lint checks.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
eval "$(scripts/services.sh)"
# Tests fail, never skip, when a service is missing.
export GANTRY_REQUIRE_SERVICES=1
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace -- --test-threads "${GANTRY_TEST_THREADS:-4}"
