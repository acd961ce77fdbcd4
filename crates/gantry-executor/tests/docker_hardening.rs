//! The docker runtime's container defaults against the real engine: no
//! network, read-only root, non-root user, secrets as redacted read-only
//! files, checked workspace mounts, labels and host config while running.

mod docker_support;

use docker_support::{
    containers_of, default_runtime, request, runtime, sh_agent, unique_run, SLOTS,
};
use gantry_executor::{DockerConfig, ErrorKind, ExecOutcome, ExecResult, Runtime};
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

const MINUTE: Duration = Duration::from_secs(60);

fn output(result: &ExecResult) -> &Value {
    match &result.outcome {
        ExecOutcome::Succeeded(v) => v,
        ExecOutcome::Failed { kind, error } => {
            panic!(
                "expected success, got {kind:?}: {error} (log: {})",
                result.log_tail
            )
        }
    }
}

#[tokio::test]
async fn no_network_reaches_the_internet_or_the_host() {
    let _slot = SLOTS.acquire().await.unwrap();
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = tokio::spawn(async move { listener.accept().await.is_ok() });
    let script = format!(
        r#"try() {{ if "$@" </dev/null >/dev/null 2>&1; then echo true; else echo false; fi; }}
w=$(try wget -T 2 -q -O /dev/null http://1.1.1.1/)
b=$(try nc -w 2 172.17.0.1 {port})
l=$(try nc -w 2 127.0.0.1 {port})
echo "{{\"internet\":$w,\"bridge_host\":$b,\"loopback\":$l}}""#
    );
    let rt = default_runtime().await;
    let run = unique_run("net");
    let result = rt
        .execute(request(
            sh_agent(&script, json!({})),
            json!({}),
            MINUTE,
            &run,
        ))
        .await;
    assert_eq!(
        output(&result),
        &json!({"internet": false, "bridge_host": false, "loopback": false})
    );
    assert!(
        !accepted.is_finished(),
        "the host listener accepted a connection"
    );
    accepted.abort();
}

#[tokio::test]
async fn root_is_read_only_tmp_is_writable_and_the_user_is_not_root() {
    let _slot = SLOTS.acquire().await.unwrap();
    let script = r#"if touch /x 2>/dev/null; then ro=false; else ro=true; fi
if touch /tmp/ok 2>/dev/null; then tmp=true; else tmp=false; fi
echo "{\"uid\":\"$(id -u)\",\"gid\":\"$(id -g)\",\"root_read_only\":$ro,\"tmp_writable\":$tmp,
\"run\":\"$GANTRY_RUN_ID\",\"node\":\"$GANTRY_NODE_ID\",\"attempt\":\"$GANTRY_ATTEMPT\",\"key\":\"$GANTRY_IDEMPOTENCY_KEY\"}""#;
    let rt = default_runtime().await;
    let run = unique_run("fs");
    let result = rt
        .execute(request(
            sh_agent(script, json!({})),
            json!({}),
            MINUTE,
            &run,
        ))
        .await;
    assert_eq!(
        output(&result),
        &json!({"uid": "65534", "gid": "65534", "root_read_only": true, "tmp_writable": true,
                "run": run, "node": "node-a", "attempt": "2", "key": format!("{run}:node-a")})
    );
}

#[tokio::test]
async fn secrets_are_files_never_env_and_redacted_from_the_log() {
    use base64::Engine as _;
    let _slot = SLOTS.acquire().await.unwrap();
    let secret = "s3cret-Value-42";
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("TOKEN"), format!("{secret}\n")).unwrap();
    // Staging, bindings and redaction are the executor's shared step.
    let rt = gantry_executor::Executor::new(Default::default())
        .with_docker(std::sync::Arc::new(default_runtime().await))
        .with_secrets(
            Some(dir.path().to_owned()),
            "docker-test=TOKEN,MISSING".parse().unwrap(),
        );
    let script = r#"v=$(cat /run/secrets/TOKEN)
echo "plain:$v" >&2
printf '%s' "$v" | base64 >&2
if env | grep -q s3cret; then leaked=true; else leaked=false; fi
if echo x > /run/secrets/TOKEN 2>/dev/null; then w=true; else w=false; fi
if [ "$v" = s3cret-Value-42 ]; then ok=true; else ok=false; fi
echo "{\"read\":$ok,\"in_env\":$leaked,\"writable\":$w,\"echo\":[\"got $v\"],\"$v\":1}"; exit 0"#;
    let agent = sh_agent(script, json!({"secrets": ["TOKEN"]}));
    let run = unique_run("secret");
    let result = rt.execute(request(agent, json!({}), MINUTE, &run)).await;
    assert_eq!(
        output(&result),
        &json!({"read": true, "in_env": false, "writable": false,
                "echo": ["got [redacted]"], "[redacted]": 1}),
        "a secret echoed on stdout is redacted from the output"
    );
    let b64 = base64::engine::general_purpose::STANDARD.encode(secret);
    assert!(
        result.log_tail.contains("plain:[redacted]"),
        "{}",
        result.log_tail
    );
    assert!(!result.log_tail.contains(secret), "{}", result.log_tail);
    assert!(!result.log_tail.contains(&b64), "{}", result.log_tail);
    assert_eq!(
        result.log_tail.matches("[redacted]").count(),
        2,
        "{}",
        result.log_tail
    );

    // A secret the worker does not have fails the attempt before any container.
    let agent = sh_agent("cat", json!({"secrets": ["MISSING"]}));
    let result = rt.execute(request(agent, json!({}), MINUTE, &run)).await;
    match &result.outcome {
        ExecOutcome::Failed { kind, error } => {
            assert_eq!(*kind, ErrorKind::Runtime);
            assert!(error.contains("secret MISSING is not available"), "{error}");
        }
        other => panic!("{other:?}"),
    }
    let client = default_runtime().await;
    assert!(containers_of(client.client(), &run).await.is_empty());
}

