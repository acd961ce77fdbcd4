//! Helpers shared by the executor tests: requests for an agent, and tiny
//! `/bin/sh` agents written once per test binary.

#![allow(dead_code, unreachable_pub)]

use gantry_dag::{AgentDef, Runtime};
use gantry_executor::{
    AttemptEnv, ErrorKind, ExecLimits, ExecOutcome, ExecRequest, ExecResult, Executor,
    ProcessConfig, ProcessRuntime,
};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub fn agent(runtime: Runtime, extra: Value) -> AgentDef {
    let mut def = json!({"name": "test-agent", "runtime": runtime});
    if let (Some(def), Value::Object(extra)) = (def.as_object_mut(), extra) {
        def.extend(extra);
    }
    serde_json::from_value(def).unwrap()
}

pub fn builtin(name: &str) -> AgentDef {
    agent(Runtime::Builtin, json!({"builtin": name}))
}

pub fn process(argv: &[&str]) -> AgentDef {
    agent(Runtime::Process, json!({"command": argv}))
}

pub fn request(agent: AgentDef, input: Value, timeout: Duration) -> ExecRequest {
    ExecRequest {
        agent,
        input,
        env: AttemptEnv {
            run_id: "run-1".to_owned(),
            node_id: "node-a".to_owned(),
            attempt: 3,
            worker_id: "worker-x".to_owned(),
            item_index: None,
        },
        timeout,
        cancel: CancellationToken::new(),
        secrets: Default::default(),
    }
}

/// The failure kind and message, panicking on success.
pub fn failure(result: &ExecResult) -> (ErrorKind, &str) {
    match &result.outcome {
        ExecOutcome::Failed { kind, error } => (*kind, error.as_str()),
        ExecOutcome::Succeeded(v) => panic!("expected a failure, got success {v}"),
    }
}

pub fn success(result: &ExecResult) -> &Value {
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

/// Every script of this binary, written before any test spawns a process:
/// writing an executable while another thread forks can make exec fail with
/// ETXTBSY, so all writes happen once, up front, behind a `OnceLock`.
pub struct Scripts {
    _dir: tempfile::TempDir,
    paths: BTreeMap<&'static str, PathBuf>,
}

impl Scripts {
    pub fn path(&self, name: &str) -> String {
        self.paths[name].to_str().unwrap().to_owned()
    }

    pub fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// The process runtime allowing exactly this binary's scripts, agents
    /// running as this test's own user.
    pub fn process_runtime(&self, limits: ExecLimits) -> ProcessRuntime {
        let cfg = ProcessConfig {
            commands: vec![self.dir().to_owned()],
            ..Default::default()
        };
        ProcessRuntime::new(limits, &cfg).expect("allow-list of the scripts directory")
    }

    /// An executor whose process runtime allows exactly this binary's scripts.
    pub fn executor(&self, limits: ExecLimits) -> Executor {
        Executor::new(limits).with_process(self.process_runtime(limits))
    }
}

pub fn scripts(all: &'static [(&'static str, &'static str)]) -> &'static Scripts {
    static SCRIPTS: OnceLock<Scripts> = OnceLock::new();
    SCRIPTS.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("gantry-executor-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        let mut paths = BTreeMap::new();
        for (name, body) in all {
            let path = dir.path().join(name);
            std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            paths.insert(*name, path);
        }
        Scripts { _dir: dir, paths }
    })
}
