#!/usr/bin/env bash
# Installs what the dashboard's browser tests (bin/gantry/tests/e2e_dashboard.rs)
# drive: Debian's `chromium` and `chromium-driver`, if missing. Idempotent:
# a second run installs nothing. Prints the chromedriver path on stdout
# (everything else goes to stderr), so `CHROMEDRIVER="$(scripts/browser.sh)"` works.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }

if ! have chromium || ! have chromedriver; then
    if [ "$(id -u)" -ne 0 ]; then
        SUDO=sudo
    else
        SUDO=
    fi
    echo "browser: installing chromium and chromium-driver (apt-get)" >&2
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq >&2
    $SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver >&2
fi

have chromium || { echo "browser: chromium is still missing" >&2; exit 1; }
have chromedriver || { echo "browser: chromedriver is still missing" >&2; exit 1; }
echo "browser: $(chromium --version 2>/dev/null), $(chromedriver --version 2>/dev/null | cut -d' ' -f1-2)" >&2
command -v chromedriver
