//! `gantry bench ui`: how long each dashboard page takes to render with
//! 10,000 runs in Postgres and 100,000 jobs in Redis. It seeds a scratch
//! database (created next to the configured one and dropped afterwards) and
//! a Redis prefix of its own, logs in like a browser, then times every page
//! in-process (axum `oneshot`, body read to the end) and prints per-page
//! p50/p95/max milliseconds.

use crate::cli::BenchArgs;
use anyhow::{bail, ensure, Context};
use gantry_dag::{AgentDef, NodeDef, WorkflowDef};
use gantry_engine::{Engine, Started};
use gantry_queue::{BreakerInfo, Job, Queue, WorkerInfo};
use gantry_store::Store;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tower::ServiceExt;
use uuid::Uuid;

const RUNS: i64 = 10_000;
const READY: usize = 40_000;
const DELAYED: usize = 30_000;
const DEAD: usize = 30_000;
const IN_FLIGHT: usize = 200;
const QUEUE: &str = "ui-bench";
const TOKEN: &str = "bench-ui-token";

pub(crate) async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let iterations = args.nodes.unwrap_or(50).max(1);
    let admin = Store::connect(&args.conn.database_url, 2)
        .await
        .context("cannot connect to postgres (GANTRY_DATABASE_URL)")?;
    let db = format!(
        "gantry_bench_ui_{}",
        &Uuid::new_v4().simple().to_string()[..8]
    );
    gantry_store::scratch_database(&admin, &db, false).await?;
    let result = bench(&args, &db, iterations).await;
    if let Err(e) = gantry_store::scratch_database(&admin, &db, true).await {
        tracing::warn!(error = %e, database = %db, "cannot drop the scratch database");
    }
    let out = result?;
    println!("{}", serde_json::to_string(&out)?);
    Ok(())
}

/// The configured URL with its database name replaced.
fn with_database(url: &str, db: &str) -> anyhow::Result<String> {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let slash = base[base.find("://").context("not a url")? + 3..]
        .find('/')
        .map(|i| i + base.find("://").unwrap_or(0) + 3);
    let root = slash.map_or(base, |i| &base[..i]);
    Ok(match query {
        Some(q) => format!("{root}/{db}?{q}"),
        None => format!("{root}/{db}"),
    })
}

