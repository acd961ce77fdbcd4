//! `gantry bench event` (SPEC section 7): N runs (default 200) each parked
//! on a `wait` node, then one event each. `resume_ms` is, per run, the
//! event's stored receipt to the stored start of the waiting node's
//! dependent (a builtin `noop`): the match, the coordinator's advance, the
//! delivery and the claim. Every run waits before the first event is sent,
//! so the first events are matched against N open waits.

use crate::bench::{node, pct, r3, register};
use anyhow::{bail, Context};
use gantry_dag::{NewEvent, NodeStatus, RunStatus, WaitDef};
use gantry_engine::{Engine, Started};
use gantry_store::Recorded;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

pub(crate) async fn run(engine: &Engine, n: usize, concurrency: usize) -> anyhow::Result<Value> {
    let n = n.clamp(1, 100_000);
    let mut gate = node("gate".into(), vec![]);
    gate.agent = String::new();
    gate.wait = Some(WaitDef {
        event: "bench.done".into(),
        key: "{{run.id}}".into(),
        timeout_s: None,
        on_timeout: Default::default(),
    });
    let after = node("after".into(), vec!["gate".into()]);
    let wf = register(engine, "bench-event", vec![gate, after]).await?;
    let mut runs = Vec::with_capacity(n);
    for _ in 0..n {
        match engine.start_run(&wf, &json!({}), None).await? {
            Started::New(r) => runs.push(r.id),
            other => bail!("unexpected start result {other:?}"),
        }
    }
    let began = Instant::now();
    let mut received = Vec::with_capacity(n);
    for id in &runs {
        let event = NewEvent {
            name: "bench.done".into(),
            key: id.to_string(),
            data: json!({}),
            id: None,
        };
        match engine.send_event(&event, &id.to_string()).await? {
            Recorded::New(e) if e.waits_matched == 1 => received.push(e.received_at),
            other => bail!("the event for run {id} matched no wait: {other:?}"),
        }
    }
    let send_s = began.elapsed().as_secs_f64();
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut resume = Vec::with_capacity(n);
    for (id, at) in runs.iter().zip(received) {
        let started = loop {
            let run = engine.reads().get_run(*id).await?.context("run vanished")?;
            let after = run.nodes.iter().find(|x| x.id == "after");
            match (run.run.status, after) {
                (RunStatus::Running, _) | (_, None) => {}
                (RunStatus::Succeeded, Some(a)) if a.status == NodeStatus::Succeeded => {
                    break a.started_at.context("a node that ran has no start")?;
                }
                (status, _) => bail!("benchmark run {id} ended {status}"),
            }
            if Instant::now() > deadline {
                bail!("benchmark run {id} did not finish in 600 s");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        resume.push((started - at).num_microseconds().unwrap_or(0) as f64 / 1000.0);
    }
    resume.sort_by(f64::total_cmp);
    Ok(json!({
        "scenario": "event",
        "runs": n,
        "resume_ms_p50": r3(pct(&resume, 50.0)),
        "resume_ms_p99": r3(pct(&resume, 99.0)),
        "events_per_s": r3(n as f64 / send_s),
        "durable": true,
        "concurrency": concurrency,
    }))
}
