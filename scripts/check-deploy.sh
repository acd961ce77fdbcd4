#!/usr/bin/env bash
# Checks the deployment files offline: docker-compose.yml (`docker-compose config`, with
# and without the no-docker profile), and the Kubernetes manifests rendered with
# `kubectl kustomize` (the base, the production overlay, and the base with each optional
# component), validated with kubernetes-validate --strict against the bundled schemas of
# the oldest (1.29, native sidecars) and newest Kubernetes versions it knows. KEDA's
# ScaledObject is a CRD those schemas lack: scripts/check_deploy.py validates it against
# deploy/schemas/keda-scaledobject.schema.json and checks the promises of deploy/README.md
# (hardening, probes, grace periods, selectors, default deny, token hashes only).
# kubernetes-validate is installed once from PyPI into .gantry/venv-deploy; the checks
# themselves need no network. Exits non-zero on any failure.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.gantry/venv-deploy"
KV_VERSION=1.37.0
K8S_VERSIONS=(1.29.0 1.37.0)
WORK="$ROOT/.gantry/check-deploy"
log() { echo "check-deploy: $*" >&2; }
die() { log "FAIL: $*"; exit 1; }

command -v docker-compose >/dev/null || die "docker-compose is not installed"
command -v kubectl >/dev/null || die "kubectl is not installed (for kubectl kustomize)"
if ! "$VENV/bin/kubernetes-validate" --version 2>/dev/null | grep -qx "$KV_VERSION"; then
  log "installing kubernetes-validate $KV_VERSION into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "kubernetes-validate==$KV_VERSION" >&2
fi
rm -rf "$WORK"
mkdir -p "$WORK"

# 1. Compose.
for profile in "" no-docker; do
  args=(-f docker-compose.yml)
  [ -n "$profile" ] && args=(--profile "$profile" "${args[@]}")
  docker-compose "${args[@]}" config -q || die "docker-compose ${args[*]} config"
done
docker-compose -f docker-compose.yml config >"$WORK/compose.yaml" || die "docker-compose config"
"$VENV/bin/python" scripts/check_deploy.py compose "$WORK/compose.yaml" || die "docker-compose.yml"
log "ok docker-compose.yml"

# 2. Kubernetes: every shipped combination.
render() { # name, kustomize dir
  kubectl kustomize "$2" >"$WORK/$1.yaml" || die "kubectl kustomize $2"
}
render base deploy/base
render production deploy/overlays/production
for component in docker-socket datastores; do
  mkdir -p "$WORK/with-$component"
  printf 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [../../../deploy/base]\ncomponents: [../../../deploy/components/%s]\n' \
    "$component" >"$WORK/with-$component/kustomization.yaml"
  render "base-with-$component" "$WORK/with-$component"
done

failed=0
for name in base production base-with-docker-socket base-with-datastores; do
  file="$WORK/$name.yaml"
  for version in "${K8S_VERSIONS[@]}"; do
    if ! out="$("$VENV/bin/kubernetes-validate" --strict --quiet -k "$version" "$file" 2>&1)"; then
      printf '%s\n' "$out" >&2
      log "FAIL $name against Kubernetes $version"
      failed=1
      continue
    fi
    # The only kind without a core schema may be KEDA's ScaledObject.
    if printf '%s\n' "$out" | grep "Couldn't find schema" | grep -qv 'kind ScaledObject with api version keda.sh/v1alpha1'; then
      printf '%s\n' "$out" >&2
      log "FAIL $name has kinds no schema covers"
      failed=1
    fi
  done
  if "$VENV/bin/python" scripts/check_deploy.py k8s deploy/schemas "$file"; then
    log "ok $name ($(grep -c '^kind:' "$file") objects; schemas ${K8S_VERSIONS[*]}; ScaledObject and policy checks)"
  else
    failed=1
  fi
done
[ "$failed" = 0 ] || die "see above"
log "all deployment checks passed"
