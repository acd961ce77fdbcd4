//! The container an attempt runs in: hardened host config, `GANTRY_*`
//! environment, labels, and the only mounts allowed (secrets and a checked
//! read-only workspace).

use super::{DEADLINE_MARGIN, LABEL_DEADLINE, LABEL_MANAGED};
use crate::ExecRequest;
use bollard::models::{ContainerCreateBody, HostConfig, Mount, MountType};
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The user every agent runs as (nobody:nogroup).
pub(crate) const AGENT_USER: &str = "65534:65534";
pub(crate) const SECRETS_TARGET: &str = "/run/secrets";
pub(crate) const WORKSPACE_TARGET: &str = "/workspace";

/// What a container is built from.
pub(crate) struct Spec<'a> {
    pub(crate) req: &'a ExecRequest,
    pub(crate) image: &'a str,
    pub(crate) worker_id: &'a str,
    pub(crate) workspace: Option<&'a Path>,
    pub(crate) secrets: Option<&'a Path>,
}

pub(crate) fn container_body(spec: &Spec<'_>) -> ContainerCreateBody {
    let req = spec.req;
    let env = vec![
        format!("GANTRY_RUN_ID={}", req.env.run_id),
        format!("GANTRY_NODE_ID={}", req.env.node_id),
        format!("GANTRY_ATTEMPT={}", req.env.attempt),
        format!("GANTRY_IDEMPOTENCY_KEY={}", req.env.idempotency_key()),
    ];
    let deadline = unix_now() + req.timeout.as_secs() + 1 + DEADLINE_MARGIN.as_secs();
    let labels = HashMap::from([
        (LABEL_MANAGED.to_owned(), "true".to_owned()),
        ("gantry.run".to_owned(), req.env.run_id.clone()),
        ("gantry.node".to_owned(), req.env.node_id.clone()),
        ("gantry.attempt".to_owned(), req.env.attempt.to_string()),
        ("gantry.worker".to_owned(), spec.worker_id.to_owned()),
        ("gantry.agent".to_owned(), req.agent.name.clone()),
        (LABEL_DEADLINE.to_owned(), deadline.to_string()),
    ]);
    let mut mounts = Vec::new();
    if let Some(source) = spec.secrets {
        mounts.push(bind_ro(source, SECRETS_TARGET));
    }
    if let Some(source) = spec.workspace {
        mounts.push(bind_ro(source, WORKSPACE_TARGET));
    }
    let limits = req.agent.limits;
    let memory = i64::try_from(limits.memory_mb.saturating_mul(1 << 20))
        .ok()
        .filter(|&m| m > 0);
    let network = if req.agent.network == "bridge" {
        "bridge"
    } else {
        "none"
    };
    let host_config = HostConfig {
        network_mode: Some(network.to_owned()),
        readonly_rootfs: Some(true),
        tmpfs: Some(HashMap::from([(
            "/tmp".to_owned(),
            "rw,noexec,nosuid,size=64m".to_owned(),
        )])),
        cap_drop: Some(vec!["ALL".to_owned()]),
        security_opt: Some(vec!["no-new-privileges".to_owned()]),
        privileged: Some(false),
        memory,
        // Equal to memory: no swap on top of the limit.
        memory_swap: memory,
        nano_cpus: (limits.cpus > 0.0).then_some((limits.cpus * 1e9) as i64),
        pids_limit: i64::try_from(limits.pids).ok().filter(|&p| p > 0),
        mounts: Some(mounts),
        auto_remove: Some(false),
        ..Default::default()
    };
    ContainerCreateBody {
        image: Some(spec.image.to_owned()),
        cmd: req.agent.command.clone().filter(|c| !c.is_empty()),
        env: Some(env),
        labels: Some(labels),
        user: Some(AGENT_USER.to_owned()),
        attach_stdin: Some(true),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        open_stdin: Some(true),
        stdin_once: Some(true),
        tty: Some(false),
        host_config: Some(host_config),
        ..Default::default()
    }
}

fn bind_ro(source: &Path, target: &str) -> Mount {
    Mount {
        target: Some(target.to_owned()),
        source: Some(source.to_string_lossy().into_owned()),
        typ: Some(MountType::BIND),
        read_only: Some(true),
        ..Default::default()
    }
}

/// The host directory to mount at `/workspace`: the input's string field
/// `workspace`, when it resolves (symlinks and all) to a path under one of
/// the canonical `allowed` roots. `Err` names the rejected path.
pub(crate) fn workspace_mount(
    input: &Value,
    allowed: &[PathBuf],
) -> Result<Option<PathBuf>, String> {
    let Some(Value::String(raw)) = input.get("workspace") else {
        return Ok(None);
    };
    let reject = |why: &str| Err(format!("workspace {raw:?} cannot be mounted: {why}"));
    let path = Path::new(raw);
    if !path.is_absolute() {
        return reject("not an absolute path");
    }
    if path.components().any(|c| c == Component::ParentDir) {
        return reject("'..' is not allowed");
    }
    let canonical = match std::fs::canonicalize(path) {
        Ok(p) => p,
        Err(e) => return reject(&format!("cannot be resolved ({e})")),
    };
    if !allowed.iter().any(|root| canonical.starts_with(root)) {
        return reject("not under an allowed mount");
    }
    Ok(Some(canonical))
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn workspace_must_resolve_under_an_allowed_root() {
        let root = tempfile::tempdir().unwrap();
        let allowed = vec![std::fs::canonicalize(root.path()).unwrap()];
        let inside = root.path().join("repo");
        std::fs::create_dir(&inside).unwrap();
        let got = workspace_mount(&json!({"workspace": inside}), &allowed).unwrap();
        assert_eq!(got, Some(std::fs::canonicalize(&inside).unwrap()));
        assert_eq!(
            workspace_mount(&json!({"other": 1}), &allowed).unwrap(),
            None
        );

        let escape = format!("{}/repo/../../etc", root.path().display());
        let err = workspace_mount(&json!({ "workspace": escape }), &allowed).unwrap_err();
        assert!(err.contains("'..'") && err.contains("/etc"), "{err}");
        let err = workspace_mount(&json!({"workspace": "/etc"}), &allowed).unwrap_err();
        assert!(
            err.contains("\"/etc\"") && err.contains("not under an allowed mount"),
            "{err}"
        );
        let err = workspace_mount(&json!({"workspace": "repo"}), &allowed).unwrap_err();
        assert!(err.contains("absolute"), "{err}");

        // A symlink inside the root pointing out of it is caught after resolution.
        let link = root.path().join("link");
        std::os::unix::fs::symlink("/etc", &link).unwrap();
        let err = workspace_mount(&json!({ "workspace": link }), &allowed).unwrap_err();
        assert!(err.contains("not under an allowed mount"), "{err}");
        // No roots at all: nothing is mountable.
        assert!(workspace_mount(&json!({ "workspace": inside }), &[]).is_err());
    }
}
