//! The `process` runtime: runs a local executable (argv, no shell) speaking the
//! agent protocol, only when the worker's allow-list names it, with no
//! environment but the attempt's `GANTRY_*` variables, as an unprivileged
//! user when the worker is root, in a private working directory, with
//! bounded stdout and stderr, and the whole process group killed on timeout,
//! cancel or oversized output.

mod policy;

pub use policy::{ConfigError, ProcessUser};

use crate::protocol::{self, OutputBuffer, TailBuffer};
use crate::{ErrorKind, ExecLimits, ExecOutcome, ExecRequest, ExecResult, Runtime};
use policy::AllowList;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdout, Command};

/// How long a pipe may stay open after the agent is gone: a straggler it
/// spawned could hold it open forever (until the group is killed, or for good
/// if the straggler left the group).
const PIPE_LINGER: Duration = Duration::from_millis(500);

const CHUNK: usize = 8 << 10;

/// What a worker allows process agents.
#[derive(Debug, Clone, Default)]
pub struct ProcessConfig {
    /// `GANTRY_PROCESS_COMMANDS`: absolute paths of executable files, or of
    /// directories under which every executable may run. Empty: no process
    /// runtime at all.
    pub commands: Vec<PathBuf>,
    /// Whom agents run as (see [`ProcessUser::for_worker`]); `None`: the
    /// worker's own user.
    pub user: Option<ProcessUser>,
    /// `GANTRY_ALLOWED_MOUNTS`: roots an input's `workspace` may lie under.
    pub allowed_mounts: Vec<PathBuf>,
}

/// Runs agents as local child processes.
#[derive(Debug, Clone)]
pub struct ProcessRuntime {
    limits: ExecLimits,
    allow: AllowList,
    user: Option<ProcessUser>,
    /// `allowed_mounts`, canonicalized once.
    mounts: Vec<PathBuf>,
}

impl ProcessRuntime {
    /// Resolves the allow-list and the mount roots; a bad allow-list entry is
    /// an error (the worker refuses to start).
    pub fn new(limits: ExecLimits, cfg: &ProcessConfig) -> Result<Self, ConfigError> {
        Ok(Self {
            limits,
            allow: AllowList::new(&cfg.commands)?,
            user: cfg.user,
            mounts: crate::mounts::canonical_roots(&cfg.allowed_mounts),
        })
    }

    /// Whether any command may run (an empty allow-list is no runtime).
    pub fn is_enabled(&self) -> bool {
        !self.allow.is_empty()
    }

    /// The user the agents run as.
    pub fn user(&self) -> ProcessUser {
        self.user.unwrap_or_else(ProcessUser::current)
    }
}

/// Makes this process non-dumpable, so that processes of its uid without
/// `CAP_SYS_PTRACE` (its own process agents) cannot read its `/proc` files,
/// `/proc/PID/environ` among them. Agents are exec'd, which makes them
/// dumpable again; only the worker is protected.
pub fn make_non_dumpable() -> std::io::Result<()> {
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .map_err(std::io::Error::from)
}

/// Why the wait for the agent ended.
enum End {
    Exited(std::io::Result<(Vec<u8>, ExitStatus)>),
    TooLarge(protocol::Error),
    Timeout,
    Cancelled,
}

