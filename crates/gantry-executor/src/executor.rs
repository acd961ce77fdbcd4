//! [`Executor`]: routes each attempt to the runtime its agent names, and is
//! the one step shared by every runtime: it refuses secrets not bound to the
//! agent, stages the bound ones, clamps the timeout, refuses outputs holding
//! a NUL character, checks successful outputs against `output_schema`, and
//! redacts secret values from the log tail, the error and the output.

use crate::process::{ProcessRuntime, ProcessUser};
use crate::schema::SchemaCache;
use crate::secrets::{self, Reader};
use crate::{
    BuiltinRuntime, ErrorKind, ExecLimits, ExecOutcome, ExecRequest, ExecResult, Runtime,
    SecretBindings, SecretFiles,
};
use gantry_dag::Runtime as RuntimeKind;
use std::path::PathBuf;
use std::sync::Arc;

/// The uid and gid of a container's agent (nobody:nogroup).
const CONTAINER_USER: u32 = 65534;

/// Routes each request to the runtime its agent names.
#[derive(Clone)]
pub struct Executor {
    limits: ExecLimits,
    builtin: Arc<dyn Runtime>,
    /// The process runtime and the user its agents run as.
    process: Option<(Arc<dyn Runtime>, ProcessUser)>,
    docker: Option<Arc<dyn Runtime>>,
    schemas: SchemaCache,
    /// `GANTRY_SECRETS_DIR`: where secret values are read, one file per name.
    secrets_dir: Option<PathBuf>,
    bindings: SecretBindings,
}

impl Executor {
    /// The builtin runtime only; process and docker agents are not run
    /// until [`Executor::with_process`] and [`Executor::with_docker`] add
    /// theirs, and no secret is bound.
    pub fn new(limits: ExecLimits) -> Self {
        Self {
            limits,
            builtin: Arc::new(BuiltinRuntime::new(limits)),
            process: None,
            docker: None,
            schemas: SchemaCache::default(),
            secrets_dir: None,
            bindings: SecretBindings::none(),
        }
    }

    /// Enables the docker runtime.
    pub fn with_docker(mut self, docker: Arc<dyn Runtime>) -> Self {
        self.docker = Some(docker);
        self
    }

    /// Enables the process runtime, unless its allow-list is empty.
    pub fn with_process(mut self, process: ProcessRuntime) -> Self {
        self.process = process.is_enabled().then(|| {
            let user = process.user();
            (Arc::new(process) as Arc<dyn Runtime>, user)
        });
        self
    }

    /// Where secrets are read from, and which agent may read which.
    pub fn with_secrets(mut self, dir: Option<PathBuf>, bindings: SecretBindings) -> Self {
        self.secrets_dir = dir;
        self.bindings = bindings;
        self
    }

    pub fn limits(&self) -> ExecLimits {
        self.limits
    }

    /// Whether agents of this runtime can run on this worker.
    pub fn supports(&self, kind: RuntimeKind) -> bool {
        match kind {
            RuntimeKind::Builtin => true,
            RuntimeKind::Process => self.process.is_some(),
            RuntimeKind::Docker => self.docker.is_some(),
        }
    }

    /// The runtimes this worker has, for its heartbeat.
    pub fn runtimes(&self) -> Vec<String> {
        [
            RuntimeKind::Builtin,
            RuntimeKind::Process,
            RuntimeKind::Docker,
        ]
        .into_iter()
        .filter(|k| self.supports(*k))
        .map(|k| runtime_name(k).to_owned())
        .collect()
    }

    pub async fn execute(&self, mut req: ExecRequest) -> ExecResult {
        let (runtime, reader): (&Arc<dyn Runtime>, Option<Reader>) = match req.agent.runtime {
            RuntimeKind::Builtin => (&self.builtin, None),
            RuntimeKind::Process => match &self.process {
                Some((process, user)) => {
                    (
                        process,
                        Some(Reader {
                            uid: user.uid,
                            gid: user.gid,
                            on_host: true,
                        }),
                    )
                }
                None => {
                    return ExecResult::failed(
                        ErrorKind::Runtime,
                        "process runtime is not enabled on this worker (GANTRY_PROCESS_COMMANDS is empty)",
                    )
                }
            },
            RuntimeKind::Docker => match &self.docker {
                Some(docker) => (
                    docker,
                    Some(Reader {
                        uid: CONTAINER_USER,
                        gid: CONTAINER_USER,
                        on_host: false,
                    }),
                ),
                None => {
                    return ExecResult::failed(
                        ErrorKind::Runtime,
                        "docker runtime is not enabled on this worker",
                    )
                }
            },
        };
        req.timeout = crate::docker::clamp_timeout(req.timeout);
        if let Err(e) = self.bindings.check(&req.agent.name, &req.agent.secrets) {
            return ExecResult::failed(ErrorKind::Permanent, e.to_string());
        }
        let staged = match reader {
            Some(reader) => {
                match secrets::stage(self.secrets_dir.as_deref(), &req.agent.secrets, reader) {
                    Ok(staged) => staged,
                    Err(e) => return ExecResult::failed(ErrorKind::Runtime, e),
                }
            }
            None => secrets::Staged::default(),
        };
        req.secrets = SecretFiles {
            dir: staged.mount_source().map(ToOwned::to_owned),
            log_margin: staged.longest_form(),
        };
        let schema = req.agent.output_schema.clone();
        let mut result = runtime.execute(req).await;
        // Every runtime's output passes here once: one that Postgres cannot
        // store fails only its own node, before the worker writes anything.
        result.outcome = crate::protocol::refuse_nul(result.outcome);
        if let Some(schema) = schema {
            result.outcome = self.schemas.check(&schema, result.outcome);
        }
        redact(&mut result, &staged.values(), self.limits.max_log_bytes);
        drop(staged);
        result
    }
}

/// Hides every staged value (and its encodings) in the log tail (then cut
/// to `max_log` bytes), the error and every string of the output. Best
/// effort: a value split, hex-encoded or otherwise transformed gets through.
fn redact(result: &mut ExecResult, values: &[&str], max_log: usize) {
    use crate::protocol::{redact_encoded, redact_output};
    result.log_tail = redact_encoded(&result.log_tail, values, max_log);
    match &mut result.outcome {
        ExecOutcome::Failed { error, .. } => *error = redact_encoded(error, values, usize::MAX),
        ExecOutcome::Succeeded(output) => redact_output(output, values),
    }
}

fn runtime_name(kind: RuntimeKind) -> &'static str {
    match kind {
        RuntimeKind::Builtin => "builtin",
        RuntimeKind::Process => "process",
        RuntimeKind::Docker => "docker",
    }
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("limits", &self.limits)
            .field("process", &self.process.is_some())
            .field("docker", &self.docker.is_some())
            .field("bindings", &self.bindings.to_string())
            .finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl Runtime for Executor {
    async fn execute(&self, req: ExecRequest) -> ExecResult {
        Executor::execute(self, req).await
    }
}
