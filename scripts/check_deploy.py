#!/usr/bin/env python3
"""Checks of rendered deployment files that no schema expresses, for scripts/check-deploy.sh.

  check_deploy.py k8s SCHEMA_DIR RENDERED.yaml     one `kubectl kustomize` output
  check_deploy.py compose CONFIG.yaml              one `docker-compose config` output

k8s: KEDA's ScaledObject against deploy/schemas/ (the core Kubernetes schemas do not know
the CRD) and the promises deploy/README.md makes: hardened containers, probes, resources,
no service-account tokens, the worker's grace period longer than the longest agent timeout
plus GANTRY_GRACE_S, two coordinators, selectors that select something, default-deny
network policies, only token hashes in Secrets, a Pod Security level that admits the
pods, no variable set twice, and a worker TMPDIR that its Docker engine sees at the same
path (secrets are bind-mounted from there). compose: the Docker socket only in the worker, Redis with AOF and noeviction, a
worker that `--scale` can replicate. Prints every problem; exits 1 if there is any.
"""

import json
import re
import sys

import jsonschema
import yaml

AGENT_TIMEOUT_S = 300  # the default and the longest agent timeout_s the manifests plan for
PROBLEMS = []


def problem(where, text):
    PROBLEMS.append(f"{where}: {text}")


def pod_spec(doc):
    return doc.get("spec", {}).get("template", {}).get("spec", {})


def pod_labels(doc):
    return doc.get("spec", {}).get("template", {}).get("metadata", {}).get("labels", {})


