//! What the executor lets a process agent have: only the secrets bound to
//! it (staged where `GANTRY_SECRETS_PATH` says, redacted from its log, error
//! and output), an allowed workspace as its working directory, and, under a
//! root worker, an unprivileged user.

mod common;

use common::{failure, process, request, success, Scripts};
use gantry_executor::{
    ErrorKind, ExecLimits, Executor, ProcessConfig, ProcessRuntime, ProcessUser,
};
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

const MINUTE: Duration = Duration::from_secs(60);
const SECRET: &str = "pr0cess-Secret-77";

const SCRIPTS: &[(&str, &str)] = &[
    (
        "secret",
        r#"v=$(cat "$GANTRY_SECRETS_PATH/TOKEN")
echo "plain:$v" >&2
printf '%s' "$v" | base64 >&2
echo "{\"echo\":\"got $v\",\"path\":\"$GANTRY_SECRETS_PATH\"}""#,
    ),
    (
        "fail_with_secret",
        r#"cat "$GANTRY_SECRETS_PATH/TOKEN" >&2; exit 3"#,
    ),
    (
        "pwd",
        r#"printf '{"cwd":"%s","uid":"%s"}' "$(pwd)" "$(id -u)""#,
    ),
    (
        "read_file",
        r#"if cat "$1" >/dev/null 2>&1; then r=true; else r=false; fi; printf '{"read":%s,"uid":"%s","gid":"%s","groups":"%s"}' "$r" "$(id -u)" "$(id -g)" "$(id -G)""#,
    ),
];

fn scripts() -> &'static Scripts {
    common::scripts(SCRIPTS)
}

fn secrets_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("TOKEN"), format!("{SECRET}\n")).unwrap();
    std::fs::write(dir.path().join("OTHER"), "other-value-123").unwrap();
    dir
}

fn named(mut agent: gantry_dag::AgentDef, name: &str, secrets: &[&str]) -> gantry_dag::AgentDef {
    agent.name = name.to_owned();
    agent.secrets = secrets.iter().map(|s| (*s).to_owned()).collect();
    agent
}

#[tokio::test]
async fn a_bound_secret_is_staged_for_the_agent_and_redacted_everywhere() {
    use base64::Engine as _;
    let dir = secrets_dir();
    let exec = scripts()
        .executor(ExecLimits::default())
        .with_secrets(Some(dir.path().to_owned()), "reader=TOKEN".parse().unwrap());
    let agent = named(process(&[&scripts().path("secret")]), "reader", &["TOKEN"]);
    let res = exec.execute(request(agent, json!({}), MINUTE)).await;
    let out = success(&res).clone();
    assert_eq!(out["echo"], "got [redacted]", "{out}");
    let staged = out["path"].as_str().unwrap().to_owned();
    assert_ne!(
        Path::new(&staged),
        dir.path(),
        "a copy, not the worker's directory"
    );
    assert!(
        !Path::new(&staged).exists(),
        "staged copy removed after the attempt"
    );
    let b64 = base64::engine::general_purpose::STANDARD.encode(SECRET);
    assert!(
        res.log_tail.contains("plain:[redacted]"),
        "{}",
        res.log_tail
    );
    assert!(
        !res.log_tail.contains(SECRET) && !res.log_tail.contains(&b64),
        "{}",
        res.log_tail
    );

    // A failing agent's log is redacted too.
    let agent = named(
        process(&[&scripts().path("fail_with_secret")]),
        "reader",
        &["TOKEN"],
    );
    let res = exec.execute(request(agent, json!({}), MINUTE)).await;
    assert_eq!(failure(&res).0, ErrorKind::Exit);
    assert!(!res.log_tail.contains(SECRET), "{}", res.log_tail);
    assert!(res.log_tail.contains("[redacted]"), "{}", res.log_tail);
}

