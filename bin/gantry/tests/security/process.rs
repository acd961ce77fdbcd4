//! Process agents on a real `gantry dev` worker: only commands on the
//! worker's allow-list run, an allowed agent sees none of the worker's
//! environment (its own or through `/proc/$PPID/environ`), and, under a root
//! worker, it cannot read `GANTRY_SECRETS_DIR` directly.

use crate::common::{node_of, Env};
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

const RUN_TIMEOUT: Duration = Duration::from_secs(60);
/// A variable only the worker has; no agent may see it.
const MARKER: &str = "GANTRY_TEST_MARKER";
const MARKER_VALUE: &str = "marker-7f3a91c2-only-the-worker-has-it";

/// `gantry dev` whose worker runs process agents from the test dir only.
/// (`GANTRY_ALLOW_PROCESS_AGENTS` is the API switch of issue 10 item 1; an
/// API without it ignores the variable.)
pub(crate) async fn dev_with_process_agents(
    env: &mut Env,
    extra: &[(&str, &str)],
) -> crate::common::Proc {
    let mut vars = vec![
        ("GANTRY_DOCKER", "off"),
        ("GANTRY_ALLOW_PROCESS_AGENTS", "1"),
        (MARKER, MARKER_VALUE),
    ];
    vars.extend_from_slice(extra);
    env.dev(&vars).await
}

