//! One attempt: render the node's input from the run input and upstream
//! outputs, execute the agent, and hand the result to the completer.

use crate::breaker::Outcome as Health;
use crate::complete::Done;
use crate::guard::Guards;
use crate::Config;
use gantry_dag::{NodeIdx, NodeView, Outcome, Plan, Scope, TemplateRef, ValidatedDag};
use gantry_engine::Engine;
use gantry_executor::{AttemptEnv, ErrorKind, ExecOutcome, ExecRequest, Executor};
use gantry_store::{AttemptResult, Claimed};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

/// What an attempt needs besides the claim.
pub(crate) struct Prepared {
    dag: Arc<ValidatedDag>,
    plan: Arc<Plan>,
    /// The rendered input, or why it could not be rendered: a missing
    /// template path is permanent, an unreadable database is not.
    input: Result<Value, InputError>,
}

/// Why an input could not be rendered.
pub(crate) struct InputError {
    message: String,
    retryable: bool,
}

/// Render the inputs of a batch of claims with one query for upstream outputs.
pub(crate) async fn prepare(engine: &Engine, claimed: &[Claimed]) -> Vec<Option<Prepared>> {
    let mut parts = Vec::with_capacity(claimed.len());
    let mut wanted = Vec::new();
    for c in claimed {
        let dag = engine.dag(c.workflow_id).await;
        let plan = engine.plan(&c.plan_hash).await;
        match (dag, plan) {
            (Ok(dag), Ok(plan)) => {
                for node in dag.refs(c.node).iter().filter_map(TemplateRef::node) {
                    wanted.extend(dag.idx(node).map(|i| (c.run_id, i)));
                }
                parts.push(Some((dag, plan)));
            }
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!(run = %c.run_id, error = %e, "cannot load the run's workflow or plan");
                parts.push(None);
            }
        }
    }
    wanted.sort();
    wanted.dedup();
    let views: Result<HashMap<(Uuid, NodeIdx), NodeView>, String> = if wanted.is_empty() {
        Ok(HashMap::new())
    } else {
        // Postgres restarting or unreachable: the attempt is retried.
        engine
            .reads()
            .node_views(&wanted)
            .await
            .map_err(|e| format!("cannot read upstream outputs: {e}"))
    };
    claimed
        .iter()
        .zip(parts)
        .map(|(c, part)| {
            let (dag, plan) = part?;
            let input = match &views {
                Ok(views) => {
                    let run_id = c.run_id.to_string();
                    let nodes =
                        |n: &str| dag.idx(n).and_then(|i| views.get(&(c.run_id, i))).cloned();
                    let item = gantry_dag::Slot::of(c.node).item();
                    let scope = Scope {
                        run_id: &run_id,
                        input: &c.run_input,
                        nodes: &nodes,
                        item: item.map(|i| (c.item.as_ref().unwrap_or(&Value::Null), i)),
                    };
                    gantry_dag::render_in(&dag.node(c.node).input, &scope)
                }
                .map_err(|e| InputError {
                    message: e.to_string(),
                    retryable: false,
                }),
                Err(e) => Err(InputError {
                    message: e.clone(),
                    retryable: true,
                }),
            };
            Some(Prepared { dag, plan, input })
        })
        .collect()
}

/// One claimed node with what it needs to run.
pub(crate) struct Attempt {
    pub(crate) claimed: Claimed,
    pub(crate) prepared: Option<Prepared>,
    /// The `node.dispatch` span the job carried, parent of `agent.execute`.
    pub(crate) traceparent: Option<String>,
}

