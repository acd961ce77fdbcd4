//! Secret bindings on a real `gantry dev` worker: an agent (process or
//! docker) that lists a secret not bound to it fails with the binding error
//! and its value appears nowhere (API answers, attempts, database); a bound
//! agent reads it, and what it prints of it is redacted from its log and
//! output.

use crate::common::{node_of, Env};
use crate::process::dev_with_process_agents;
use serde_json::json;
use std::time::Duration;

const RUN_TIMEOUT: Duration = Duration::from_secs(60);
const SECRET: &str = "b0und-Secret-Value-9921";

/// `gantry dev` with process agents from the test dir, docker on, a secrets
/// directory holding TOKEN, and TOKEN bound to agent `bound` only.
async fn dev_with_a_bound_secret(env: &mut Env) -> crate::common::Proc {
    let secrets = env.dir.path().join("secrets");
    std::fs::create_dir(&secrets).expect("secrets dir");
    std::fs::write(secrets.join("TOKEN"), format!("{SECRET}\n")).expect("secret");
    let dir = secrets.to_str().expect("utf-8").to_owned();
    dev_with_process_agents(
        env,
        &[
            ("GANTRY_DOCKER", "on"),
            ("GANTRY_SECRETS_DIR", &dir),
            ("GANTRY_SECRET_BINDINGS", "bound=TOKEN"),
        ],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_not_bound_to_a_secret_cannot_get_it() {
    let mut env = Env::new().await;
    let _dev = dev_with_a_bound_secret(&mut env).await;
    // Both print whatever they can find, in every way they can.
    let body = "cat >/dev/null\nv=$(cat \"$GANTRY_SECRETS_PATH/TOKEN\" 2>/dev/null)\n\
                echo \"token=$v\" >&2\nprintf '{\"got\":\"%s\",\"len\":%s}' \"$v\" \"${#v}\"";
    let script = env.script("reader.sh", body);
    let command = [script.to_str().expect("utf-8")];
    env.agent(
        json!({"name": "bound", "runtime": "process", "command": command, "secrets": ["TOKEN"]}),
    )
    .await;
    env.agent(
        json!({"name": "thief", "runtime": "process", "command": command, "secrets": ["TOKEN"]}),
    )
    .await;
    env.agent(
        json!({"name": "dthief", "runtime": "docker", "image": "gantry/testbox:latest",
                      "command": ["sh", "-c", "cat /run/secrets/TOKEN"], "secrets": ["TOKEN"]}),
    )
    .await;
    env.workflow(json!({"name": "binding", "nodes": [
        {"id": "bound", "agent": "bound"},
        {"id": "thief", "agent": "thief"},
        {"id": "dthief", "agent": "dthief"}
    ]}))
    .await;
    let id = env.start("binding", json!({})).await;
    let run = env.wait_run(&id, RUN_TIMEOUT).await;
    assert_eq!(run["status"], "failed", "{run:#}");
    // The bound agent read it (and what it echoed is redacted).
    let bound = node_of(&run, "bound");
    assert_eq!(bound["status"], "succeeded", "{bound:#}");
    assert_eq!(
        bound["output"],
        json!({"got": "[redacted]", "len": SECRET.len()}),
        "{bound:#}"
    );
    for agent in ["thief", "dthief"] {
        let n = node_of(&run, agent);
        assert_eq!(n["status"], "failed", "{n:#}");
        assert_eq!(n["attempts"], 1, "permanent: {n:#}");
        assert_eq!(
            n["error"],
            format!(
                "agent {agent:?} may not read secret \"TOKEN\": it is not bound to it on this \
                 worker (GANTRY_SECRET_BINDINGS)"
            ),
            "{n:#}"
        );
    }
    let mut seen = run.to_string();
    for node in ["bound", "thief", "dthief"] {
        seen.push_str(&env.node(&id, node).await.to_string());
    }
    seen.push_str(&env.database_text().await);
    let b64 = crate::common::base64(SECRET);
    assert!(!seen.contains(SECRET), "the secret leaked: {seen}");
    assert!(!seen.contains(&b64), "its base64 leaked: {seen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_bound_process_agent_prints_of_its_secret_is_redacted() {
    let mut env = Env::new().await;
    let _dev = dev_with_a_bound_secret(&mut env).await;
    let script = env.script(
        "leaky.sh",
        "cat >/dev/null\nv=$(cat \"$GANTRY_SECRETS_PATH/TOKEN\")\necho \"plain:$v\" >&2\n\
         printf '%s' \"$v\" | base64 -w0 >&2\necho >&2\n\
         printf '{\"echo\":\"secret is %s\",\"%s\":1}' \"$v\" \"$v\"",
    );
    env.agent(json!({"name": "bound", "runtime": "process",
                      "command": [script.to_str().expect("utf-8")], "secrets": ["TOKEN"]}))
        .await;
    env.workflow(json!({"name": "leaking", "nodes": [{"id": "leak", "agent": "bound"}]}))
        .await;
    let id = env.start("leaking", json!({})).await;
    let run = env.wait_run(&id, RUN_TIMEOUT).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert_eq!(
        node_of(&run, "leak")["output"],
        json!({"echo": "secret is [redacted]", "[redacted]": 1})
    );
    let detail = env.node(&id, "leak").await;
    let log = detail["attempts_detail"][0]["log_tail"]
        .as_str()
        .unwrap_or_else(|| panic!("no log tail: {detail:#}"));
    assert_eq!(
        log.matches("[redacted]").count(),
        2,
        "plain and base64: {log:?}"
    );
    let mut seen = format!("{run}{detail}");
    seen.push_str(&env.database_text().await);
    assert!(!seen.contains(SECRET), "the secret leaked: {seen}");
    assert!(
        !seen.contains(&crate::common::base64(SECRET)),
        "its base64 leaked: {seen}"
    );
}