/// What the agent printed through `base64` (wrapped lines), decoded.
fn decode(field: &Value) -> String {
    use base64::Engine as _;
    let text: String = field
        .as_str()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("the agent prints base64");
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The runtimes the (one) worker advertises in `GET /v1/workers`, once its
/// heartbeat is there.
async fn runtimes(env: &Env) -> Value {
    crate::common::eventually("the worker's heartbeat", RUN_TIMEOUT, || async {
        let (status, body) = env.get("/v1/workers").await;
        match body["workers"].as_array() {
            Some(w) if status == 200 && !w.is_empty() => Ok(w[0]["runtimes"].clone()),
            _ => Err(body),
        }
    })
    .await
}

fn is_root() -> bool {
    Env::own_user().starts_with("0:")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_off_the_allow_list_fails_its_node_for_good_naming_it() {
    let mut env = Env::new().await;
    let _dev = dev_with_process_agents(&mut env, &[]).await;
    // A link inside the allowed directory to a command outside it.
    let link = env.dir.path().join("cat-link");
    std::os::unix::fs::symlink("/bin/cat", &link).expect("symlink");
    let link = link.to_str().expect("utf-8").to_owned();
    let allowed = env.script("ok.sh", "cat >/dev/null; echo '{\"ok\": true}'");
    for (name, argv0) in [
        ("off-list", "/bin/cat"),
        ("via-link", link.as_str()),
        ("missing", "/no/such/agent"),
        ("allowed", allowed.to_str().expect("utf-8")),
    ] {
        env.agent(
            json!({"name": name, "runtime": "process", "command": [argv0],
                          "retry": {"max_attempts": 3, "initial_delay_ms": 100,
                                    "max_delay_ms": 100, "multiplier": 1.0}}),
        )
        .await;
    }
    env.workflow(json!({"name": "allow", "nodes": [
        {"id": "off-list", "agent": "off-list"},
        {"id": "via-link", "agent": "via-link"},
        {"id": "missing", "agent": "missing"},
        {"id": "allowed", "agent": "allowed"}
    ]}))
    .await;
    assert_eq!(runtimes(&env).await, json!(["builtin", "process"]));
    let id = env.start("allow", json!({})).await;
    let run = env.wait_run(&id, RUN_TIMEOUT).await;
    assert_eq!(run["status"], "failed", "{run:#}");
    assert_eq!(
        node_of(&run, "allowed")["output"],
        json!({"ok": true}),
        "{run:#}"
    );
    for (node, argv0) in [
        ("off-list", "/bin/cat"),
        ("via-link", link.as_str()),
        ("missing", "/no/such/agent"),
    ] {
        let n = node_of(&run, node);
        assert_eq!(n["status"], "failed", "{n:#}");
        assert_eq!(n["attempts"], 1, "permanent, never retried: {n:#}");
        assert_eq!(
            n["error"],
            format!(
                "process command {argv0:?} is not allowed on this worker (GANTRY_PROCESS_COMMANDS)"
            ),
            "{n:#}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_agent_sees_none_of_the_worker_environment() {
    let mut env = Env::new().await;
    let _dev = dev_with_process_agents(&mut env, &[]).await;
    // Its own environment as it was exec'd (/proc/$$/environ: not what the
    // shell adds), and the worker's, with the error when that is refused.
    let script = env.script(
        "spy.sh",
        r#"cat >/dev/null
own=$(base64 -w0 < /proc/$$/environ)
if parent=$(base64 -w0 < /proc/$PPID/environ 2>/dev/null); then readable=true; why=""; else readable=false; parent=""; why=$(cat /proc/$PPID/environ 2>&1 >/dev/null | tr -d '"\\'); fi
printf '{"own":"%s","parent":"%s","parent_readable":%s,"why":"%s","uid":"%s","ppid":"%s"}' "$own" "$parent" "$readable" "$why" "$(id -u)" "$PPID""#,
    );
    env.agent(json!({"name": "spy", "runtime": "process", "command": [script.to_str().unwrap()]}))
        .await;
    env.workflow(json!({"name": "spying", "nodes": [{"id": "spy", "agent": "spy"}]}))
        .await;
    let id = env.start("spying", json!({})).await;
    let run = env.wait_run(&id, RUN_TIMEOUT).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    let out = &node_of(&run, "spy")["output"];
    let own = decode(&out["own"]);
    let parent = decode(&out["parent"]);
    eprintln!(
        "agent uid {} (worker pid {}): /proc/$PPID/environ readable: {}, {} bytes, error {:?}",
        out["uid"],
        out["ppid"],
        out["parent_readable"],
        parent.len(),
        out["why"]
    );
    let mut names: Vec<&str> = own
        .split('\0')
        .filter(|v| !v.is_empty())
        .map(|v| v.split('=').next().unwrap_or(v))
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "GANTRY_ATTEMPT",
            "GANTRY_IDEMPOTENCY_KEY",
            "GANTRY_NODE_ID",
            "GANTRY_RUN_ID"
        ],
        "exactly the attempt variables, nothing of the worker's: {own:?}"
    );
    let everything = format!("{own}\n{parent}\n{run}");
    for (what, value) in [
        ("database url", env.db_url.as_str()),
        ("redis url", env.redis_url.as_str()),
        ("marker", MARKER_VALUE),
        ("marker name", MARKER),
        ("redis prefix", env.prefix.as_str()),
    ] {
        assert!(
            !everything.contains(value),
            "the agent saw the {what}: {everything}"
        );
    }
    assert_eq!(out["parent_readable"], false, "{out:#}");
    assert!(parent.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_a_root_worker_an_agent_cannot_read_the_secrets_dir() {
    if !is_root() {
        eprintln!("not root: agents share the worker's uid, so file modes cannot keep them out");
        return;
    }
    let mut env = Env::new().await;
    let secrets = env.dir.path().join("secrets");
    std::fs::create_dir(&secrets).expect("secrets dir");
    std::fs::write(secrets.join("TOKEN"), "direct-read-secret-31337").expect("secret");
    std::fs::set_permissions(&secrets, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    std::fs::set_permissions(
        secrets.join("TOKEN"),
        std::fs::Permissions::from_mode(0o600),
    )
    .expect("chmod");
    let dir = secrets.to_str().expect("utf-8").to_owned();
    let _dev = dev_with_process_agents(&mut env, &[("GANTRY_SECRETS_DIR", &dir)]).await;
    let script = env.script(
        "peek.sh",
        &format!(
            "cat >/dev/null\nif v=$(cat '{dir}/TOKEN' 2>/dev/null); then r=true; else r=false; v=''; fi\n\
             printf '{{\"read\":%s,\"value\":\"%s\",\"uid\":\"%s\"}}' \"$r\" \"$v\" \"$(id -u)\""
        ),
    );
    env.agent(json!({"name": "peek", "runtime": "process", "command": [script.to_str().unwrap()]}))
        .await;
    env.workflow(json!({"name": "peeking", "nodes": [{"id": "peek", "agent": "peek"}]}))
        .await;
    let id = env.start("peeking", json!({})).await;
    let run = env.wait_run(&id, RUN_TIMEOUT).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert_eq!(
        node_of(&run, "peek")["output"],
        json!({"read": false, "value": "", "uid": "65534"}),
        "{run:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_allow_list_a_worker_has_no_process_runtime() {
    let mut env = Env::new().await;
    // The harness allows the test dir; an empty list is the default.
    let _dev = dev_with_process_agents(&mut env, &[("GANTRY_PROCESS_COMMANDS", "")]).await;
    assert_eq!(runtimes(&env).await, json!(["builtin"]));
    let script = env.script("ok.sh", "cat >/dev/null; echo '{\"ok\": true}'");
    env.agent(json!({"name": "proc", "runtime": "process", "command": [script.to_str().unwrap()]}))
        .await;
    env.workflow(json!({"name": "unrun", "nodes": [{"id": "p", "agent": "proc"}]}))
        .await;
    let id = env.start("unrun", json!({})).await;
    // The job comes back (every second) for a worker that has the runtime;
    // none does, so it waits, spending no attempt. Checked over 3 s.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while tokio::time::Instant::now() < deadline {
        let run = env.run(&id).await;
        let p = node_of(&run, "p");
        assert_eq!(p["attempts"], 0, "an attempt was spent: {run:#}");
        assert_eq!(p["status"], "queued", "{run:#}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
