//! The observability folder against a real `gantry dev`: every metric that
//! an alert rule, a Grafana dashboard or docs/slo.md names must be in
//! `/metrics` after an ordinary run; and a frozen worker's lease expiry and
//! its vanished heartbeat show up in the metrics that alerts watch.

mod common;

use common::{eventually, node_of, repo_root, Env};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(30);

/// Files whose metric names must exist: the alert rules, every dashboard,
/// and the SLO document's PromQL.
fn referencing_files() -> Vec<PathBuf> {
    let root = repo_root();
    let mut files = vec![
        root.join("observability/prometheus/alerts.yml"),
        root.join("docs/slo.md"),
    ];
    let dir = root.join("observability/grafana/dashboards");
    let mut dashboards: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    dashboards.sort();
    assert!(!dashboards.is_empty(), "no dashboards in {}", dir.display());
    files.extend(dashboards);
    files
}

/// Every `gantry_[a-z_]+` word in `text` (not part of a longer identifier,
/// so recording rules such as `gantry:run_failures:ratio_rate5m` are not).
fn metric_names(text: &str) -> BTreeSet<String> {
    let bytes = text.as_bytes();
    let mut out = BTreeSet::new();
    let mut from = 0;
    while let Some(at) = text[from..].find("gantry_") {
        let start = from + at;
        let glued = start > 0 && {
            let c = bytes[start - 1];
            c.is_ascii_alphanumeric() || c == b'_' || c == b':'
        };
        let end = text[start..]
            .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
            .map_or(text.len(), |n| start + n);
        if !glued {
            out.insert(text[start..end].trim_end_matches('_').to_owned());
        }
        from = end.max(start + 1);
    }
    out
}

/// Names `/metrics` exports: every sample name (`x_bucket`, `x_sum`, ...)
/// and every family named by a `# TYPE` line (the histogram's base name).
fn exported_names(metrics: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for line in metrics.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            if let Some(name) = rest.split_whitespace().next() {
                out.insert(name.to_owned());
            }
        } else if !line.starts_with('#') && !line.trim().is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            out.insert(line[..end].to_owned());
        }
    }
    out
}

/// Referenced names missing from `exported`, with the files naming them.
fn missing(
    referenced: &BTreeMap<String, BTreeSet<String>>,
    exported: &BTreeSet<String>,
) -> Vec<String> {
    referenced
        .iter()
        .filter(|(name, _)| !exported.contains(*name))
        .map(|(name, files)| {
            let files: Vec<&str> = files.iter().map(String::as_str).collect();
            format!("{name} (in {})", files.join(", "))
        })
        .collect()
}

/// Metric name -> the files (relative to the repo) that name it.
fn referenced_names(files: &[PathBuf]) -> BTreeMap<String, BTreeSet<String>> {
    let root = repo_root();
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files {
        let text =
            std::fs::read_to_string(f).unwrap_or_else(|e| panic!("read {}: {e}", f.display()));
        let rel = f.strip_prefix(&root).unwrap_or(Path::new(f)).display();
        for name in metric_names(&text) {
            out.entry(name).or_default().insert(rel.to_string());
        }
    }
    out
}

async fn scrape(env: &Env) -> String {
    let res = env
        .http
        .get(format!("{}/metrics", env.base))
        .send()
        .await
        .expect("GET /metrics");
    assert_eq!(res.status(), 200);
    res.text().await.expect("metrics body")
}

