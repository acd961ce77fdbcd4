//! The `docker` runtime (SPEC section 3): one hardened container per attempt
//! (no network, read-only root, no capabilities, non-root, memory/CPU/pids
//! limits, labelled), fed the input on stdin and read back with the same caps
//! as the `process` runtime; secrets (staged by the [`crate::Executor`],
//! which also redacts them) arrive as read-only files; the container is
//! always removed, and orphans of a crashed worker are reaped
//! ([`DockerRuntime::reap_orphans`]).

mod create;
mod io;
mod reap;

pub(crate) use create::clamp_timeout;

use crate::protocol;
use crate::{ErrorKind, ExecLimits, ExecRequest, ExecResult, Runtime};
use bollard::Docker;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Errors of setting up or maintaining the docker runtime (an attempt's
/// failures are reported in its [`ExecResult`] instead).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot connect to the docker daemon: {0}")]
    Connect(#[source] bollard::errors::Error),
    #[error("docker request failed: {0}")]
    Docker(#[from] bollard::errors::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Label every container of this runtime carries; the reaper looks for it.
pub const LABEL_MANAGED: &str = "gantry.managed";
/// Unix seconds after which a running container is certainly abandoned.
pub const LABEL_DEADLINE: &str = "gantry.deadline";
/// Seconds any single engine request may take (bollard's default).
const REQUEST_TIMEOUT_S: u64 = 120;
/// How long past an attempt's timeout its container may still run.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(30);

/// How a [`DockerRuntime`] runs containers.
#[derive(Debug, Clone)]
pub struct DockerConfig {
    /// Written to each container's `gantry.worker` label.
    pub worker_id: String,
    /// Host directories under which an input's `workspace` path may be
    /// mounted (read-only, at `/workspace`).
    pub allowed_mounts: Vec<PathBuf>,
    pub limits: ExecLimits,
    /// Stopped containers younger than this are left to the worker that made
    /// them (another worker on this host may be about to remove them).
    pub reap_grace: Duration,
    /// The engine's unix socket; `None` is the local default
    /// (`/var/run/docker.sock`).
    pub socket: Option<PathBuf>,
}

impl DockerConfig {
    /// No workspace mounts, default limits, a 60 s reap grace.
    pub fn new(worker_id: impl Into<String>) -> Self {
        Self {
            worker_id: worker_id.into(),
            allowed_mounts: Vec::new(),
            limits: ExecLimits::default(),
            reap_grace: Duration::from_secs(60),
            socket: None,
        }
    }
}

/// Runs agents in containers through the local Docker engine.
#[derive(Debug, Clone)]
pub struct DockerRuntime {
    docker: Docker,
    cfg: DockerConfig,
    /// `allowed_mounts`, canonicalized once.
    allowed: Vec<PathBuf>,
    /// Containers of attempts in progress here; the reaper leaves them alone.
    active: Arc<Mutex<HashSet<String>>>,
}

impl DockerRuntime {
    /// Connects to the local engine (unix socket) and checks it answers.
    pub async fn connect(cfg: DockerConfig) -> Result<Self> {
        let docker = match &cfg.socket {
            Some(path) => Docker::connect_with_unix(
                &path.to_string_lossy(),
                REQUEST_TIMEOUT_S,
                bollard::API_DEFAULT_VERSION,
            ),
            None => Docker::connect_with_local_defaults(),
        }
        .map_err(Error::Connect)?;
        // The engine may speak an older API than bollard; talk its version.
        let docker = docker.negotiate_version().await.map_err(Error::Connect)?;
        docker.ping().await.map_err(Error::Connect)?;
        let allowed = crate::mounts::canonical_roots(&cfg.allowed_mounts);
        Ok(Self {
            docker,
            cfg,
            allowed,
            active: Arc::default(),
        })
    }

    /// The bollard client, for callers that inspect containers themselves.
    pub fn client(&self) -> &Docker {
        &self.docker
    }

    pub fn config(&self) -> &DockerConfig {
        &self.cfg
    }

    fn set_active(&self, id: &str, active: bool) {
        let mut set = self.active.lock().unwrap_or_else(PoisonError::into_inner);
        if active {
            set.insert(id.to_owned());
        } else {
            set.remove(id);
        }
    }

    fn is_active(&self, id: &str) -> bool {
        self.active
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(id)
    }

    /// `Err` with the failed result when the image is not on this host.
    async fn check_image(&self, image: &str) -> Result<(), ExecResult> {
        match self.docker.inspect_image(image).await {
            Ok(_) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Err(ExecResult::failed(
                ErrorKind::Runtime,
                format!(
                    "image {image} is not present on this host; build it with scripts/build-images.sh"
                ),
            )),
            Err(e) => Err(ExecResult::failed(
                ErrorKind::Runtime,
                describe("cannot inspect image", &e),
            )),
        }
    }
}

#[async_trait::async_trait]
impl Runtime for DockerRuntime {
    async fn execute(&self, mut req: ExecRequest) -> ExecResult {
        req.timeout = clamp_timeout(req.timeout);
        if req.cancel.is_cancelled() {
            return ExecResult::from_outcome(protocol::cancelled_outcome());
        }
        let image = match req.agent.image.as_deref() {
            Some(image) if !image.is_empty() => image.to_owned(),
            _ => {
                return ExecResult::failed(
                    ErrorKind::Permanent,
                    format!("docker agent {:?} has no image", req.agent.name),
                )
            }
        };
        let workspace = match crate::mounts::workspace_mount(&req.input, &self.allowed) {
            Ok(w) => w,
            Err(e) => return ExecResult::failed(ErrorKind::Permanent, e),
        };
        let input = match serde_json::to_vec(&req.input) {
            Ok(input) => input,
            Err(e) => {
                return ExecResult::failed(ErrorKind::Runtime, format!("cannot encode input: {e}"))
            }
        };
        if let Err(failed) = self.check_image(&image).await {
            return failed;
        }
        let body = create::container_body(&create::Spec {
            req: &req,
            image: &image,
            worker_id: &self.cfg.worker_id,
            workspace: workspace.as_deref(),
            secrets: req.secrets.dir.as_deref(),
        });
        let id = match self.docker.create_container(None, body).await {
            Ok(created) => created.id,
            Err(e) => {
                return ExecResult::failed(
                    ErrorKind::Runtime,
                    describe("cannot create container", &e),
                )
            }
        };
        self.set_active(&id, true);
        let removal = reap::Removal::new(self.docker.clone(), id.clone());
        let tail_margin = req.secrets.log_margin;
        let result = io::run(&self.docker, &id, input, &req, self.cfg.limits, tail_margin).await;
        removal.run().await;
        self.set_active(&id, false);
        result
    }
}

/// A message for a failed docker request; transport failures say the daemon
/// is unreachable rather than quoting hyper.
pub(crate) fn describe(context: &str, e: &bollard::errors::Error) -> String {
    use bollard::errors::Error as E;
    match e {
        E::DockerResponseServerError {
            status_code,
            message,
        } => format!("{context}: {message} (docker status {status_code})"),
        E::SocketNotFoundError(path) => {
            format!("{context}: docker daemon is unreachable (no socket at {path})")
        }
        E::IOError { .. } | E::HyperLegacyError { .. } | E::RequestTimeoutError => {
            format!("{context}: docker daemon is unreachable: {e}")
        }
        other => format!("{context}: {other}"),
    }
}
