//! [`Executor`]: routes each attempt to the runtime its agent names and
//! checks successful outputs (no NUL character, then the agent's
//! `output_schema`); the docker runtime plugs in through
//! [`Executor::with_docker`].

use crate::schema::SchemaCache;
use crate::{
    BuiltinRuntime, ErrorKind, ExecLimits, ExecRequest, ExecResult, ProcessRuntime, Runtime,
};
use gantry_dag::Runtime as RuntimeKind;
use std::sync::Arc;

/// Routes each request to the runtime its agent names.
#[derive(Clone)]
pub struct Executor {
    limits: ExecLimits,
    builtin: Arc<dyn Runtime>,
    process: Arc<dyn Runtime>,
    docker: Option<Arc<dyn Runtime>>,
    schemas: SchemaCache,
}

impl Executor {
    /// Builtin and process runtimes; docker agents fail until one is added.
    pub fn new(limits: ExecLimits) -> Self {
        Self {
            limits,
            builtin: Arc::new(BuiltinRuntime::new(limits)),
            process: Arc::new(ProcessRuntime::new(limits)),
            docker: None,
            schemas: SchemaCache::default(),
        }
    }

    /// Enables the docker runtime.
    pub fn with_docker(mut self, docker: Arc<dyn Runtime>) -> Self {
        self.docker = Some(docker);
        self
    }

    /// Replaces the process runtime (e.g. a [`ProcessRuntime`] with another `PATH`).
    pub fn with_process(mut self, process: Arc<dyn Runtime>) -> Self {
        self.process = process;
        self
    }

    pub fn limits(&self) -> ExecLimits {
        self.limits
    }

    /// Whether agents of this runtime can run on this worker.
    pub fn supports(&self, kind: RuntimeKind) -> bool {
        match kind {
            RuntimeKind::Builtin | RuntimeKind::Process => true,
            RuntimeKind::Docker => self.docker.is_some(),
        }
    }

    pub async fn execute(&self, req: ExecRequest) -> ExecResult {
        let runtime = match req.agent.runtime {
            RuntimeKind::Builtin => &self.builtin,
            RuntimeKind::Process => &self.process,
            RuntimeKind::Docker => match &self.docker {
                Some(docker) => docker,
                None => {
                    return ExecResult::failed(
                        ErrorKind::Runtime,
                        "docker runtime is not enabled on this worker",
                    )
                }
            },
        };
        let schema = req.agent.output_schema.clone();
        let mut result = runtime.execute(req).await;
        // Every runtime's output passes here once: one that Postgres cannot
        // store fails only its own node, before the worker writes anything.
        result.outcome = crate::protocol::refuse_nul(result.outcome);
        if let Some(schema) = schema {
            result.outcome = self.schemas.check(&schema, result.outcome);
        }
        result
    }
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("limits", &self.limits)
            .field("docker", &self.docker.is_some())
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl Runtime for Executor {
    async fn execute(&self, req: ExecRequest) -> ExecResult {
        Executor::execute(self, req).await
    }
}
