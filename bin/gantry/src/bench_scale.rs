//! `gantry bench scale` (SPEC section 7): the same batch of builtin `sleep`
//! nodes run by 1, 2 and 4 worker replicas (this binary, `gantry worker`,
//! each with a fixed concurrency), so `nodes_per_s` shows how throughput
//! grows with replicas. Replicas are processes, or with `--containers`
//! containers of the gantry image on the host network. One JSON line per
//! worker count, then a summary.

use crate::cli::Conn;
use anyhow::Context;
use gantry_dag::{AgentDef, NodeDef, WorkflowDef};
use gantry_engine::Engine;
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const QUEUE: &str = "bench-scale";
/// Slots per worker process: throughput comes from adding processes.
const CONCURRENCY: usize = 4;
const SLEEP_MS: u64 = 100;
/// Label on every container this benchmark starts, so leftovers of an
/// interrupted run are removed by the next one.
const LABEL: &str = "gantry.bench=scale";

/// How the worker replicas run.
#[derive(Clone, Debug)]
pub(crate) enum Replicas {
    Processes,
    /// `docker run --network host IMAGE worker ...`
    Containers(String),
}

/// Worker replicas of one measurement; stopped and removed when dropped,
/// also when the measurement fails.
enum Workers {
    Processes(Vec<Child>),
    Containers(Vec<String>),
}

impl Drop for Workers {
    fn drop(&mut self) {
        match self {
            Workers::Processes(children) => {
                for child in children {
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
            Workers::Containers(names) if !names.is_empty() => {
                let _ = Command::new("docker")
                    .args(["rm", "-f"])
                    .args(names.iter())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
            Workers::Containers(_) => {}
        }
    }
}

/// The environment every replica gets; values travel as variables, never
/// as arguments, so the database password stays out of `ps`.
fn worker_env(conn: &Conn, id: String) -> [(&'static str, String); 6] {
    [
        ("GANTRY_DATABASE_URL", conn.database_url.clone()),
        ("GANTRY_REDIS_URL", conn.redis_url.clone()),
        ("GANTRY_REDIS_PREFIX", conn.redis_prefix.clone()),
        ("GANTRY_WORKER_ID", id),
        ("GANTRY_DOCKER", "off".into()),
        ("GANTRY_LOG", "warn".into()),
    ]
}

fn spawn_workers(conn: &Conn, n: usize) -> anyhow::Result<Workers> {
    let exe = std::env::current_exe().context("cannot find the gantry binary")?;
    let mut children = Vec::with_capacity(n);
    for i in 0..n {
        let child = Command::new(&exe)
            .args(["worker", "--queues", QUEUE])
            .arg("--concurrency")
            .arg(CONCURRENCY.to_string())
            .envs(worker_env(conn, format!("bench-scale-{n}-{i}")))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start a worker process")?;
        children.push(child);
    }
    Ok(Workers::Processes(children))
}

/// Removes containers left by an interrupted earlier run.
fn remove_leftovers() -> anyhow::Result<()> {
    let out = Command::new("docker")
        .args(["ps", "-aq", "--filter"])
        .arg(format!("label={LABEL}"))
        .output()
        .context("cannot run docker")?;
    anyhow::ensure!(
        out.status.success(),
        "docker ps failed: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    drop(Workers::Containers(ids));
    Ok(())
}

fn spawn_containers(conn: &Conn, image: &str, n: usize) -> anyhow::Result<Workers> {
    let mut workers = Workers::Containers(Vec::with_capacity(n));
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..8];
    for i in 0..n {
        let name = format!("gantry-bench-scale-{suffix}-{n}-{i}");
        let env = worker_env(conn, name.clone());
        let out = Command::new("docker")
            .args([
                "run",
                "-d",
                "--name",
                name.as_str(),
                "--label",
                LABEL,
                "--network",
                "host",
            ])
            .args([
                "--read-only",
                "--cap-drop",
                "ALL",
                "--security-opt",
                "no-new-privileges",
            ])
            .args(env.iter().flat_map(|(k, _)| ["-e", *k]))
            .envs(env.iter().map(|(k, v)| (*k, v)))
            .arg(image)
            .args(["worker", "--queues", QUEUE, "--concurrency"])
            .arg(CONCURRENCY.to_string())
            .output()
            .context("cannot run docker")?;
        if let Workers::Containers(names) = &mut workers {
            // Recorded before checking: a container created but not started
            // still has to go.
            names.push(name);
        }
        anyhow::ensure!(
            out.status.success(),
            "docker run {image} failed (build it with scripts/build-gantry-image.sh): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(workers)
}

/// Wait until `n` workers report presence (they are pulling).
async fn wait_live(engine: &Engine, n: usize) -> anyhow::Result<()> {
    for _ in 0..300 {
        let live = engine.workers().await?;
        if live.iter().filter(|w| w.queues == [QUEUE]).count() >= n {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("{n} worker replicas did not start within 30 s")
}

pub(crate) async fn run(
    engine: &Engine,
    conn: &Conn,
    nodes: usize,
    replicas: Replicas,
) -> anyhow::Result<Value> {
    if let Replicas::Containers(image) = &replicas {
        remove_leftovers()?;
        let found = Command::new("docker")
            .args(["image", "inspect", image.as_str()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .context("cannot run docker")?;
        anyhow::ensure!(
            found.success(),
            "image {image} not found: build it with scripts/build-gantry-image.sh"
        );
    }
    let agent: AgentDef = serde_json::from_value(json!({
        "name": "bench-sleep", "runtime": "builtin", "builtin": "sleep", "queue": QUEUE,
        "retry": {"max_attempts": 1}
    }))?;
    engine.upsert_agent(&agent).await?;
    let def = WorkflowDef {
        triggers: Vec::new(),
        retention_days: None,
        name: format!("bench-scale-{nodes}"),
        description: None,
        input_schema: None,
        output: None,
        nodes: (0..nodes.max(1))
            .map(|i| NodeDef {
                id: format!("s{i}"),
                agent: "bench-sleep".into(),
                workflow: None,
                version: None,
                wait: None,
                depends_on: vec![],
                input: json!({"ms": SLEEP_MS}),
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
            .collect(),
    };
    let wf = engine.register_workflow(&def).await?;
    let mode = match &replicas {
        Replicas::Processes => "processes",
        Replicas::Containers(_) => "containers",
    };
    let mut results = Vec::new();
    for workers in [1usize, 2, 4] {
        let procs = match &replicas {
            Replicas::Processes => spawn_workers(conn, workers)?,
            Replicas::Containers(image) => spawn_containers(conn, image, workers)?,
        };
        // Ctrl-C ends the measurement through `?`, so the replicas go too.
        let (_, wall) = tokio::select! {
            r = async {
                wait_live(engine, workers).await?;
                crate::bench::run_once(engine, &wf).await
            } => r?,
            _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted"),
        };
        drop(procs);
        // Let the killed workers' presence expire before the next count.
        tokio::time::sleep(Duration::from_secs(6)).await;
        let line = json!({
            "scenario": "scale",
            "workers": workers,
            "replicas": mode,
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
        "replicas": mode,
        "nodes_per_s": [rate(0), rate(1), rate(2)],
        "speedup_2": crate::bench::r3(rate(1) / rate(0)),
        "speedup_4": crate::bench::r3(rate(2) / rate(0)),
    }))
}