#[async_trait::async_trait]
impl Runtime for ProcessRuntime {
    async fn execute(&self, req: ExecRequest) -> ExecResult {
        if req.cancel.is_cancelled() {
            return ExecResult::from_outcome(protocol::cancelled_outcome());
        }
        let argv = match req.agent.command.as_deref() {
            Some(argv) if !argv.is_empty() => argv,
            _ => {
                return ExecResult::failed(
                    ErrorKind::Permanent,
                    format!("process agent {:?} has no command", req.agent.name),
                )
            }
        };
        let exe = match self.allow.check(&argv[0]) {
            Ok(exe) => exe,
            Err(e) => return ExecResult::failed(ErrorKind::Permanent, e.to_string()),
        };
        // An allowed workspace is the working directory; else a fresh one.
        let (cwd, _fresh) = match crate::mounts::workspace_mount(&req.input, &self.mounts) {
            Ok(Some(ws)) => (ws, None),
            Ok(None) => match policy::work_dir(self.user) {
                Ok(dir) => (dir.path().to_owned(), Some(dir)),
                Err(e) => {
                    return ExecResult::failed(
                        ErrorKind::Runtime,
                        format!("cannot create a working directory: {e}"),
                    )
                }
            },
            Err(e) => return ExecResult::failed(ErrorKind::Permanent, e),
        };
        let input = match serde_json::to_vec(&req.input) {
            Ok(input) => input,
            Err(e) => {
                return ExecResult::failed(ErrorKind::Runtime, format!("cannot encode input: {e}"))
            }
        };
        let mut cmd = self.command(&exe, argv, &cwd, &req);
        let mut child = match cmd.spawn() {
            Ok(child) => child,
            Err(e) => {
                tracing::warn!(command = ?argv[0], error = %e, "cannot start agent");
                return ExecResult::failed(
                    ErrorKind::Runtime,
                    format!("cannot start agent command {:?}: {e}", argv[0]),
                );
            }
        };
        let pid = child.id();
        let (Some(mut stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            kill(&mut child, pid).await;
            return ExecResult::failed(ErrorKind::Runtime, "agent stdio pipes are missing");
        };

        // The agent may exit without reading stdin; a broken pipe is its choice.
        let writer = tokio::spawn(async move {
            let _ = stdin.write_all(&input).await;
            let _ = stdin.shutdown().await;
        });
        // The margin keeps a secret cut at the front redactable; the
        // executor cuts the tail to the limit after redacting.
        let capacity = self
            .limits
            .max_log_bytes
            .saturating_add(req.secrets.log_margin);
        let tail = Arc::new(Mutex::new(TailBuffer::new(capacity)));
        let drain = tokio::spawn(drain_tail(stderr, Arc::clone(&tail)));

        let end = tokio::select! {
            biased;
            () = req.cancel.cancelled() => End::Cancelled,
            () = tokio::time::sleep(req.timeout) => End::Timeout,
            r = collect(&mut child, stdout, self.limits.max_output_bytes) => match r {
                Ok(done) => End::Exited(Ok(done)),
                Err(Collect::TooLarge(e)) => End::TooLarge(e),
                Err(Collect::Io(e)) => End::Exited(Err(e)),
            },
        };
        // Always take the group down: stragglers of a finished agent too.
        kill(&mut child, pid).await;
        writer.abort();
        let stop_drain = drain.abort_handle();
        if tokio::time::timeout(PIPE_LINGER, drain).await.is_err() {
            // Only an escapee from the process group can still hold stderr.
            stop_drain.abort();
            tracing::debug!(?pid, "agent stderr still open after exit; tail cut short");
        }
        let log_tail = tail
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .to_text();

        let (outcome, exit_code) = match end {
            End::Cancelled => (protocol::cancelled_outcome(), None),
            End::Timeout => (protocol::timeout_outcome(req.timeout), None),
            End::TooLarge(e) => (e.into_outcome(), None),
            End::Exited(Err(e)) => (
                ExecOutcome::Failed {
                    kind: ErrorKind::Runtime,
                    error: format!("lost track of agent: {e}"),
                },
                None,
            ),
            End::Exited(Ok((stdout, status))) => status_outcome(status, &stdout),
        };
        ExecResult {
            outcome,
            exit_code,
            log_tail,
        }
    }
}

impl ProcessRuntime {
    /// `exe` is the resolved `argv[0]`. The environment holds the attempt's
    /// `GANTRY_*` variables and nothing of the worker's, not even `PATH`.
    fn command(&self, exe: &Path, argv: &[String], cwd: &Path, req: &ExecRequest) -> Command {
        let mut cmd = Command::new(exe);
        cmd.args(&argv[1..]).env_clear().current_dir(cwd);
        if let Some(dir) = &req.secrets.dir {
            cmd.env("GANTRY_SECRETS_PATH", dir);
        }
        // As root, std also drops every supplementary group (setgroups(0))
        // before switching uid.
        if let Some(user) = self.user {
            cmd.uid(user.uid).gid(user.gid);
        }
        cmd.envs(req.env.vars())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // Its own process group, so a timeout also stops what the agent spawned.
        #[cfg(unix)]
        cmd.process_group(0);
        cmd
    }
}

enum Collect {
    TooLarge(protocol::Error),
    Io(std::io::Error),
}

/// Reads stdout (bounded) until the agent exits and its output is drained.
async fn collect(
    child: &mut Child,
    mut stdout: ChildStdout,
    limit: usize,
) -> Result<(Vec<u8>, ExitStatus), Collect> {
    let mut out = OutputBuffer::new(limit);
    let mut chunk = vec![0u8; CHUNK];
    let status = loop {
        tokio::select! {
            r = stdout.read(&mut chunk) => {
                let n = r.map_err(Collect::Io)?;
                if n == 0 {
                    break child.wait().await.map_err(Collect::Io)?;
                }
                out.push(&chunk[..n]).map_err(Collect::TooLarge)?;
            }
            r = child.wait() => {
                let status = r.map_err(Collect::Io)?;
                // What the agent wrote is already in the pipe; a straggler it
                // left behind may hold the pipe open, so EOF gets a deadline.
                let rest = read_to_end(&mut stdout, &mut out, &mut chunk);
                if let Ok(r) = tokio::time::timeout(PIPE_LINGER, rest).await {
                    r?;
                }
                break status;
            }
        }
    };
    Ok((out.into_bytes(), status))
}

async fn read_to_end(
    stdout: &mut ChildStdout,
    out: &mut OutputBuffer,
    chunk: &mut [u8],
) -> Result<(), Collect> {
    loop {
        let n = stdout.read(chunk).await.map_err(Collect::Io)?;
        if n == 0 {
            return Ok(());
        }
        out.push(&chunk[..n]).map_err(Collect::TooLarge)?;
    }
}

/// Feeds a stream into the shared tail until it closes.
async fn drain_tail(mut stream: impl AsyncRead + Unpin, tail: Arc<Mutex<TailBuffer>>) {
    let mut chunk = vec![0u8; CHUNK];
    while let Ok(n) = stream.read(&mut chunk).await {
        if n == 0 {
            break;
        }
        tail.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(&chunk[..n]);
    }
}

/// Kills the agent's process group and the agent itself, and reaps it.
async fn kill(child: &mut Child, pid: Option<u32>) {
    #[cfg(unix)]
    if let Some(pgid) = pid
        .and_then(|p| i32::try_from(p).ok())
        .and_then(rustix::process::Pid::from_raw)
    {
        // Linux does not reuse a pid while it names a live group or an
        // unreaped leader, so this cannot hit an unrelated process; the one
        // gap (the leader reaped by `collect` and the group already empty)
        // lasts microseconds, far too short for the pid space to wrap.
        // ESRCH (nobody left) is the common case.
        let _ = rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL);
    }
    #[cfg(not(unix))]
    let _ = pid;
    // Errors here mean the child was already reaped.
    let _ = child.kill().await;
}

fn status_outcome(status: ExitStatus, stdout: &[u8]) -> (ExecOutcome, Option<i32>) {
    if let Some(code) = status.code() {
        return (protocol::exit_outcome(code, stdout), Some(code));
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return (protocol::signal_outcome(signal), None);
        }
    }
    (
        ExecOutcome::Failed {
            kind: ErrorKind::Exit,
            error: format!("agent ended abnormally: {status}"),
        },
        None,
    )
}
