//! `gantry bench scale` (SPEC section 7): the same batch of builtin `sleep`
//! nodes run by 1, 2 and 4 worker processes (this binary, `gantry worker`,
//! each with a fixed concurrency), so `nodes_per_s` shows how throughput
//! grows with replicas. One JSON line per worker count, then a summary.

use crate::cli::Conn;
use anyhow::Context;
use gantry_coordinator::Engine;
use gantry_dag::{AgentDef, NodeDef, WorkflowDef};
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const QUEUE: &str = "bench-scale";
/// Slots per worker process: throughput comes from adding processes.
const CONCURRENCY: usize = 4;
const SLEEP_MS: u64 = 100;

/// Worker processes of one measurement; killed when dropped.
struct Workers(Vec<Child>);

impl Drop for Workers {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn spawn_workers(conn: &Conn, n: usize) -> anyhow::Result<Workers> {
    let exe = std::env::current_exe().context("cannot find the gantry binary")?;
    let mut children = Vec::with_capacity(n);
    for i in 0..n {
        let child = Command::new(&exe)
            .args(["worker", "--queues", QUEUE])
            .arg("--concurrency")
            .arg(CONCURRENCY.to_string())
            .env("GANTRY_DATABASE_URL", &conn.database_url)
            .env("GANTRY_REDIS_URL", &conn.redis_url)
            .env("GANTRY_REDIS_PREFIX", &conn.redis_prefix)
            .env("GANTRY_WORKER_ID", format!("bench-scale-{n}-{i}"))
            .env("GANTRY_DOCKER", "off")
            .env("GANTRY_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start a worker process")?;
        children.push(child);
    }
    Ok(Workers(children))
}

/// Wait until `n` workers report presence (they are pulling).
async fn wait_live(engine: &Engine, n: usize) -> anyhow::Result<()> {
    for _ in 0..300 {
        let live = engine.queue.workers().await?;
        if live.iter().filter(|w| w.queues == [QUEUE]).count() >= n {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("{n} worker processes did not start within 30 s")
}

pub(crate) async fn run(engine: &Engine, conn: &Conn, nodes: usize) -> anyhow::Result<Value> {
    let agent: AgentDef = serde_json::from_value(json!({
        "name": "bench-sleep", "runtime": "builtin", "builtin": "sleep", "queue": QUEUE,
        "retry": {"max_attempts": 1}
    }))?;
    engine.store.upsert_agent(&agent).await?;
    let def = WorkflowDef {
        name: format!("bench-scale-{nodes}"),
        description: None,
        nodes: (0..nodes.max(1))
            .map(|i| NodeDef {
                id: format!("s{i}"),
                agent: "bench-sleep".into(),
                depends_on: vec![],
                input: json!({"ms": SLEEP_MS}),
                retry: None,
                timeout_s: None,
            })
            .collect(),
    };
    let wf = engine.store.register_workflow(&def).await?;
    let mut results = Vec::new();
    for workers in [1usize, 2, 4] {
        let procs = spawn_workers(conn, workers)?;
        wait_live(engine, workers).await?;
        let (_, wall) = crate::bench::run_once(engine, &wf).await?;
        drop(procs);
        // Let the killed workers' presence expire before the next count.
        tokio::time::sleep(Duration::from_secs(6)).await;
        let line = json!({
            "scenario": "scale",
            "workers": workers,
            "concurrency_per_worker": CONCURRENCY,
            "nodes": def.nodes.len(),
            "sleep_ms": SLEEP_MS,
            "nodes_per_s": crate::bench::r3(def.nodes.len() as f64 / wall),
            "wall_s": crate::bench::r3(wall),
        });
        println!("{line}");
        results.push(line);
    }
    let rate = |i: usize| results[i]["nodes_per_s"].as_f64().unwrap_or(0.0);
    Ok(json!({
        "scenario": "scale",
        "workers": [1, 2, 4],
        "nodes_per_s": [rate(0), rate(1), rate(2)],
        "speedup_2": crate::bench::r3(rate(1) / rate(0)),
        "speedup_4": crate::bench::r3(rate(2) / rate(0)),
    }))
}