pub(crate) async fn run(
    guards: Guards,
    executor: Arc<Executor>,
    config: Arc<Config>,
    attempt: Attempt,
    token: CancellationToken,
    done: Done,
) {
    let Attempt {
        claimed,
        prepared,
        traceparent,
    } = attempt;
    let base = AttemptResult {
        run_id: claimed.run_id,
        node: claimed.node,
        attempt: claimed.attempt,
        outcome: Outcome::Failed { retryable: true },
        output: None,
        error: None,
        exit_code: None,
        log_tail: None,
    };
    let result = match prepared {
        // The workflow or plan could not be read: retry later.
        None => AttemptResult {
            error: Some("worker could not load the run's definition".into()),
            ..base
        },
        Some(Prepared { input: Err(e), .. }) => AttemptResult {
            outcome: Outcome::Failed {
                retryable: e.retryable,
            },
            error: Some(e.message),
            ..base
        },
        Some(Prepared {
            dag,
            plan,
            input: Ok(input),
        }) => {
            let node = plan.node(claimed.node);
            // The executor clamps the timeout and the docker runtime the
            // limits, whatever a plan stored before the bounds holds.
            let req = ExecRequest {
                agent: plan.agent(claimed.node).clone(),
                input,
                env: AttemptEnv {
                    run_id: claimed.run_id.to_string(),
                    node_id: dag.node(claimed.node).id.clone(),
                    attempt: claimed.attempt,
                    worker_id: config.id.clone(),
                    item_index: gantry_dag::Slot::of(claimed.node).item(),
                },
                timeout: Duration::from_secs(node.timeout_s),
                cancel: token,
                secrets: Default::default(),
            };
            let agent = req.agent.clone();
            let span = tracing::info_span!("agent.execute",
                workflow.name = %dag.def().name,
                run.id = %claimed.run_id,
                node.id = %req.env.node_id,
                agent.name = %agent.name,
                attempt = claimed.attempt,
                worker.id = %config.id);
            if let Some(parent) = &traceparent {
                gantry_telemetry::set_parent(&span, parent);
            }
            let started = std::time::Instant::now();
            let res = executor.execute(req).instrument(span).await;
            observe(&agent.name, dag.name(), started.elapsed(), &res.outcome);
            let health = match &res.outcome {
                ExecOutcome::Failed {
                    kind: ErrorKind::Runtime,
                    ..
                } => Health::RuntimeFailure,
                _ => Health::Healthy,
            };
            guards.report(&agent, tokio::time::Instant::now(), health);
            let (outcome, output, error) = match res.outcome {
                ExecOutcome::Succeeded(v) => (Outcome::Succeeded, Some(v), None),
                ExecOutcome::Failed { kind, error } => {
                    // A cancelled attempt is retryable: when the worker gives
                    // it back at shutdown it must run again; when its run was
                    // cancelled or its lease lost, fencing rejects the result.
                    let retryable = kind.is_retryable() || kind == ErrorKind::Cancelled;
                    (Outcome::Failed { retryable }, None, Some(error))
                }
            };
            AttemptResult {
                outcome,
                output,
                error,
                exit_code: res.exit_code,
                log_tail: (!res.log_tail.is_empty()).then_some(res.log_tail),
                ..base
            }
        }
    };
    done.send(result);
}

/// Agent metrics of one attempt (SPEC section 6).
fn observe(agent: &str, workflow: &str, took: Duration, outcome: &ExecOutcome) {
    use gantry_telemetry as t;
    let status = match outcome {
        ExecOutcome::Succeeded(_) => "succeeded",
        ExecOutcome::Failed { kind, .. } => {
            metrics::counter!(t::AGENT_ERRORS, "agent" => agent.to_owned(), "kind" => kind.as_str())
                .increment(1);
            "failed"
        }
    };
    metrics::counter!(t::AGENT_RUNS, "agent" => agent.to_owned(), "status" => status).increment(1);
    metrics::histogram!(t::AGENT_DURATION, "agent" => agent.to_owned()).record(took.as_secs_f64());
    let ms = u64::try_from(took.as_micros().div_ceil(1000)).unwrap_or(u64::MAX);
    metrics::counter!(t::AGENT_EXECUTION_MS, "agent" => agent.to_owned(), "workflow" => workflow.to_owned())
        .increment(ms);
}
