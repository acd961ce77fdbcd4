//! `gantry bench docker` (SPEC section 7): N nodes of a tiny container agent
//! (`gantry/testbox`, `sh -c cat`) as a chain through the engine, with a
//! worker of its own that has the docker runtime, against N raw
//! `docker run --rm -i` of the same image and input in the same run.

use anyhow::{bail, Context};
use gantry_dag::{AgentDef, NodeDef, RunStatus, WorkflowDef};
use gantry_engine::{Engine, Started};
use gantry_executor::{DockerConfig, DockerRuntime, ExecLimits, Executor};
use gantry_store::{RunFilter, WorkflowRecord};
use serde_json::{json, Value};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const IMAGE: &str = "gantry/testbox:latest";
const QUEUE: &str = "bench-docker";

pub(crate) async fn run(engine: &Engine, nodes: usize) -> anyhow::Result<Value> {
    let n = nodes.max(1);
    let suffix = &Uuid::new_v4().simple().to_string()[..8];
    let worker_id = format!("bench-docker-{suffix}");
    let docker = DockerRuntime::connect(DockerConfig::new(worker_id.clone()))
        .await
        .context("gantry bench docker needs a running Docker engine")?;
    if docker.client().inspect_image(IMAGE).await.is_err() {
        bail!("image {IMAGE} is missing; build it with scripts/build-test-images.sh");
    }
    let executor = Arc::new(Executor::new(ExecLimits::default()).with_docker(Arc::new(docker)));
    let config = gantry_worker::Config {
        id: worker_id,
        queues: vec![QUEUE.into()],
        concurrency: 4,
        lease: Duration::from_secs(30),
        grace: Duration::from_secs(5),
        breaker: Default::default(),
        inline_advance: true,
    };
    let stop = CancellationToken::new();
    let worker = tokio::spawn(gantry_worker::run(
        engine.clone(),
        executor,
        config,
        stop.clone(),
    ));
    let result = measure(engine, n).await;
    stop.cancel();
    let _ = worker.await;
    result
}

async fn measure(engine: &Engine, n: usize) -> anyhow::Result<Value> {
    let input = json!({"payload": "gantry bench docker", "n": [1, 2, 3]});
    let agent: AgentDef = serde_json::from_value(json!({
        "name": "bench-docker", "runtime": "docker", "image": IMAGE,
        "command": ["sh", "-c", "cat"], "queue": QUEUE, "timeout_s": 60,
        "retry": {"max_attempts": 1}
    }))?;
    engine.upsert_agent(&agent).await?;

    // Warm up both paths (image layers, engine caches) before measuring.
    raw_docker_run(&input).await?;
    let warm = register(engine, "bench-docker-warmup", 2, &input).await?;
    run_once(engine, &warm).await?;

    let wf = register(engine, &format!("bench-docker-{n}"), n, &input).await?;
    let id = run_once(engine, &wf).await?;
    let mut node_ms: Vec<f64> = engine
        .reads()
        .attempt_times(id)
        .await?
        .into_iter()
        .filter_map(|t| {
            let fin = t.finished_at?;
            Some((fin - t.started_at).num_microseconds()? as f64 / 1000.0)
        })
        .collect();
    if node_ms.len() != n {
        bail!("expected {n} finished attempts, found {}", node_ms.len());
    }
    let mut raw_ms = Vec::with_capacity(n);
    for _ in 0..n {
        raw_ms.push(raw_docker_run(&input).await?);
    }
    node_ms.sort_by(f64::total_cmp);
    raw_ms.sort_by(f64::total_cmp);
    let node_p50 = median(&node_ms);
    let raw_p50 = median(&raw_ms);
    Ok(json!({
        "scenario": "docker",
        "nodes": n,
        "node_ms_p50": r3(node_p50),
        "raw_docker_run_ms_p50": r3(raw_p50),
        "overhead_ratio": r3(node_p50 / raw_p50),
    }))
}

/// One `docker run --rm -i --network none IMAGE sh -c cat` fed `input`,
/// timed end to end; fails unless it echoes the input back.
async fn raw_docker_run(input: &Value) -> anyhow::Result<f64> {
    let body = serde_json::to_vec(input)?;
    let started = Instant::now();
    let mut child = tokio::process::Command::new("docker")
        .args([
            "run",
            "--rm",
            "-i",
            "--network",
            "none",
            IMAGE,
            "sh",
            "-c",
            "cat",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("cannot run the docker command line")?;
    let mut stdin = child.stdin.take().context("docker run has no stdin")?;
    stdin.write_all(&body).await?;
    drop(stdin);
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .context("docker run took over 60 s")??;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if !out.status.success() {
        bail!(
            "docker run failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let echoed: Value = serde_json::from_slice(&out.stdout).context("docker run output")?;
    if &echoed != input {
        bail!("docker run echoed {echoed} instead of the input");
    }
    Ok(ms)
}

async fn register(
    engine: &Engine,
    name: &str,
    n: usize,
    input: &Value,
) -> anyhow::Result<WorkflowRecord> {
    let nodes = (0..n)
        .map(|i| NodeDef {
            id: format!("n{i}"),
            agent: "bench-docker".into(),
            workflow: None,
            version: None,
            wait: None,
            depends_on: if i == 0 {
                vec![]
            } else {
                vec![format!("n{}", i - 1)]
            },
            input: input.clone(),
            retry: None,
            timeout_s: None,
            trigger_rule: Default::default(),
            when: None,
            for_each: None,
            max_items: None,
            max_parallel: None,
            approval_timeout_s: None,
            on_approval_timeout: None,
        })
        .collect();
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

/// Starts a run and waits (at most 600 s) until it succeeds.
async fn run_once(engine: &Engine, wf: &WorkflowRecord) -> anyhow::Result<Uuid> {
    let id = match engine.start_run(wf, &json!({}), None).await? {
        Started::New(r) => r.id,
        other => bail!("unexpected start result {other:?}"),
    };
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let filter = RunFilter {
            parent: None,
            workflow: Some(wf.name.clone()),
            status: None,
            tags: Vec::new(),
            limit: 5,
            cursor: None,
        };
        let (runs, _) = engine.reads().list_runs(&filter).await?;
        let run = runs
            .into_iter()
            .find(|r| r.id == id)
            .context("run vanished")?;
        match run.status {
            RunStatus::Running => {}
            RunStatus::Succeeded => return Ok(id),
            other => bail!("benchmark run {id} ended {other}"),
        }
        if Instant::now() > deadline {
            bail!("benchmark run {id} did not finish in 600 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn median(sorted: &[f64]) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        len => sorted[len / 2],
    }
}

fn r3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