#[tokio::test]
async fn a_secret_not_bound_to_the_agent_fails_it_for_good_without_its_value() {
    let dir = secrets_dir();
    let exec = scripts()
        .executor(ExecLimits::default())
        .with_secrets(Some(dir.path().to_owned()), "reader=TOKEN".parse().unwrap());
    for (name, secrets) in [
        ("reader", &["TOKEN", "OTHER"][..]),
        ("thief", &["TOKEN"][..]),
    ] {
        let agent = named(process(&[&scripts().path("secret")]), name, secrets);
        let res = exec.execute(request(agent, json!({}), MINUTE)).await;
        let (kind, error) = failure(&res);
        assert_eq!(kind, ErrorKind::Permanent, "{error}");
        assert!(error.contains(&format!("agent {name:?}")), "{error}");
        assert!(error.contains("GANTRY_SECRET_BINDINGS"), "{error}");
        assert!(
            !error.contains(SECRET) && !error.contains("other-value"),
            "{error}"
        );
        assert!(
            res.log_tail.is_empty(),
            "the agent never ran: {}",
            res.log_tail
        );
    }
    // No bindings at all: nobody gets anything.
    let exec = scripts()
        .executor(ExecLimits::default())
        .with_secrets(Some(dir.path().to_owned()), Default::default());
    let agent = named(process(&[&scripts().path("secret")]), "reader", &["TOKEN"]);
    let res = exec.execute(request(agent, json!({}), MINUTE)).await;
    assert_eq!(failure(&res).0, ErrorKind::Permanent);
}

#[tokio::test]
async fn an_allowed_workspace_is_the_working_directory_and_others_fail_alike() {
    let root = tempfile::tempdir().unwrap();
    let ws = root.path().join("repo");
    std::fs::create_dir(&ws).unwrap();
    let cfg = ProcessConfig {
        commands: vec![scripts().dir().to_owned()],
        user: None,
        allowed_mounts: vec![root.path().to_owned()],
    };
    let rt = ProcessRuntime::new(ExecLimits::default(), &cfg).unwrap();
    let exec = Executor::new(ExecLimits::default()).with_process(rt);
    let agent = process(&[&scripts().path("pwd")]);
    let res = exec
        .execute(request(agent.clone(), json!({ "workspace": ws }), MINUTE))
        .await;
    assert_eq!(
        success(&res)["cwd"],
        std::fs::canonicalize(&ws).unwrap().to_str().unwrap()
    );
    let missing = root.path().join("missing");
    for path in [
        Path::new("/etc"),
        Path::new("/no/such/dir"),
        missing.as_path(),
    ] {
        let res = exec
            .execute(request(agent.clone(), json!({ "workspace": path }), MINUTE))
            .await;
        let (kind, error) = failure(&res);
        assert_eq!(kind, ErrorKind::Permanent);
        assert_eq!(
            error,
            format!(
                "workspace {:?} cannot be mounted: not under an allowed mount",
                path.to_str().unwrap()
            )
        );
    }
}

#[tokio::test]
async fn under_a_root_worker_agents_run_as_nobody_without_groups() {
    if ProcessUser::current().uid != 0 {
        eprintln!("not root: agents keep the worker's uid; nothing to check here");
        return;
    }
    // The scripts' directory must be reachable by uid 65534.
    for p in [scripts().dir(), scripts().dir().parent().unwrap()] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let private = tempfile::tempdir().unwrap();
    let file = private.path().join("root-only");
    std::fs::write(&file, "x").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(private.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let user = ProcessUser::for_worker(None).unwrap();
    assert_eq!(
        user,
        Some(ProcessUser {
            uid: 65534,
            gid: 65534
        })
    );
    let cfg = ProcessConfig {
        commands: vec![scripts().dir().to_owned()],
        user,
        allowed_mounts: Vec::new(),
    };
    let exec = Executor::new(ExecLimits::default())
        .with_process(ProcessRuntime::new(ExecLimits::default(), &cfg).unwrap());
    let agent = process(&[&scripts().path("read_file"), file.to_str().unwrap()]);
    let res = exec.execute(request(agent, json!({}), MINUTE)).await;
    assert_eq!(
        success(&res),
        &json!({"read": false, "uid": "65534", "gid": "65534", "groups": "65534"})
    );
}
