//! `gantry bench SCENARIO` (SPEC section 7): runs a scenario against the
//! configured Redis and Postgres with an in-process coordinator and worker,
//! and prints one JSON object as the last line. Figures come from the
//! timestamps stored in Postgres, not from client-side clocks.

use crate::cli::{BenchArgs, WorkerOpts};
use anyhow::{bail, Context};
use gantry_dag::{AgentDef, NodeDef, RunStatus, Runtime, WorkflowDef};
use gantry_engine::{Engine, Started};
use gantry_store::{RunFilter, WorkflowRecord};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub(crate) async fn run(args: BenchArgs) -> anyhow::Result<()> {
    if args.scenario == "ui" {
        return crate::bench_ui::run(args).await;
    }
    let mut conn = args.conn.clone();
    conn.db_pool = conn.db_pool.max(8);
    // A prefix of its own, so a benchmark never mixes with live queues.
    conn.redis_prefix = format!(
        "{}:bench:{}",
        conn.redis_prefix,
        &Uuid::new_v4().simple().to_string()[..8]
    );
    let engine = crate::roles::connect(&conn).await?;
    let stop = CancellationToken::new();
    let coord = tokio::spawn(gantry_coordinator::run(
        engine.clone(),
        Default::default(),
        stop.clone(),
    ));
    let opts = WorkerOpts {
        queues: vec!["bench".into()],
        concurrency: args.concurrency,
        lease_ms: 30_000,
        grace_s: 5,
        id: None,
        inline_advance: std::env::var("GANTRY_INLINE_ADVANCE").map_or(true, |v| v != "false"),
        // Builtin scenarios need no engine; `docker` starts a worker of its own.
        docker: "off".into(),
        secrets_dir: None,
        allowed_mounts: Default::default(),
        secret_bindings: Default::default(),
        process_commands: Default::default(),
        process_user: None,
    };
    let worker = {
        let (engine, stop) = (engine.clone(), stop.clone());
        tokio::spawn(async move { crate::roles::run_worker(engine, &opts, stop).await })
    };
    let result = match args.scenario.as_str() {
        "chain" => chain(&engine, args.nodes.unwrap_or(200), args.concurrency).await,
        "fanout" => fanout(&engine, args.nodes.unwrap_or(2000), args.concurrency).await,
        "map" => {
            crate::bench_map::run(&engine, args.nodes.unwrap_or(10_000), args.concurrency).await
        }
        "event" => {
            crate::bench_event::run(&engine, args.nodes.unwrap_or(200), args.concurrency).await
        }
        "docker" => crate::bench_docker::run(&engine, args.nodes.unwrap_or(20)).await,
        "scale" => {
            let replicas = if args.containers {
                crate::bench_scale::Replicas::Containers(args.image.clone())
            } else {
                crate::bench_scale::Replicas::Processes
            };
            crate::bench_scale::run(&engine, &conn, args.nodes.unwrap_or(400), replicas).await
        }
        other => Err(anyhow::anyhow!(
            "unknown scenario {other:?}; expected chain, fanout, map, event, docker, scale or ui"
        )),
    };
    stop.cancel();
    let _ = worker.await;
    let _ = coord.await;
    let out = result?;
    println!("{}", serde_json::to_string(&out)?);
    Ok(())
}

pub(crate) async fn register(
    engine: &Engine,
    name: &str,
    nodes: Vec<NodeDef>,
) -> anyhow::Result<WorkflowRecord> {
    let agent: AgentDef = serde_json::from_value(json!({
        "name": "bench-noop", "runtime": "builtin", "builtin": "noop", "queue": "bench",
        "retry": {"max_attempts": 1}
    }))?;
    engine.upsert_agent(&agent).await?;
    debug_assert_eq!(agent.runtime, Runtime::Builtin);
    let def = WorkflowDef {
        triggers: Vec::new(),
        retention_days: None,
        name: name.into(),
        description: None,
        input_schema: None,
        output: None,
        nodes,
    };
    Ok(engine.register_workflow(&def).await?)
}

pub(crate) fn node(id: String, deps: Vec<String>) -> NodeDef {
    NodeDef {
        id,
        agent: "bench-noop".into(),
        workflow: None,
        version: None,
        wait: None,
        depends_on: deps,
        input: json!({}),
        retry: None,
        timeout_s: None,
        trigger_rule: Default::default(),
        when: None,
        for_each: None,
        max_items: None,
        max_parallel: None,
        approval_timeout_s: None,
        on_approval_timeout: None,
    }
}