async fn bench(args: &BenchArgs, db: &str, iterations: usize) -> anyhow::Result<Value> {
    let store = Store::connect(&with_database(&args.conn.database_url, db)?, 8).await?;
    store.migrate().await?;
    let prefix = format!(
        "{}:bench-ui:{}",
        args.conn.redis_prefix,
        &Uuid::new_v4().simple().to_string()[..8]
    );
    let queue = Queue::connect(&args.conn.redis_url, &prefix).await?;
    let engine = Engine::new(store.clone(), queue.clone());

    let seeded = Instant::now();
    let template = seed_runs(&engine).await?;
    let runs_s = seeded.elapsed().as_secs_f64();
    let jobs_started = Instant::now();
    seed_jobs(&queue, template).await?;
    seed_workers(&queue).await?;
    let jobs_s = jobs_started.elapsed().as_secs_f64();
    let stats = queue.stats(QUEUE).await?;
    let (runs_stored,): (i64,) = (store.run_counts().await?.iter().map(|(_, n)| n).sum(),);

    let mut state = gantry_api::AppState::new(engine.clone(), gantry_api::ApiConfig::default());
    state.access = gantry_api::Access::new([gantry_api::token_hash(TOKEN)], 0);
    let app = gantry_api::app(state);
    let cookie = login(&app).await?;

    // Deep pages: follow "next" links a while, as a user paging far would.
    let runs_deep = follow_next(&app, &cookie, "/runs", 40).await?;
    let dead_deep = follow_next(&app, &cookie, &format!("/queues/{QUEUE}?state=dead"), 40).await?;
    let ready_deep =
        follow_next(&app, &cookie, &format!("/queues/{QUEUE}?state=ready"), 40).await?;

    let pages: Vec<(&str, String)> = vec![
        ("overview", "/".to_owned()),
        ("queues", "/queues".to_owned()),
        ("queue_ready", format!("/queues/{QUEUE}?state=ready")),
        ("queue_ready_page_41", ready_deep),
        ("queue_delayed", format!("/queues/{QUEUE}?state=delayed")),
        (
            "queue_in_flight",
            format!("/queues/{QUEUE}?state=in_flight"),
        ),
        ("queue_dead", format!("/queues/{QUEUE}?state=dead")),
        ("queue_dead_page_41", dead_deep),
        ("runs", "/runs".to_owned()),
        ("runs_page_41", runs_deep),
        (
            "runs_filtered",
            "/runs?workflow=ui-bench&status=failed".to_owned(),
        ),
        ("run_detail", format!("/runs/{template}")),
        ("workers", "/workers".to_owned()),
        ("workflows", "/workflows".to_owned()),
        ("workflow", "/workflows/ui-bench".to_owned()),
        ("agents", "/agents".to_owned()),
        ("agent", "/agents/ui-bench-noop".to_owned()),
    ];
    let mut out = serde_json::Map::new();
    let mut worst = 0.0f64;
    for (name, uri) in &pages {
        // One untimed request warms caches and checks the page answers 200.
        get(&app, &cookie, uri).await?;
        let mut ms = Vec::with_capacity(iterations);
        for _ in 0..iterations {
            let started = Instant::now();
            get(&app, &cookie, uri).await?;
            ms.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        ms.sort_by(f64::total_cmp);
        let pick = |q: f64| ms[((ms.len() as f64 - 1.0) * q).round() as usize];
        worst = worst.max(pick(1.0));
        out.insert(
            (*name).to_owned(),
            json!({"p50_ms": round(pick(0.5)), "p95_ms": round(pick(0.95)), "max_ms": round(pick(1.0))}),
        );
    }
    queue_cleanup(&queue).await;
    Ok(json!({
        "scenario": "ui",
        "runs": runs_stored,
        "jobs": {"ready": stats.ready, "delayed": stats.delayed, "in_flight": stats.in_flight, "dead": stats.dead},
        "seed_runs_s": round(runs_s),
        "seed_jobs_s": round(jobs_s),
        "iterations": iterations,
        "build": if cfg!(debug_assertions) { "debug" } else { "release" },
        "pages": out,
        "worst_max_ms": round(worst),
        "under_200ms": worst < 200.0,
    }))
}

fn round(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// A 20-node workflow in five layers of four; one run started by the
/// engine, then copied by the store to 10,000 runs in four statuses.
async fn seed_runs(engine: &Engine) -> anyhow::Result<Uuid> {
    let agent: AgentDef = serde_json::from_value(json!({
        "name": "ui-bench-noop", "runtime": "builtin", "builtin": "noop", "queue": QUEUE
    }))?;
    engine.upsert_agent(&agent).await?;
    let mut nodes = Vec::new();
    for layer in 0..5 {
        for i in 0..4 {
            let deps = if layer == 0 {
                vec![]
            } else {
                vec![
                    format!("n{}-{i}", layer - 1),
                    format!("n{}-{}", layer - 1, (i + 1) % 4),
                ]
            };
            nodes.push(NodeDef {
                id: format!("n{layer}-{i}"),
                agent: agent.name.clone(),
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
            });
        }
    }
    let def = WorkflowDef {
        triggers: Vec::new(),
        retention_days: None,
        name: "ui-bench".into(),
        description: Some("gantry bench ui".into()),
        input_schema: None,
        output: None,
        nodes,
    };
    let wf = engine.register_workflow(&def).await?;
    let template = match engine.start_run(&wf, &json!({}), None).await? {
        Started::New(r) => r.id,
        other => bail!("unexpected start result {other:?}"),
    };
    let written = engine.seed_runs_like(template, RUNS - 1).await?;
    ensure!(written == (RUNS - 1) as u64, "seeded {written} runs");
    Ok(template)
}

fn dispatch(run: Uuid, node: usize) -> String {
    json!({"run_id": run, "node": node, "queue": QUEUE, "workflow_id": 1, "plan_hash": "bench"})
        .to_string()
}

/// 40,000 ready, 30,000 delayed and 30,000 dead jobs, and a few hundred in
/// flight, in batches.
async fn seed_jobs(queue: &Queue, run: Uuid) -> anyhow::Result<()> {
    let job = |kind: &str, i: usize| Job {
        id: format!("{kind}-{i:06}"),
        queue: QUEUE.to_owned(),
        payload: dispatch(run, i % 20),
    };
    for start in (0..READY).step_by(2000) {
        let jobs: Vec<Job> = (start..(start + 2000).min(READY))
            .map(|i| job("ready", i))
            .collect();
        queue.enqueue(&jobs).await?;
    }
    let mut consumer = queue
        .consumer("bench-ui-worker", &[QUEUE.to_owned()])
        .await?;
    let mut taken = 0;
    while taken < IN_FLIGHT {
        let got = consumer
            .fetch(IN_FLIGHT - taken, Duration::from_millis(100))
            .await?;
        ensure!(!got.is_empty(), "no job to take in flight");
        taken += got.len();
    }
    for start in (0..DELAYED).step_by(2000) {
        let jobs: Vec<(Job, Duration)> = (start..(start + 2000).min(DELAYED))
            .map(|i| (job("delayed", i), Duration::from_secs(3600 + i as u64)))
            .collect();
        queue.schedule(&jobs).await?;
    }
    for start in (0..DEAD).step_by(2000) {
        let jobs: Vec<(Job, u64)> = (start..(start + 2000).min(DEAD))
            .map(|i| (job("dead", i), 5))
            .collect();
        queue
            .bury_jobs(
                &jobs,
                "every try ended with its lease expired: the job kills or hangs its workers",
            )
            .await?;
    }
    Ok(())
}

async fn seed_workers(queue: &Queue) -> anyhow::Result<()> {
    let now = gantry_queue::unix_ms();
    for w in 0..8 {
        let info = WorkerInfo {
            id: format!("bench-ui-worker-{w}"),
            queues: vec![QUEUE.to_owned(), "default".to_owned()],
            concurrency: 16,
            running: (0..16).map(|i| format!("{}:{i}", Uuid::now_v7())).collect(),
            started_at_ms: now - 60_000,
            last_heartbeat_ms: now,
            runtimes: Vec::new(),
            breakers: vec![
                BreakerInfo {
                    agent: "ui-bench-noop".into(),
                    state: "closed".into(),
                    failures: 1,
                },
                BreakerInfo {
                    agent: "docker:daemon".into(),
                    state: if w == 0 { "open" } else { "closed" }.into(),
                    failures: 0,
                },
            ],
        };
        queue.heartbeat(&info, Duration::from_secs(600)).await?;
    }
    Ok(())
}

/// Forget the benchmark's workers; its keys carry a prefix of their own.
async fn queue_cleanup(queue: &Queue) {
    for w in 0..8 {
        let _ = queue.worker_gone(&format!("bench-ui-worker-{w}")).await;
    }
}

async fn login(app: &axum::Router) -> anyhow::Result<String> {
    let req = axum::http::Request::post("/login")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(axum::body::Body::from(format!("token={TOKEN}")))?;
    let res = app.clone().oneshot(req).await?;
    ensure!(res.status() == 303, "login answered {}", res.status());
    let cookie = res
        .headers()
        .get("set-cookie")
        .context("no session cookie")?
        .to_str()?;
    Ok(cookie.split(';').next().unwrap_or_default().to_owned())
}

async fn get(app: &axum::Router, cookie: &str, uri: &str) -> anyhow::Result<String> {
    let req = axum::http::Request::get(uri)
        .header("cookie", cookie)
        .body(axum::body::Body::empty())?;
    let res = app.clone().oneshot(req).await?;
    let status = res.status();
    let body = axum::body::to_bytes(res.into_body(), 64 << 20).await?;
    ensure!(status == 200, "{uri} answered {status}");
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// The page `hops` "next" links after `start`.
async fn follow_next(
    app: &axum::Router,
    cookie: &str,
    start: &str,
    hops: usize,
) -> anyhow::Result<String> {
    let mut uri = start.to_owned();
    for _ in 0..hops {
        let html = get(app, cookie, &uri).await?;
        const HREF: &str = r#"id="next-page" href=""#;
        let Some(at) = html.find(HREF) else {
            bail!("{uri} has no next page");
        };
        let rest = &html[at + HREF.len()..];
        uri = rest[..rest.find('"').context("unterminated href")?].replace("&amp;", "&");
    }
    Ok(uri)
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn database_names_are_replaced() {
        assert_eq!(
            with_database("postgres://u:p@h:5432/gantry", "x").unwrap(),
            "postgres://u:p@h:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/gantry?sslmode=disable", "x").unwrap(),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h", "x").unwrap(),
            "postgres://h/x"
        );
    }
}
