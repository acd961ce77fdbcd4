#!/usr/bin/env bash
# Checks everything under observability/: the Prometheus config, the alert
# rules and their unit tests (promtool), the Alertmanager config (amtool),
# and that every Grafana dashboard and provisioning file parses.
# Installs Debian's `prometheus` and `prometheus-alertmanager` packages when
# promtool or amtool is missing, without leaving their services running.
# Exits non-zero on the first failure.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OBS="$ROOT/observability"
log() { echo "check-observability: $*" >&2; }

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

install_tools() {
  local pkgs=()
  command -v promtool >/dev/null || pkgs+=(prometheus)
  command -v amtool >/dev/null || pkgs+=(prometheus-alertmanager)
  [ ${#pkgs[@]} -eq 0 ] && return
  log "installing ${pkgs[*]} (for promtool and amtool)"
  # A policy-rc.d that answers 101 keeps the packages' services from
  # starting; put one in place only for this install when none exists.
  local policy=/usr/sbin/policy-rc.d placed=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    placed=1
  fi
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "${pkgs[@]}" >&2
  [ -n "$placed" ] && $SUDO rm -f "$policy"
  # Under systemd the units may still be enabled: stop and disable them.
  if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
    for unit in prometheus prometheus-alertmanager; do
      $SUDO systemctl disable --now "$unit" >/dev/null 2>&1 || true
    done
  fi
}

install_tools

checked=()
step() {
  local what="$1"
  shift
  log "$what"
  if ! "$@"; then
    log "FAILED: $what"
    exit 1
  fi
  checked+=("$what")
}

cd "$OBS/prometheus"
# promtool check config also checks the rule files it names.
step "promtool check config prometheus/prometheus.yml" promtool check config prometheus.yml
step "promtool check rules prometheus/alerts.yml" promtool check rules alerts.yml
step "promtool test rules prometheus/alerts.test.yml" promtool test rules alerts.test.yml
cd "$OBS"
step "amtool check-config alertmanager/alertmanager.yml" \
  amtool check-config alertmanager/alertmanager.yml

dashboards=("$OBS"/grafana/dashboards/*.json)
[ -e "${dashboards[0]}" ] || { log "no dashboards in $OBS/grafana/dashboards"; exit 1; }
for f in "${dashboards[@]}"; do
  step "json parses: ${f#"$ROOT"/}" python3 -m json.tool "$f" /dev/null
done
# Every dashboard query must parse as PromQL: write them into a throwaway
# rule file (Grafana's $variables replaced) and let promtool check it.
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
python3 - "${dashboards[@]}" >"$TMP/dashboard-queries.json" <<'PY'
import json, re, sys
rules = []
def exprs(o):
    if isinstance(o, dict):
        if isinstance(o.get("expr"), str):
            yield o["expr"]
        for v in o.values():
            yield from exprs(v)
    elif isinstance(o, list):
        for v in o:
            yield from exprs(v)
for path in sys.argv[1:]:
    for e in exprs(json.load(open(path))):
        e = e.replace("$__rate_interval", "5m").replace("$__range", "1h")
        e = re.sub(r"\$\{?[A-Za-z_]+\}?", ".*", e)
        rules.append({"record": "dashboard:q%d" % len(rules), "expr": e})
if not rules:
    sys.exit("no queries found in the dashboards")
json.dump({"groups": [{"name": "dashboards", "rules": rules}]}, sys.stdout)
PY
step "every dashboard query parses as PromQL (promtool)" \
  promtool check rules "$TMP/dashboard-queries.json"

yaml_ok() {
  python3 -c 'import sys, yaml; yaml.safe_load(open(sys.argv[1]))' "$1"
}
if python3 -c 'import yaml' 2>/dev/null; then
  for f in "$OBS"/grafana/provisioning/*/*.yml "$OBS"/otel-collector/*.yaml; do
    step "yaml parses: ${f#"$ROOT"/}" yaml_ok "$f"
  done
else
  log "python3 has no yaml module: provisioning and collector files not parsed"
fi

echo "check-observability: ok, ${#checked[@]} checks passed:"
printf '  %s\n' "${checked[@]}"
