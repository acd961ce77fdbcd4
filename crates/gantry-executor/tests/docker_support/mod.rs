//! Helpers for the docker runtime tests: a runtime connected to the real
//! engine (failing loudly when Docker or the test image is missing), docker
//! agents on `gantry/testbox`, and container lookups by run label.

#![allow(dead_code, unreachable_pub)]

use bollard::models::ContainerSummary;
use bollard::query_parameters::ListContainersOptionsBuilder;
use bollard::Docker;
use gantry_dag::AgentDef;
use gantry_executor::{AttemptEnv, DockerConfig, DockerRuntime, ExecRequest};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

pub const IMAGE: &str = "gantry/testbox:latest";

/// At most two containers at once on this 2-core machine, so timing
/// assertions measure the runtime and not a crowded host.
pub static SLOTS: Semaphore = Semaphore::const_new(2);

/// Connects to the local engine and checks the test image exists; panics
/// with what to do otherwise (a missing service fails, never skips).
pub async fn runtime(cfg: DockerConfig) -> DockerRuntime {
    let rt = DockerRuntime::connect(cfg).await.unwrap_or_else(|e| {
        panic!("these tests need a running Docker engine on the local socket: {e}")
    });
    if let Err(e) = rt.client().inspect_image(IMAGE).await {
        panic!("image {IMAGE} is missing ({e}); build it with scripts/build-test-images.sh");
    }
    rt
}

pub async fn default_runtime() -> DockerRuntime {
    runtime(DockerConfig::new("test-worker")).await
}

/// A docker agent running `sh -c SCRIPT` in the test image.
pub fn sh_agent(script: &str, extra: Value) -> AgentDef {
    let mut def = json!({
        "name": "docker-test", "runtime": "docker", "image": IMAGE,
        "command": ["sh", "-c", script],
    });
    if let (Some(def), Value::Object(extra)) = (def.as_object_mut(), extra) {
        def.extend(extra);
    }
    serde_json::from_value(def).unwrap()
}

/// A run id no other test (or earlier test run) uses.
pub fn unique_run(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{tag}-{nanos}-{}", N.fetch_add(1, Ordering::Relaxed))
}

pub fn request(agent: AgentDef, input: Value, timeout: Duration, run_id: &str) -> ExecRequest {
    ExecRequest {
        agent,
        input,
        env: AttemptEnv {
            run_id: run_id.to_owned(),
            node_id: "node-a".to_owned(),
            attempt: 2,
            worker_id: "test-worker".to_owned(),
            item_index: None,
        },
        timeout,
        cancel: CancellationToken::new(),
        secrets: Default::default(),
    }
}

/// Containers (any state) labelled with this run.
pub async fn containers_of(docker: &Docker, run_id: &str) -> Vec<ContainerSummary> {
    let filters = HashMap::from([("label", vec![format!("gantry.run={run_id}")])]);
    let options = ListContainersOptionsBuilder::new()
        .all(true)
        .filters(&filters)
        .build();
    docker.list_containers(Some(options)).await.unwrap()
}
