//! HTTP helpers against the spawned API: raw requests, registration, runs
//! and bounded waits on run and node states.

use super::{eventually, Env};
use serde_json::{json, Value};
use std::time::Duration;

/// Run statuses after which nothing changes on its own.
const TERMINAL: [&str; 3] = ["succeeded", "failed", "cancelled"];

impl Env {
    /// Builtin agents, `gate` (an echo needing approval) and workflow
    /// `observed`: an echo, the gate after it, and a node failing with
    /// exit 3, so that runs, agents, approvals and errors all move metrics.
    pub(crate) async fn register_observed(&self) {
        self.builtin_agents().await;
        self.agent(
            json!({"name": "gate", "runtime": "builtin", "builtin": "echo",
                          "approval": "required", "timeout_s": 30}),
        )
        .await;
        self.workflow(json!({"name": "observed", "nodes": [
            {"id": "a", "agent": "echo", "input": {"v": 1}},
            {"id": "g", "agent": "gate", "depends_on": ["a"]},
            {"id": "f", "agent": "fail", "input": {"exit_code": 3}}
        ]}))
        .await;
    }

    /// Builtin agents, agent `poison` (a process that SIGKILLs the worker
    /// running it on every try, two tries, until the returned file exists)
    /// and workflow `poisoned` (`p` on it, then `q` echoing its output);
    /// starts a run of it. Its workers need `GANTRY_PROCESS_USER` set to
    /// [`Env::own_user`] (as uid 65534 the agent could not kill a root worker). Returns the run id and the file that fixes it.
    pub(crate) async fn start_poisoned(&self) -> (String, std::path::PathBuf) {
        let fixed = self.dir.path().join("fixed");
        let script = self.script(
            "poison.sh",
            &format!(
                "cat >/dev/null\nif [ -f '{}' ]; then echo '{{\"ok\": true}}'; exit 0; fi\n\
                 kill -9 $PPID\nexit 1",
                fixed.display()
            ),
        );
        self.builtin_agents().await;
        self.agent(json!({
            "name": "poison", "runtime": "process", "command": [script.to_str().unwrap()],
            "timeout_s": 10,
            "retry": {"max_attempts": 2, "initial_delay_ms": 100, "max_delay_ms": 200, "multiplier": 2.0}
        }))
        .await;
        self.workflow(json!({"name": "poisoned", "nodes": [
            {"id": "p", "agent": "poison"},
            {"id": "q", "agent": "echo", "depends_on": ["p"], "input": {"after": "{{p.output.ok}}"}}
        ]}))
        .await;
        (self.start("poisoned", json!({})).await, fixed)
    }

    async fn answer(&self, rb: reqwest::RequestBuilder, what: &str) -> (u16, Value) {
        let resp = rb
            .send()
            .await
            .unwrap_or_else(|e| panic!("{what}: request failed: {e}"));
        let status = resp.status().as_u16();
        let text = resp
            .text()
            .await
            .unwrap_or_else(|e| panic!("{what}: body: {e}"));
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, body)
    }

    pub(crate) async fn get(&self, path: &str) -> (u16, Value) {
        let rb = self.http.get(format!("{}{path}", self.base));
        self.answer(rb, &format!("GET {path}")).await
    }

    pub(crate) async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let rb = self.http.post(format!("{}{path}", self.base)).json(body);
        self.answer(rb, &format!("POST {path}")).await
    }

    /// POST raw bytes as `application/json`, with optional extra headers.
    pub(crate) async fn post_raw(
        &self,
        path: &str,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut rb = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body);
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        self.answer(rb, &format!("POST {path}")).await
    }

    /// Register an agent; asserts success.
    pub(crate) async fn agent(&self, def: Value) {
        let (status, body) = self.post("/v1/agents", &def).await;
        assert!(
            status == 200 || status == 201,
            "register agent {def}: {status} {body}"
        );
    }

    /// The builtin agents most tests use: echo, sleep, noop, fail (each with
    /// a short retry policy).
    pub(crate) async fn builtin_agents(&self) {
        for b in ["echo", "sleep", "noop", "fail"] {
            self.agent(json!({
                "name": b, "runtime": "builtin", "builtin": b, "timeout_s": 30,
                "retry": {"max_attempts": 3, "initial_delay_ms": 100, "max_delay_ms": 1000, "multiplier": 2.0}
            }))
            .await;
        }
    }

    /// Register a workflow; asserts 201.
    pub(crate) async fn workflow(&self, def: Value) {
        let (status, body) = self.post("/v1/workflows", &def).await;
        assert_eq!(status, 201, "register workflow {def}: {body}");
    }

    /// Start a run; asserts 201 and returns its id.
    pub(crate) async fn start(&self, workflow: &str, input: Value) -> String {
        let (status, body) = self
            .post(
                &format!("/v1/workflows/{workflow}/runs"),
                &json!({ "input": input }),
            )
            .await;
        assert_eq!(status, 201, "start {workflow}: {body}");
        body["id"].as_str().expect("run id").to_owned()
    }

    /// `GET /v1/runs/{id}`; asserts 200.
    pub(crate) async fn run(&self, id: &str) -> Value {
        let (status, body) = self.get(&format!("/v1/runs/{id}")).await;
        assert_eq!(status, 200, "GET run {id}: {body}");
        body
    }

    /// `GET /v1/runs/{id}/nodes/{node}`; asserts 200.
    pub(crate) async fn node(&self, id: &str, node: &str) -> Value {
        let (status, body) = self.get(&format!("/v1/runs/{id}/nodes/{node}")).await;
        assert_eq!(status, 200, "GET node {node} of {id}: {body}");
        body
    }

    /// Wait until the run leaves `running`; returns it.
    pub(crate) async fn wait_run(&self, id: &str, timeout: Duration) -> Value {
        eventually(&format!("run {id} to end"), timeout, || async {
            let run = self.run(id).await;
            if TERMINAL.contains(&run["status"].as_str().unwrap_or("")) {
                Ok(run)
            } else {
                Err(run)
            }
        })
        .await
    }

    /// Wait until `node` of run `id` has `status`; returns the run.
    pub(crate) async fn wait_node(
        &self,
        id: &str,
        node: &str,
        status: &str,
        timeout: Duration,
    ) -> Value {
        eventually(
            &format!("node {node} of run {id} to be {status}"),
            timeout,
            || async {
                let run = self.run(id).await;
                if node_of(&run, node)["status"] == status {
                    Ok(run)
                } else {
                    Err(run)
                }
            },
        )
        .await
    }
}

/// The node `id` inside a run body.
pub(crate) fn node_of<'a>(run: &'a Value, id: &str) -> &'a Value {
    run["nodes"]
        .as_array()
        .and_then(|ns| ns.iter().find(|n| n["id"] == id))
        .unwrap_or_else(|| panic!("run has no node {id}: {run:#}"))
}
