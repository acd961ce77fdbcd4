//! The container an attempt runs in: hardened host config, `GANTRY_*`
//! environment, labels, and the only mounts allowed (secrets and a checked
//! read-only workspace).

use super::{DEADLINE_MARGIN, LABEL_DEADLINE, LABEL_MANAGED};
use crate::ExecRequest;
use bollard::models::{ContainerCreateBody, HostConfig, Mount, MountType};
use gantry_dag::{limits, Limits};
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
    let env: Vec<String> = req
        .env
        .vars()
        .into_iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let deadline = deadline_s(unix_now(), req.timeout);
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
    let limits = clamp_limits(req.agent.limits);
    let memory = Some(limits.memory_bytes);
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
        nano_cpus: Some(limits.nano_cpus),
        pids_limit: Some(limits.pids),
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

/// The limits a container gets: every one set, each inside the bounds of
/// `gantry_dag::limits`, so a value past them (an older row) becomes the
/// maximum and never overflows into 0, which Docker reads as "no limit".
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Clamped {
    pub(crate) memory_bytes: i64,
    pub(crate) nano_cpus: i64,
    pub(crate) pids: i64,
}

/// Docker's smallest CPU quota (0.01 of a CPU).
const MIN_NANO_CPUS: i64 = 10_000_000;

pub(crate) fn clamp_limits(l: Limits) -> Clamped {
    let mb = l
        .memory_mb
        .clamp(limits::MIN_MEMORY_MB, limits::MAX_MEMORY_MB);
    let cpus = if l.cpus.is_nan() {
        0.0
    } else {
        l.cpus.min(limits::MAX_CPUS)
    };
    // Both bounds are far inside i64, so neither conversion can saturate.
    let nano_cpus = ((cpus * 1e9) as i64).max(MIN_NANO_CPUS);
    Clamped {
        memory_bytes: i64::try_from(mb.saturating_mul(1 << 20)).unwrap_or(i64::MAX),
        nano_cpus,
        pids: i64::try_from(l.pids.clamp(1, limits::MAX_PIDS)).unwrap_or(i64::MAX),
    }
}

/// The attempt's timeout, at most `MAX_TIMEOUT_S`.
pub(crate) fn clamp_timeout(timeout: Duration) -> Duration {
    timeout.min(Duration::from_secs(limits::MAX_TIMEOUT_S))
}

/// Unix seconds after which the reaper may kill the container: the clamped
/// timeout plus a margin, computed without overflow.
pub(crate) fn deadline_s(now: u64, timeout: Duration) -> u64 {
    now.saturating_add(clamp_timeout(timeout).as_secs())
        .saturating_add(1)
        .saturating_add(DEADLINE_MARGIN.as_secs())
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

    #[test]
    fn huge_limits_become_the_maximum_never_unset() {
        let c = clamp_limits(Limits {
            memory_mb: u64::MAX,
            cpus: f64::INFINITY,
            pids: u64::MAX,
        });
        assert_eq!(c.memory_bytes, (limits::MAX_MEMORY_MB << 20) as i64);
        assert_eq!(c.nano_cpus, (limits::MAX_CPUS * 1e9) as i64);
        assert_eq!(c.pids, limits::MAX_PIDS as i64);
        let c = clamp_limits(Limits {
            memory_mb: 0,
            cpus: f64::NAN,
            pids: 0,
        });
        assert_eq!(c.memory_bytes, (limits::MIN_MEMORY_MB << 20) as i64);
        assert_eq!(c.nano_cpus, MIN_NANO_CPUS);
        assert_eq!(c.pids, 1);
        let c = clamp_limits(Limits::default());
        assert_eq!(
            (c.memory_bytes, c.nano_cpus, c.pids),
            (256 << 20, 1_000_000_000, 128)
        );
    }

    #[test]
    fn huge_timeouts_give_a_bounded_deadline() {
        let max = Duration::from_secs(limits::MAX_TIMEOUT_S);
        assert_eq!(clamp_timeout(Duration::from_secs(u64::MAX)), max);
        assert_eq!(clamp_timeout(Duration::MAX), max);
        let now = unix_now();
        assert_eq!(
            deadline_s(now, Duration::MAX),
            now + limits::MAX_TIMEOUT_S + 1 + DEADLINE_MARGIN.as_secs()
        );
        assert_eq!(deadline_s(u64::MAX, Duration::MAX), u64::MAX);
        assert_eq!(deadline_s(100, Duration::from_secs(5)), 136);
    }
}