/// The value of the first sample whose line starts with `prefix`.
fn sample(metrics: &str, prefix: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn the_checker_reports_a_misspelt_dashboard_metric() {
    let exported = exported_names(
        "# TYPE gantry_agent_duration_seconds histogram\n\
         gantry_agent_duration_seconds_bucket{agent=\"echo\",le=\"1\"} 1\n\
         gantry_agent_duration_seconds_sum{agent=\"echo\"} 0.1\n\
         gantry_agent_duration_seconds_count{agent=\"echo\"} 1\n\
         gantry_workers_live 1\n",
    );
    let dashboard = r#"{"expr": "histogram_quantile(0.95, sum by (le) (rate(gantry_agent_duration_seconds_bucket[5m])))"},
        {"expr": "max(gantry_worker_live) + gantry:slo:ratio_rate5m + x_gantry_y"}"#;
    let mut referenced = BTreeMap::new();
    for name in metric_names(dashboard) {
        referenced.insert(name, BTreeSet::from(["typo.json".to_owned()]));
    }
    assert_eq!(
        referenced.keys().collect::<Vec<_>>(),
        ["gantry_agent_duration_seconds_bucket", "gantry_worker_live"]
    );
    assert_eq!(
        missing(&referenced, &exported),
        ["gantry_worker_live (in typo.json)"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_named_by_alerts_dashboards_and_slos_is_in_metrics_after_a_run() {
    let referenced = referenced_names(&referencing_files());
    // The extraction itself must find the names the files are about.
    for name in [
        "gantry_workflow_runs_total",
        "gantry_node_dispatch_latency_seconds_bucket",
        "gantry_agent_execution_milliseconds_total",
        "gantry_workers_live",
        "gantry_lease_expiries_total",
        "gantry_circuit_breaker_open",
    ] {
        assert!(
            referenced.contains_key(name),
            "{name} not found in {referenced:?}"
        );
    }

    let mut env = Env::new().await;
    let _dev = env.dev(&[]).await;
    env.register_observed().await;
    // A cron trigger that will not tick during the test: its counter is
    // exported at 0 from the scheduler's first pass.
    env.workflow(
        json!({"name": "yearly", "triggers": [{"cron": "0 0 1 1 *"}],
                        "nodes": [{"id": "a", "agent": "noop"}]}),
    )
    .await;
    env.workflow(json!({"name": "plain", "nodes": [
        {"id": "a", "agent": "noop"},
        {"id": "b", "agent": "sleep", "depends_on": ["a"], "input": {"ms": 20}}
    ]}))
    .await;
    let plain = env.start("plain", json!({})).await;
    let observed = env.start("observed", json!({})).await;
    env.wait_node(&observed, "g", "waiting_approval", TIMEOUT)
        .await;
    let (status, body) = env
        .post(&format!("/v1/runs/{observed}/nodes/g/approve"), &json!({}))
        .await;
    assert_eq!(status, 200, "approve: {body}");
    assert_eq!(env.wait_run(&plain, TIMEOUT).await["status"], "succeeded");
    let run = env.wait_run(&observed, TIMEOUT).await;
    assert_eq!(run["status"], "failed", "{run:#}");
    assert_eq!(node_of(&run, "g")["status"], "succeeded", "{run:#}");

    let text = scrape(&env).await;
    let exported = exported_names(&text);
    let absent = missing(&referenced, &exported);
    assert!(
        absent.is_empty(),
        "metrics named by observability/ or docs/slo.md but absent from /metrics after a run:\n  {}\n\n/metrics:\n{text}",
        absent.join("\n  ")
    );

    // The new metrics carry what the dashboards and alerts expect.
    let value = |prefix: &str| {
        sample(&text, prefix).unwrap_or_else(|| panic!("no sample {prefix}:\n{text}"))
    };
    assert_eq!(value("gantry_workers_live "), 1.0);
    assert_eq!(value(r#"gantry_worker_slots{state="total"}"#), 16.0);
    assert_eq!(
        value(r#"gantry_lease_expiries_total{queue="default"}"#),
        0.0
    );
    assert_eq!(value("gantry_stale_results_total "), 0.0);
    assert_eq!(value(r#"gantry_circuit_breaker_open{agent="echo"}"#), 0.0);
    let ticks = common::eventually("the tick counter at 0", TIMEOUT, || async {
        let text = scrape(&env).await;
        sample(&text, r#"gantry_schedule_ticks_total{workflow="yearly"}"#).ok_or(json!(text))
    })
    .await;
    assert_eq!(ticks, 0.0);
    for outcome in ["matched", "started", "unmatched"] {
        assert_eq!(
            value(&format!(r#"gantry_events_total{{outcome="{outcome}"}}"#)),
            0.0,
            "no event was sent"
        );
    }
    // 20 ms of sleep, rounded up per attempt: at least 20.
    let slept =
        value(r#"gantry_agent_execution_milliseconds_total{agent="sleep",workflow="plain"}"#);
    assert!(slept >= 20.0, "sleep ran {slept} ms:\n{text}");
    // Three tries of `fail`, each at least 1 ms (rounded up).
    assert!(
        value(r#"gantry_agent_execution_milliseconds_total{agent="fail",workflow="observed"}"#)
            >= 3.0
    );
    for id in [&plain, &observed] {
        assert!(!text.contains(id.as_str()), "a run id leaked into a label");
    }
}

/// A worker frozen mid-attempt: its heartbeat vanishes from
/// `gantry_workers_live` and the reconciler counts its lease expiry in
/// `gantry_lease_expiries_total{queue}`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_workers_lease_expiry_and_absence_are_counted() {
    let mut env = Env::new().await;
    // The dev process's own worker reads another queue, so the job goes to
    // the worker this test freezes; its coordinator reconciles every second.
    let _dev = env
        .dev(&[("GANTRY_QUEUES", "elsewhere"), ("GANTRY_DOCKER", "off")])
        .await;
    let script = env.script("slow.sh", "cat >/dev/null\nsleep 10\necho '{}'");
    env.agent(json!({
        "name": "slow", "runtime": "process", "command": [script.to_str().unwrap()],
        "timeout_s": 30,
        "retry": {"max_attempts": 3, "initial_delay_ms": 100, "max_delay_ms": 200, "multiplier": 2.0}
    }))
    .await;
    env.workflow(json!({"name": "frozen", "nodes": [{"id": "s", "agent": "slow"}]}))
        .await;
    let worker = env
        .worker(
            "frozen-w",
            &[("GANTRY_LEASE_MS", "1000"), ("GANTRY_DOCKER", "off")],
        )
        .await;
    let id = env.start("frozen", json!({})).await;
    env.wait_node(&id, "s", "running", TIMEOUT).await;
    let text = scrape(&env).await;
    assert_eq!(sample(&text, "gantry_workers_live "), Some(2.0), "{text}");
    assert_eq!(
        sample(&text, r#"gantry_lease_expiries_total{queue="default"}"#),
        Some(0.0),
        "{text}"
    );

    let stop = std::process::Command::new("kill")
        .args(["-STOP", &worker.pid().to_string()])
        .status()
        .expect("kill -STOP");
    assert!(stop.success());
    eventually("the lease expiry to be counted", TIMEOUT, || async {
        let text = scrape(&env).await;
        match sample(&text, r#"gantry_lease_expiries_total{queue="default"}"#) {
            Some(n) if n >= 1.0 => Ok(n),
            other => Err(Value::from(format!("{other:?}"))),
        }
    })
    .await;
    eventually("the frozen worker to drop out", TIMEOUT, || async {
        let text = scrape(&env).await;
        match sample(&text, "gantry_workers_live ") {
            Some(1.0) => Ok(()),
            other => Err(Value::from(format!("{other:?}"))),
        }
    })
    .await;
    let detail = env.node(&id, "s").await;
    assert_eq!(
        detail["attempts_detail"][0]["error"], "lease expired",
        "{detail:#}"
    );
    // One expiry, counted once (the reconciler runs every second).
    let text = scrape(&env).await;
    assert_eq!(
        sample(&text, r#"gantry_lease_expiries_total{queue="default"}"#),
        Some(1.0),
        "{text}"
    );
    drop(worker); // SIGKILL ends a stopped process too
}
