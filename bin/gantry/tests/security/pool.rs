//! The set-up the NUL, numbers, isolate and fuzz tests share: an API, a
//! coordinator and ONE worker (so every attempt runs on it), both serving
//! `/healthz` and `/readyz`, plus a plain workflow whose runs show that the
//! worker keeps finishing other work.

use crate::common::{free_port, node_of, Env, Proc};
use serde_json::{json, Value};
use std::time::Duration;

pub(crate) struct Pool {
    pub(crate) env: Env,
    /// `host:port` of the worker's metrics server.
    pub(crate) metrics: String,
    /// `host:port` of the coordinator's.
    pub(crate) coordinator_metrics: String,
    _api: Proc,
    coordinator: Proc,
    pub(crate) worker: Proc,
}

impl Pool {
    /// Everything started, with the builtin agents and workflow `plain`
    /// (echo, then noop) registered.
    pub(crate) async fn start(concurrency: &str) -> Pool {
        Self::start_with(concurrency, &[]).await
    }

    /// [`Pool::start`] with `extra` variables for the worker.
    pub(crate) async fn start_with(concurrency: &str, extra: &[(&str, &str)]) -> Pool {
        let mut env = Env::new().await;
        let api = env.serve("api", &[]).await;
        let coordinator_metrics = format!("127.0.0.1:{}", free_port());
        let coordinator = env
            .coordinator(
                "coordinator",
                &[("GANTRY_METRICS_LISTEN", coordinator_metrics.as_str())],
            )
            .await;
        let metrics = format!("127.0.0.1:{}", free_port());
        let mut vars = vec![
            ("GANTRY_METRICS_LISTEN", metrics.as_str()),
            ("GANTRY_CONCURRENCY", concurrency),
            ("GANTRY_DOCKER", "off"),
        ];
        vars.extend_from_slice(extra);
        let worker = env.worker("w1", &vars).await;
        env.builtin_agents().await;
        env.workflow(json!({"name": "plain", "nodes": [
            {"id": "a", "agent": "echo", "input": {"n": "{{run.input.n}}"}},
            {"id": "b", "agent": "noop", "depends_on": ["a"]}
        ]}))
        .await;
        Pool {
            env,
            metrics,
            coordinator_metrics,
            _api: api,
            coordinator,
            worker,
        }
    }

    /// Everything the coordinator logged so far.
    pub(crate) fn coordinator_log(&self) -> String {
        self.coordinator.log_text()
    }

    /// The status of `GET http://METRICS{path}` of the worker (0 when it
    /// does not answer).
    pub(crate) async fn probe(&self, path: &str) -> u16 {
        self.probe_at(&self.metrics, path).await
    }

    /// The status of `GET http://ADDR{path}`.
    pub(crate) async fn probe_at(&self, addr: &str, path: &str) -> u16 {
        self.env
            .http
            .get(format!("http://{addr}{path}"))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map_or(0, |r| r.status().as_u16())
    }

    /// Start `n` runs of `plain`.
    pub(crate) async fn plain_runs(&self, n: usize) -> Vec<String> {
        let mut ids = Vec::with_capacity(n);
        for i in 0..n {
            ids.push(self.env.start("plain", json!({"n": i})).await);
        }
        ids
    }

    /// Wait for each of `ids` to succeed, all within `timeout`.
    pub(crate) async fn all_succeed(&self, ids: &[String], timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        for id in ids {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let run = self
                .env
                .wait_run(id, left.max(Duration::from_millis(1)))
                .await;
            assert_eq!(
                run["status"],
                "succeeded",
                "plain run {id}: {run:#}\nworker log:\n{}",
                self.worker.log_text()
            );
        }
    }

    /// Every attempt of node `node` of run `id`, each checked to hold
    /// storable text: no NUL in its error or log tail.
    pub(crate) async fn attempts(&self, id: &str, node: &str) -> Vec<Value> {
        let detail = self.env.node(id, node).await;
        let attempts = detail["attempts_detail"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        for a in &attempts {
            for field in ["error", "log_tail"] {
                if let Some(text) = a[field].as_str() {
                    assert!(
                        !text.contains('\0'),
                        "{field} of {node} in {id} holds a NUL"
                    );
                }
            }
        }
        attempts
    }

    /// The status of node `node` in a run body.
    pub(crate) fn status<'a>(run: &'a Value, node: &str) -> &'a str {
        node_of(run, node)["status"].as_str().unwrap_or("")
    }
}
