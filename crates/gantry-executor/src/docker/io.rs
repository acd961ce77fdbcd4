//! Running a created container: attach, start, feed the input on stdin,
//! collect stdout (bounded) and the stderr tail, wait for the exit under the
//! attempt's timeout and cancellation, and map the end to an outcome.

use super::describe;
use crate::protocol::{self, OutputBuffer, TailBuffer};
use crate::{ErrorKind, ExecLimits, ExecOutcome, ExecRequest, ExecResult};
use bollard::container::LogOutput;
use bollard::query_parameters::AttachContainerOptionsBuilder;
use bollard::Docker;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;

/// Why the wait for the container ended.
enum End {
    Exited(i64),
    TooLarge(protocol::Error),
    Failed(String),
    Timeout,
    Cancelled,
}

/// Runs container `id` to its end. `tail_margin` extra bytes of stderr are
/// kept so a secret cut at the front of the tail can still be redacted; the
/// caller redacts and cuts the tail to the log limit.
pub(crate) async fn run(
    docker: &Docker,
    id: &str,
    input: Vec<u8>,
    req: &ExecRequest,
    limits: ExecLimits,
    tail_margin: usize,
) -> ExecResult {
    let options = AttachContainerOptionsBuilder::new()
        .stream(true)
        .stdin(true)
        .stdout(true)
        .stderr(true)
        .logs(false)
        .build();
    // Attach before start, or output written right away would be lost.
    let attached = match docker.attach_container(id, Some(options)).await {
        Ok(a) => a,
        Err(e) => return runtime_failure(describe("cannot attach to container", &e)),
    };
    if let Err(e) = docker.start_container(id, None).await {
        return runtime_failure(describe("cannot start container", &e));
    }
    let mut stdin = attached.input;
    // The agent may exit without reading stdin; a broken pipe is its choice.
    let writer = tokio::spawn(async move {
        let _ = stdin.write_all(&input).await;
        let _ = stdin.flush().await;
        // Half-closes the connection: the engine closes the agent's stdin.
        let _ = stdin.shutdown().await;
    });

    let mut out = OutputBuffer::new(limits.max_output_bytes);
    let mut tail = TailBuffer::new(limits.max_log_bytes.saturating_add(tail_margin));
    let mut output = attached.output;
    let end = tokio::select! {
        biased;
        () = req.cancel.cancelled() => End::Cancelled,
        () = tokio::time::sleep(req.timeout) => End::Timeout,
        end = async {
            while let Some(frame) = output.next().await {
                match frame {
                    Ok(LogOutput::StdOut { message }) => {
                        if let Err(e) = out.push(&message) {
                            return End::TooLarge(e);
                        }
                    }
                    Ok(LogOutput::StdErr { message }) => tail.push(&message),
                    Ok(_) => {}
                    Err(e) => return End::Failed(describe("lost the container's output", &e)),
                }
            }
            wait_exit(docker, id).await
        } => end,
    };
    writer.abort();
    if !matches!(end, End::Exited(_)) {
        // Stop it now; removal follows in the caller either way.
        let _ = docker.kill_container(id, None).await;
    }
    let log_tail = tail.to_text();
    let (outcome, exit_code) = match end {
        End::Cancelled => (protocol::cancelled_outcome(), None),
        End::Timeout => (protocol::timeout_outcome(req.timeout), None),
        End::TooLarge(e) => (e.into_outcome(), None),
        End::Failed(error) => (
            ExecOutcome::Failed {
                kind: ErrorKind::Runtime,
                error,
            },
            None,
        ),
        End::Exited(code) => {
            let code = i32::try_from(code).unwrap_or(i32::MAX);
            if code != 0 && oom_killed(docker, id).await {
                let error = format!(
                    "agent was killed for exceeding its memory limit ({} MiB)",
                    req.agent.limits.memory_mb
                );
                (
                    ExecOutcome::Failed {
                        kind: ErrorKind::Oom,
                        error,
                    },
                    Some(code),
                )
            } else {
                (protocol::exit_outcome(code, out.as_bytes()), Some(code))
            }
        }
    };
    ExecResult {
        outcome,
        exit_code,
        log_tail,
    }
}

/// The container's exit code, once it has exited.
async fn wait_exit(docker: &Docker, id: &str) -> End {
    use bollard::errors::Error as E;
    let mut wait = docker.wait_container(id, None);
    match wait.next().await {
        Some(Ok(status)) => End::Exited(status.status_code),
        // bollard reports a non-zero exit as an error carrying the code.
        Some(Err(E::DockerContainerWaitError { code, .. })) => End::Exited(code),
        Some(Err(e)) => End::Failed(describe("cannot wait for container", &e)),
        None => End::Failed("the docker engine ended the wait without an exit code".to_owned()),
    }
}

/// Whether the engine saw the container's memory cgroup kill a process.
async fn oom_killed(docker: &Docker, id: &str) -> bool {
    match docker.inspect_container(id, None).await {
        Ok(info) => info.state.and_then(|s| s.oom_killed).unwrap_or(false),
        Err(e) => {
            tracing::warn!(container = id, error = %e, "cannot inspect exited container");
            false
        }
    }
}

fn runtime_failure(error: String) -> ExecResult {
    ExecResult::failed(ErrorKind::Runtime, error)
}