def selects(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def env_of(container):
    return {e["name"]: e.get("value") for e in container.get("env", []) if "name" in e}


def is_gantry(container):
    return "gantry/gantry" in container.get("image", "")


def check_container(where, pod, c, privileged_ok):
    sc = c.get("securityContext", {})
    name = f"{where} container {c.get('name')}"
    if sc.get("privileged"):
        if not privileged_ok:
            problem(name, "is privileged")
        return
    if sc.get("allowPrivilegeEscalation") is not False:
        problem(name, "allowPrivilegeEscalation is not false")
    if sc.get("readOnlyRootFilesystem") is not True:
        problem(name, "readOnlyRootFilesystem is not true")
    if "ALL" not in sc.get("capabilities", {}).get("drop", []):
        problem(name, "does not drop ALL capabilities")
    non_root = sc.get("runAsNonRoot", pod.get("securityContext", {}).get("runAsNonRoot"))
    if non_root is not True:
        problem(name, "may run as root (runAsNonRoot is not true)")
    res = c.get("resources", {})
    if not res.get("requests") or "memory" not in res.get("limits", {}):
        problem(name, "needs resource requests and a memory limit")
    if is_gantry(c):
        # The api answers /readyz (Postgres and Redis reachable); the coordinator's and
        # worker's metrics listener serves /healthz only.
        live = c.get("livenessProbe", {}).get("httpGet", {}).get("path")
        ready = c.get("readinessProbe", {}).get("httpGet", {}).get("path")
        want = "/readyz" if c.get("args") == ["api"] else "/healthz"
        if live != "/healthz" or ready != want:
            problem(name, f"probes should be /healthz and {want}, not {live} and {ready}")


def check_engine_paths(where, pod):
    """A worker with docker agents stages secrets under TMPDIR and the engine bind-mounts
    them by path, so the engine must see the same directory at the same path: a shared
    volume at that path in the DinD sidecar, or the node's own directory (hostPath)."""
    for c in pod.get("containers", []):
        env = env_of(c)
        if env.get("GANTRY_DOCKER") != "on":
            continue
        tmpdir = env.get("TMPDIR", "/tmp")
        mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        name = mounts.get(tmpdir)
        if name is None:
            problem(where, f"TMPDIR {tmpdir} is not a volume the engine can share")
            continue
        engines = [s for s in pod.get("initContainers", []) + pod.get("containers", [])
                   if s is not c and s.get("securityContext", {}).get("privileged")]
        if engines:
            if not any({"name": name, "mountPath": tmpdir}.items() <= m.items()
                       for e in engines for m in e.get("volumeMounts", [])):
                problem(where, f"the engine sidecar does not mount {name} at TMPDIR {tmpdir}")
        elif volumes.get(name, {}).get("hostPath", {}).get("path") != tmpdir:
            problem(where, f"TMPDIR {tmpdir} must be the node's own {tmpdir} (hostPath) for the node's engine")


def check_k8s(schema_dir, docs):
    with open(f"{schema_dir}/keda-scaledobject.schema.json") as f:
        keda_schema = json.load(f)
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d.get("kind"), []).append(d)
    workloads = by_kind.get("Deployment", []) + by_kind.get("StatefulSet", [])
    names = {d["metadata"]["name"] for d in by_kind.get("Deployment", [])}
    config = {}
    for cm in by_kind.get("ConfigMap", []):
        if cm["metadata"]["name"] == "gantry":
            config = cm.get("data", {})

    namespaces = by_kind.get("Namespace", [])
    level = namespaces[0]["metadata"].get("labels", {}).get(
        "pod-security.kubernetes.io/enforce", "privileged") if namespaces else "privileged"
    if not namespaces:
        problem("Namespace", "missing")

    for so in by_kind.get("ScaledObject", []):
        where = f"ScaledObject {so['metadata'].get('name')}"
        for err in jsonschema.Draft202012Validator(keda_schema).iter_errors(so):
            path = ".".join(str(p) for p in err.absolute_path) or "(root)"
            problem(where, f"{path}: {err.message}")
        spec = so.get("spec", {})
        if spec.get("scaleTargetRef", {}).get("name") not in names:
            problem(where, "scaleTargetRef names no Deployment here")
        if spec.get("minReplicaCount", 0) > spec.get("maxReplicaCount", 100):
            problem(where, "minReplicaCount exceeds maxReplicaCount")

    for w in workloads:
        where = f"{w['kind']} {w['metadata']['name']}"
        pod = pod_spec(w)
        if pod.get("automountServiceAccountToken") is not False:
            problem(where, "mounts a service-account token")
        if pod.get("securityContext", {}).get("seccompProfile", {}).get("type") != "RuntimeDefault":
            problem(where, "no RuntimeDefault seccomp profile")
        containers = pod.get("containers", []) + pod.get("initContainers", [])
        for c in containers:
            # The only privileged container allowed: the Docker-in-Docker sidecar.
            check_container(where, pod, c, privileged_ok=c.get("name") == "dind")
        needs_privileged = any(c.get("securityContext", {}).get("privileged") for c in containers) \
            or any("hostPath" in v for v in pod.get("volumes", []))
        if needs_privileged and level != "privileged":
            problem(where, f"needs a privileged pod but the namespace enforces {level!r}")
        labels = pod_labels(w)
        if labels.get("app.kubernetes.io/component") == "worker" and is_gantry(pod["containers"][0]):
            worker = pod["containers"][0]
            grace_s = int(env_of(worker).get("GANTRY_GRACE_S") or config.get("GANTRY_GRACE_S") or 30)
            period = pod.get("terminationGracePeriodSeconds", 30)
            if period <= AGENT_TIMEOUT_S + grace_s:
                problem(where, f"terminationGracePeriodSeconds {period} must exceed the agent "
                               f"timeout {AGENT_TIMEOUT_S} + GANTRY_GRACE_S {grace_s}")
            if "replicas" in w.get("spec", {}) and by_kind.get("ScaledObject"):
                problem(where, "sets replicas although KEDA scales it")
        for c in containers:
            names = [e.get("name") for e in c.get("env", [])]
            for dup in sorted({n for n in names if names.count(n) > 1}):
                problem(f"{where} container {c.get('name')}", f"sets {dup} twice")
        check_engine_paths(where, pod)
        if labels.get("app.kubernetes.io/component") == "coordinator" and w["spec"].get("replicas", 1) < 2:
            problem(where, "coordinator needs at least 2 replicas")

    pods = [pod_labels(w) for w in workloads]
    for kind, key in (("PodDisruptionBudget", "matchLabels"), ("Service", None)):
        for d in by_kind.get(kind, []):
            sel = d["spec"]["selector"].get(key) if key else d["spec"].get("selector")
            if not any(selects(sel, labels) for labels in pods):
                problem(f"{kind} {d['metadata']['name']}", f"selector {sel} selects no pod")

    policies = by_kind.get("NetworkPolicy", [])
    if not any(p["spec"].get("podSelector") == {} and set(p["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
               and not p["spec"].get("ingress") and not p["spec"].get("egress") for p in policies):
        problem("NetworkPolicy", "no default-deny policy for ingress and egress")

    for s in by_kind.get("Secret", []):
        data = s.get("stringData", {})
        for key in data:
            if key in ("GANTRY_TOKEN", "GANTRY_API_TOKEN"):
                problem(f"Secret {s['metadata']['name']}", f"holds a plain token ({key}); configure hashes only")
        hashes = data.get("GANTRY_API_TOKEN_SHA256")
        if hashes is not None and not all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes.split(",")):
            problem(f"Secret {s['metadata']['name']}", "GANTRY_API_TOKEN_SHA256 must be hex SHA-256 hashes")


def check_compose(cfg):
    services = cfg.get("services", {})
    for name, svc in services.items():
        vols = [v if isinstance(v, str) else f"{v.get('source')}:{v.get('target')}" for v in svc.get("volumes", [])]
        has_socket = any("docker.sock" in v for v in vols)
        if has_socket and name != "worker":
            problem(f"compose service {name}", "mounts the Docker socket (only the worker may)")
    worker = services.get("worker")
    if not worker:
        problem("compose", "no worker service")
    else:
        if "container_name" in worker or worker.get("ports"):
            problem("compose service worker", "container_name or ports stop `--scale worker=N`")
        if not any("docker.sock" in (v if isinstance(v, str) else str(v.get("source"))) for v in worker.get("volumes", [])):
            problem("compose service worker", "does not mount the Docker socket")
    redis = " ".join(services.get("redis", {}).get("command", []) or [])
    if "--appendonly yes" not in redis or "--maxmemory-policy noeviction" not in redis:
        problem("compose service redis", f"needs --appendonly yes and --maxmemory-policy noeviction: {redis}")
    for role in ("migrate", "api", "coordinator", "worker", "prometheus", "grafana", "alertmanager",
                 "otel-collector", "postgres"):
        if role not in services:
            problem("compose", f"no {role} service")
    for name in ("api", "coordinator", "worker", "redis", "postgres"):
        if name in services and "healthcheck" not in services[name]:
            problem(f"compose service {name}", "no healthcheck")


def main():
    mode = sys.argv[1]
    if mode == "k8s":
        with open(sys.argv[3]) as f:
            check_k8s(sys.argv[2], [d for d in yaml.safe_load_all(f) if d])
        label = sys.argv[3]
    elif mode == "compose":
        with open(sys.argv[2]) as f:
            check_compose(yaml.safe_load(f))
        label = sys.argv[2]
    else:
        sys.exit(f"unknown mode {mode}")
    for p in PROBLEMS:
        print(f"check-deploy: {label}: {p}", file=sys.stderr)
    sys.exit(1 if PROBLEMS else 0)


if __name__ == "__main__":
    main()