#[tokio::test]
async fn workspace_is_mounted_read_only_only_from_allowed_roots() {
    let _slot = SLOTS.acquire().await.unwrap();
    let root = tempfile::tempdir().unwrap();
    let ws = root.path().join("repo");
    std::fs::create_dir(&ws).unwrap();
    std::fs::write(ws.join("hello.txt"), "hi from the host").unwrap();
    for p in [root.path(), ws.as_path()] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(ws.join("hello.txt"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut cfg = DockerConfig::new("test-worker");
    cfg.allowed_mounts = vec![root.path().to_owned()];
    let rt = runtime(cfg).await;
    let script = r#"c=$(cat /workspace/hello.txt)
if touch /workspace/new 2>/dev/null; then w=true; else w=false; fi
echo "{\"content\":\"$c\",\"writable\":$w}""#;
    let run = unique_run("ws");
    let input = json!({"workspace": ws});
    let result = rt
        .execute(request(sh_agent(script, json!({})), input, MINUTE, &run))
        .await;
    assert_eq!(
        output(&result),
        &json!({"content": "hi from the host", "writable": false})
    );
    assert!(!ws.join("new").exists());

    let result = rt
        .execute(request(
            sh_agent("cat", json!({})),
            json!({"workspace": "/etc"}),
            MINUTE,
            &run,
        ))
        .await;
    match &result.outcome {
        ExecOutcome::Failed { kind, error } => {
            assert_eq!(*kind, ErrorKind::Permanent);
            assert!(error.contains("\"/etc\""), "{error}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn labels_and_limits_hold_while_running_and_the_container_goes_after() {
    let _slot = SLOTS.acquire().await.unwrap();
    let rt = Arc::new(default_runtime().await);
    let run = unique_run("labels");
    let agent = sh_agent(
        "sleep 30",
        json!({"limits": {"memory_mb": 48, "cpus": 0.5, "pids": 40}}),
    );
    let req = request(agent, json!({}), MINUTE, &run);
    let cancel = req.cancel.clone();
    let task = {
        let rt = Arc::clone(&rt);
        tokio::spawn(async move { rt.execute(req).await })
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let summary = loop {
        let found = containers_of(rt.client(), &run).await;
        if let Some(c) = found
            .into_iter()
            .find(|c| c.state.map(|s| s.to_string()) == Some("running".into()))
        {
            break c;
        }
        assert!(Instant::now() < deadline, "no running container for {run}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let id = summary.id.clone().unwrap();
    let info = rt.client().inspect_container(&id, None).await.unwrap();
    let config = info.config.unwrap();
    let labels = config.labels.unwrap();
    assert_eq!(labels["gantry.managed"], "true");
    assert_eq!(labels["gantry.run"], run);
    assert_eq!(labels["gantry.node"], "node-a");
    assert_eq!(labels["gantry.attempt"], "2");
    assert_eq!(labels["gantry.worker"], "test-worker");
    let deadline: u64 = labels["gantry.deadline"].parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        deadline > now + 60 && deadline <= now + 60 + 32,
        "{deadline} vs {now}"
    );
    assert_eq!(config.user.as_deref(), Some("65534:65534"));
    let env = config.env.unwrap();
    assert!(
        env.iter().all(|e| !e.starts_with("GANTRY_")
            || [
                "GANTRY_RUN_ID=",
                "GANTRY_NODE_ID=",
                "GANTRY_ATTEMPT=",
                "GANTRY_IDEMPOTENCY_KEY="
            ]
            .iter()
            .any(|p| e.starts_with(p))),
        "{env:?}"
    );
    let host = info.host_config.unwrap();
    assert_eq!(host.network_mode.as_deref(), Some("none"));
    assert_eq!(host.readonly_rootfs, Some(true));
    assert_eq!(host.privileged, Some(false));
    assert_eq!(host.cap_drop, Some(vec!["ALL".to_owned()]));
    assert_eq!(
        host.security_opt,
        Some(vec!["no-new-privileges".to_owned()])
    );
    assert_eq!(host.memory, Some(48 << 20));
    assert_eq!(host.memory_swap, Some(48 << 20));
    assert_eq!(host.nano_cpus, Some(500_000_000));
    assert_eq!(host.pids_limit, Some(40));
    assert!(host.tmpfs.unwrap()["/tmp"].contains("noexec"));
    assert!(host.binds.unwrap_or_default().is_empty());
    assert!(
        info.mounts.unwrap_or_default().is_empty(),
        "no mounts without secrets or workspace"
    );

    cancel.cancel();
    let result = tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap();
    match &result.outcome {
        ExecOutcome::Failed { kind, .. } => assert_eq!(*kind, ErrorKind::Cancelled),
        other => panic!("{other:?}"),
    }
    assert!(containers_of(rt.client(), &run).await.is_empty());
}