/// Start a run and wait until it ends. Returns its id and wall time from
/// the stored creation and finish timestamps.
pub(crate) async fn run_once(engine: &Engine, wf: &WorkflowRecord) -> anyhow::Result<(Uuid, f64)> {
    run_with(engine, wf, &json!({})).await
}

/// [`run_once`] with `input` as the run input.
pub(crate) async fn run_with(
    engine: &Engine,
    wf: &WorkflowRecord,
    input: &Value,
) -> anyhow::Result<(Uuid, f64)> {
    let id = match engine.start_run(wf, input, None).await? {
        Started::New(r) => r.id,
        other => bail!("unexpected start result {other:?}"),
    };
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let (runs, _) = engine
            .reads()
            .list_runs(&RunFilter {
                parent: None,
                workflow: Some(wf.name.clone()),
                status: None,
                tags: Vec::new(),
                limit: 5,
                cursor: None,
            })
            .await?;
        let run = runs
            .into_iter()
            .find(|r| r.id == id)
            .context("run vanished")?;
        if run.status != RunStatus::Running {
            if run.status != RunStatus::Succeeded {
                bail!("benchmark run {id} ended {}", run.status);
            }
            let fin = run
                .finished_at
                .context("finished run without finished_at")?;
            let wall = (fin - run.created_at).num_microseconds().unwrap_or(0) as f64 / 1e6;
            return Ok((id, wall));
        }
        if Instant::now() > deadline {
            bail!("benchmark run {id} did not finish in 600 s");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

pub(crate) fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub(crate) fn r3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

async fn chain(engine: &Engine, n: usize, concurrency: usize) -> anyhow::Result<Value> {
    let n = n.max(2);
    let nodes = |n: usize| -> Vec<NodeDef> {
        (0..n)
            .map(|i| {
                node(
                    format!("n{i}"),
                    if i == 0 {
                        vec![]
                    } else {
                        vec![format!("n{}", i - 1)]
                    },
                )
            })
            .collect()
    };
    let warm = register(engine, "bench-chain-warmup", nodes(20)).await?;
    run_once(engine, &warm).await?;
    let wf = register(engine, &format!("bench-chain-{n}"), nodes(n)).await?;
    let (id, wall) = run_once(engine, &wf).await?;
    let times = engine.reads().attempt_times(id).await?;
    let mut by_node = vec![None; n];
    for t in times {
        let i = t.node as usize;
        by_node[i] = Some(t);
    }
    let mut hops = Vec::with_capacity(n);
    for i in 1..n {
        let (Some(prev), Some(next)) = (&by_node[i - 1], &by_node[i]) else {
            continue;
        };
        if let Some(fin) = prev.finished_at {
            hops.push((next.started_at - fin).num_microseconds().unwrap_or(0) as f64 / 1000.0);
        }
    }
    hops.sort_by(f64::total_cmp);
    Ok(json!({
        "scenario": "chain",
        "nodes": n,
        "hop_ms_p50": r3(pct(&hops, 50.0)),
        "hop_ms_p99": r3(pct(&hops, 99.0)),
        "wall_s": r3(wall),
        "durable": true,
        "concurrency": concurrency,
    }))
}

async fn fanout(engine: &Engine, n: usize, concurrency: usize) -> anyhow::Result<Value> {
    let n = n.max(1);
    let nodes = |n: usize| -> Vec<NodeDef> {
        let mut v = vec![node("root".into(), vec![])];
        v.extend((0..n).map(|i| node(format!("c{i}"), vec!["root".into()])));
        v.push(node(
            "join".into(),
            (0..n).map(|i| format!("c{i}")).collect(),
        ));
        v
    };
    let warm = register(engine, "bench-fanout-warmup", nodes(50)).await?;
    run_once(engine, &warm).await?;
    let wf = register(engine, &format!("bench-fanout-{n}"), nodes(n)).await?;
    let (_, wall) = run_once(engine, &wf).await?;
    let total = n + 2;
    Ok(json!({
        "scenario": "fanout",
        "nodes": total,
        "nodes_per_s": r3(total as f64 / wall),
        "wall_s": r3(wall),
        "durable": true,
        "concurrency": concurrency,
    }))
}
