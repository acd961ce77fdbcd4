//! The chaos suite: 200 random workflows of up to 50 nodes (some nodes fail,
//! some are slow, some are `for_each` maps whose instances must each
//! succeed once and land in item order, some start child workflows, alone
//! or one per item; some wait for an event, sent twice under one id while
//! the faults happen; some have trigger rules other than the default and
//! some a `when`) on real processes (an API, two coordinators, three
//! workers), with an every-second cron workflow ticking throughout, while
//! workers are SIGKILLed, a coordinator is killed and restarted, Redis
//! loses every delivery and Postgres restarts. At the end every run must be
//! terminal with exactly the statuses and outputs the DAGs imply (every
//! wait completed once, with its event's data), no node may have more than
//! one successful attempt, no tick may have two runs, and no queue may hold
//! a leftover job. Its own test binary (it restarts Postgres).

mod common;

use common::{Env, Proc};
use serde_json::{json, Value};
use sqlx::Connection;
use std::collections::HashMap;
use std::time::{Duration, Instant};

const WORKFLOWS: usize = 200;
const MAX_NODES: usize = 50;
const SEED: u64 = 0x6a09_e667_f3bc_c909;
/// Short leases so killed workers' nodes come back quickly.
const LEASE_MS: &str = "2000";
const FINISH_TIMEOUT: Duration = Duration::from_secs(300);

/// xorshift64*: a deterministic stream, so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Echo,
    Sleep(u64),
    Fail,
    /// A `for_each` over the run input's `items`, echoing each.
    Map,
    /// A `workflow` node: a child run of [`CHILD`] with its own id.
    Child,
    /// A `for_each` over the items, a child run of [`CHILD`] per item.
    ChildMap,
    /// A `wait` for [`EVENT`] keyed `RUN_ID:nI`; the event's data is
    /// `{"id": "nI"}`.
    Wait,
}

/// The event wait nodes wait for.
const EVENT: &str = "chaos.go";
/// The every-second cron workflow.
const CRON: &str = "chaos-cron";

/// The child workflow: echoes `id` and sleeps; its output is `{"id": ID}`.
const CHILD: &str = "chaos-child";

fn child_definition() -> Value {
    json!({"name": CHILD, "output": {"id": "{{a.output.id}}"}, "nodes": [
        {"id": "a", "agent": "echo", "input": {"id": "{{run.input.id}}"}},
        {"id": "b", "agent": "sleep", "depends_on": ["a"], "input": {"ms": 100}},
    ]})
}

/// `when` expressions over the run input (whose `items` has [`ITEMS`]).
const WHEN_TRUE: &str = "size(input.items) > 3";
const WHEN_FALSE: &str = "size(input.items) > 100";

/// The items every chaos run maps over.
const ITEMS: usize = 6;

struct Node {
    kind: Kind,
    parents: Vec<usize>,
    rule: &'static str,
    when: Option<bool>,
}

/// A random DAG: node i depends on up to three earlier nodes.
fn random_dag(rng: &mut Rng) -> Vec<Node> {
    let n = 1 + rng.below(MAX_NODES);
    (0..n)
        .map(|i| {
            let mut parents: Vec<usize> = (0..rng.below(4).min(i)).map(|_| rng.below(i)).collect();
            parents.sort_unstable();
            parents.dedup();
            let kind = match rng.below(100) {
                0..=2 => Kind::Fail,
                3..=21 => Kind::Sleep(100 + rng.below(400) as u64),
                22..=31 => Kind::Map,
                32..=36 => Kind::Child,
                37..=39 => Kind::ChildMap,
                40..=43 => Kind::Wait,
                _ => Kind::Echo,
            };
            let rule = match (parents.is_empty(), rng.below(20)) {
                (true, _) | (false, 4..) => "all_succeeded",
                (false, 0) => "none_failed",
                (false, 1) => "all_done",
                (false, _) => "one_failed",
            };
            let when = match rng.below(20) {
                0 => Some(true),
                1 => Some(false),
                _ => None,
            };
            Node {
                kind,
                parents,
                rule,
                when,
            }
        })
        .collect()
}

fn definition(name: &str, dag: &[Node]) -> Value {
    let nodes: Vec<Value> = dag
        .iter()
        .enumerate()
        .map(|(i, node)| {
            let deps: Vec<String> = node.parents.iter().map(|p| format!("n{p}")).collect();
            let from: Vec<String> = node
                .parents
                .iter()
                .map(|&p| match dag[p].kind {
                    Kind::Sleep(_) => format!("{{{{n{p}.output.slept_ms}}}}"),
                    Kind::Map => format!("{{{{n{p}.output.{}.v}}}}", ITEMS - 1),
                    Kind::ChildMap => format!("{{{{n{p}.output.{}.id}}}}", ITEMS - 1),
                    _ => format!("{{{{n{p}.output.id}}}}"),
                })
                .collect();
            let (agent, input) = match node.kind {
                Kind::Echo => ("echo", json!({"id": format!("n{i}"), "from": from})),
                Kind::Sleep(ms) => ("sleep", json!({"ms": ms})),
                Kind::Fail => ("fail", json!({"exit_code": 78})),
                Kind::Map => ("echo", json!({"i": "{{index}}", "v": "{{item}}"})),
                Kind::Child => ("", json!({"id": format!("n{i}")})),
                Kind::ChildMap => ("", json!({"id": "{{item}}"})),
                Kind::Wait => ("", json!({})),
            };
            let mut node = json!({"id": format!("n{i}"), "depends_on": deps, "input": input,
                                  "trigger_rule": node.rule});
            if dag[i].kind == Kind::Wait {
                node["wait"] = json!({"event": EVENT, "key": format!("{{{{run.id}}}}:n{i}")});
                if let Some(o) = node.as_object_mut() {
                    o.remove("input");
                }
            } else if agent.is_empty() {
                node["workflow"] = json!(CHILD);
            } else {
                node["agent"] = json!(agent);
            }
            if matches!(dag[i].kind, Kind::Map | Kind::ChildMap) {
                node["for_each"] = json!("{{run.input.items}}");
            }
            match dag[i].when {
                Some(true) => node["when"] = json!(WHEN_TRUE),
                Some(false) => node["when"] = json!(WHEN_FALSE),
                None => {}
            }
            node
        })
        .collect();
    json!({"name": name, "nodes": nodes})
}

/// Per node: the status it must end in, its output when it succeeds, and
/// its skip reason when it is skipped.
type Expected = Vec<(&'static str, Option<Value>, Option<&'static str>)>;

/// Why a node whose parents ended as `parents` is skipped by its trigger
/// rule (SPEC 2.1), if it is: an oracle independent of `decide.rs`.
fn rule_skips(rule: &str, parents: &[&str]) -> Option<&'static str> {
    let failed = parents.contains(&"failed");
    let skipped = parents.contains(&"skipped");
    match rule {
        "all_succeeded" if failed => Some("upstream_failed"),
        "all_succeeded" if skipped => Some("upstream_skipped"),
        "none_failed" if failed => Some("upstream_failed"),
        "one_failed" if !failed && skipped => Some("upstream_skipped"),
        "one_failed" if !failed => Some("condition_false"),
        _ => None,
    }
}

/// What each node must end as, and the output of those that succeed.
fn expected(dag: &[Node]) -> Expected {
    let mut out: Expected = Vec::with_capacity(dag.len());
    for (i, node) in dag.iter().enumerate() {
        let parents: Vec<&str> = node.parents.iter().map(|&p| out[p].0).collect();
        if let Some(reason) = rule_skips(node.rule, &parents) {
            out.push(("skipped", None, Some(reason)));
            continue;
        }
        if node.when == Some(false) {
            out.push(("skipped", None, Some("condition_false")));
            continue;
        }
        let result = match node.kind {
            Kind::Fail => ("failed", None),
            Kind::Sleep(ms) => ("succeeded", Some(json!({"slept_ms": ms}))),
            Kind::Map => (
                "succeeded",
                Some(Value::Array(
                    (0..ITEMS).map(|i| json!({"i": i, "v": i})).collect(),
                )),
            ),
            Kind::Child | Kind::Wait => ("succeeded", Some(json!({"id": format!("n{i}")}))),
            Kind::ChildMap => (
                "succeeded",
                Some(Value::Array(
                    (0..ITEMS).map(|i| json!({ "id": i })).collect(),
                )),
            ),
            Kind::Echo => {
                let from: Vec<Value> = node
                    .parents
                    .iter()
                    .map(|&p| match (out[p].0, dag[p].kind) {
                        // A parent that did not succeed reads as null.
                        ("succeeded", Kind::Sleep(ms)) => json!(ms),
                        ("succeeded", Kind::Map | Kind::ChildMap) => json!(ITEMS - 1),
                        ("succeeded", _) => json!(format!("n{p}")),
                        _ => Value::Null,
                    })
                    .collect();
                (
                    "succeeded",
                    Some(json!({"id": format!("n{i}"), "from": from})),
                )
            }
        };
        out.push((result.0, result.1, None));
    }
    out
}

struct Cluster<'a> {
    env: &'a Env,
    workers: Vec<Proc>,
    coordinators: Vec<Proc>,
    faults: Vec<String>,
}

impl Cluster<'_> {
    async fn restart_worker(&mut self, i: usize, generation: usize) {
        self.workers[i].kill();
        self.faults.push(format!("SIGKILL worker {i}"));
        tokio::time::sleep(Duration::from_millis(300)).await;
        self.workers[i] = worker(self.env, &format!("chaos-w{i}-{generation}")).await;
    }
}

async fn worker(env: &Env, id: &str) -> Proc {
    env.worker(
        id,
        &[
            ("GANTRY_LEASE_MS", LEASE_MS),
            ("GANTRY_CONCURRENCY", "8"),
            ("GANTRY_DOCKER", "off"),
            ("GANTRY_GRACE_S", "2"),
        ],
    )
    .await
}

/// Send every wait's event (`RUN_ID:nI` for each wait node `nI` of each
/// run) under its own id, until each is answered 2xx (Postgres may be
/// restarting). Returns how many waits the answers say they completed.
async fn send_wait_events(env: &Env, waits: &[(String, usize)]) -> u64 {
    let mut matched = 0;
    for (run, i) in waits {
        let key = format!("{run}:n{i}");
        let event = json!({"name": EVENT, "key": key, "id": key, "data": {"id": format!("n{i}")}});
        let answer = common::eventually(
            &format!("event {key} to be stored"),
            Duration::from_secs(60),
            || async {
                let (status, body) = env.post("/v1/events", &event).await;
                if status == 200 || status == 202 {
                    Ok(body)
                } else {
                    Err(body)
                }
            },
        )
        .await;
        matched += answer["waits_matched"].as_u64().unwrap_or(0);
    }
    matched
}

async fn coordinator(env: &Env, name: &str) -> Proc {
    env.coordinator(name, &[("GANTRY_LEASE_MS", LEASE_MS)])
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_every_run_ends_right_and_nothing_is_left_behind() {
    let started = Instant::now();
    let mut env = Env::new().await;
    let _api = env.serve("api", &[("GANTRY_MAX_QUEUE_DEPTH", "0")]).await;
    env.builtin_agents().await;
    env.workflow(child_definition()).await;
    env.workflow(json!({"name": CRON, "triggers": [{"cron": "* * * * * *"}],
                        "nodes": [{"id": "a", "agent": "echo", "input": {"tick": true}}]}))
        .await;
    let mut rng = Rng(SEED);
    let mut runs: Vec<(String, Expected, usize)> = Vec::new();
    // (run, node) of every wait node.
    let mut waits: Vec<(String, usize)> = Vec::new();
    let mut wait_nodes: Vec<Vec<usize>> = Vec::new();
    let mut total_nodes = 0;
    let mut defs = Vec::new();
    for w in 0..WORKFLOWS {
        let dag = random_dag(&mut rng);
        total_nodes += dag.len();
        let name = format!("chaos-{w}");
        env.workflow(definition(&name, &dag)).await;
        wait_nodes.push(
            dag.iter()
                .enumerate()
                .filter(|(_, n)| n.kind == Kind::Wait)
                .map(|(i, _)| i)
                .collect(),
        );
        let expect = expected(&dag);
        // Child runs the DAG starts: one per node that ran, one per item.
        let children: usize = dag
            .iter()
            .zip(&expect)
            .map(|(n, (status, _, _))| match (n.kind, *status) {
                (Kind::Child, "succeeded") => 1,
                (Kind::ChildMap, "succeeded") => ITEMS,
                _ => 0,
            })
            .sum();
        defs.push((name, expect, children));
    }
    let mut cluster = Cluster {
        env: &env,
        workers: Vec::new(),
        coordinators: Vec::new(),
        faults: Vec::new(),
    };
    for i in 0..3 {
        cluster
            .workers
            .push(worker(&env, &format!("chaos-w{i}-0")).await);
    }
    for i in 0..2 {
        cluster
            .coordinators
            .push(coordinator(&env, &format!("chaos-c{i}-0")).await);
    }
    for ((name, expect, children), nodes) in defs.into_iter().zip(&wait_nodes) {
        let items: Vec<usize> = (0..ITEMS).collect();
        let id = env.start(&name, json!({ "items": items })).await;
        waits.extend(nodes.iter().map(|&i| (id.clone(), i)));
        runs.push((id, expect, children));
    }

    // The faults, spread over the first seconds of the runs.
    let pause = || tokio::time::sleep(Duration::from_millis(1500));
    pause().await;
    cluster.restart_worker(0, 1).await;
    pause().await;
    let flushed = env.flush_redis().await;
    cluster
        .faults
        .push(format!("Redis lost all {flushed} keys"));
    // Every wait's event, while the faults go on (some nodes wait already,
    // others will), and each again after Postgres restarts.
    let first_matched = send_wait_events(&env, &waits).await;
    pause().await;
    cluster.coordinators[0].kill();
    cluster
        .faults
        .push("SIGKILL coordinator 0, restarted".into());
    cluster.coordinators[0] = coordinator(&env, "chaos-c0-1").await;
    pause().await;
    cluster.restart_worker(1, 1).await;
    pause().await;
    common::restart_postgres();
    cluster.faults.push("Postgres restarted".into());
    let again_matched = send_wait_events(&env, &waits).await;
    pause().await;
    cluster.restart_worker(2, 1).await;
    pause().await;
    cluster.restart_worker(0, 2).await;

    // Every run terminal, every node as its DAG says.
    let deadline = Instant::now() + FINISH_TIMEOUT;
    let mut statuses: HashMap<String, usize> = HashMap::new();
    for (id, expect, _) in &runs {
        let left = deadline.saturating_duration_since(Instant::now());
        let run = env.wait_run(id, left.max(Duration::from_secs(1))).await;
        let any_failed = expect.iter().any(|(s, _, _)| *s == "failed");
        let want = if any_failed { "failed" } else { "succeeded" };
        assert_eq!(run["status"], want, "{run:#}");
        *statuses.entry(want.to_owned()).or_default() += 1;
        for (i, (status, output, reason)) in expect.iter().enumerate() {
            let node = common::node_of(&run, &format!("n{i}"));
            assert_eq!(node["status"], *status, "n{i} of {id}: {run:#}");
            assert_eq!(node["skip_reason"], json!(reason), "n{i} of {id}: {run:#}");
            if let Some(output) = output {
                assert_eq!(&node["output"], output, "n{i} of {id}: {run:#}");
            }
        }
    }

    // The cron workflow stops ticking; its runs then end like the others.
    let (status, body) = env
        .post(&format!("/v1/workflows/{CRON}/pause"), &json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    // A scheduler pass that read the workflow as active just before the
    // pause may still start one tick; passes are at most a second apart.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut db = sqlx::PgConnection::connect(&env.db_url)
        .await
        .expect("connect to the test database");
    let cron_runs: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT id::text, idempotency_key FROM runs WHERE workflow_name = $1")
            .bind(CRON)
            .fetch_all(&mut db)
            .await
            .expect("cron runs");
    let mut ticks: Vec<String> = cron_runs
        .iter()
        .map(|(_, k)| k.clone().expect("a tick's run has its key"))
        .collect();
    ticks.sort();
    let all = ticks.len();
    ticks.dedup();
    assert_eq!(ticks.len(), all, "a tick with two runs");
    assert!(
        all >= 5,
        "the cron workflow ticked through the faults: {all} runs"
    );
    for (id, _) in &cron_runs {
        let run = env.wait_run(id, Duration::from_secs(60)).await;
        assert_eq!(run["status"], "succeeded", "{run:#}");
    }
    // Each wait completed once: a repeat gets the first answer (what the
    // event matched when it was stored), never a new match, and every wait
    // node succeeded above with its event's data.
    assert!(
        first_matched <= waits.len() as u64,
        "{first_matched} matches for {} waits",
        waits.len()
    );
    assert_eq!(
        again_matched, first_matched,
        "a repeat answers as the first time, with no new match"
    );
    let (doubled,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM (SELECT 1 FROM waits WHERE state = 'matched'
                               GROUP BY run_id, idx HAVING count(*) > 1) d",
    )
    .fetch_one(&mut db)
    .await
    .expect("count waits matched twice");
    assert_eq!(doubled, 0, "a wait matched twice");

    // At most one successful attempt per node, whatever was retried.
    let (doubles,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM (SELECT 1 FROM attempts WHERE status = 'succeeded'
                               GROUP BY run_id, idx HAVING count(*) > 1) d",
    )
    .fetch_one(&mut db)
    .await
    .expect("count double successes");
    assert_eq!(doubles, 0, "nodes with more than one successful attempt");
    // Child runs ended with their parents: none is left running, and a
    // child run's count is what the DAGs imply (one per slot, the unique
    // index of migration 0010, so none was started twice).
    let (running,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM runs WHERE status NOT IN ('succeeded', 'failed')")
            .fetch_one(&mut db)
            .await
            .expect("count unfinished runs");
    assert_eq!(running, 0, "runs left unfinished");
    let want_children: usize = runs.iter().map(|(_, _, children)| children).sum();
    let (children,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM runs WHERE parent_run_id IS NOT NULL")
            .fetch_one(&mut db)
            .await
            .expect("count child runs");
    assert_eq!(children as usize, want_children, "child runs");
    let (attempts,): (i64,) = sqlx::query_as("SELECT count(*) FROM attempts")
        .fetch_one(&mut db)
        .await
        .expect("count attempts");

    // Nothing left in any queue once leases of killed workers have run out.
    let leftovers = common::eventually("every queue to drain", Duration::from_secs(30), || async {
        let (status, body) = env.get("/v1/queues").await;
        let busy: Vec<&Value> = body["queues"]
            .as_array()
            .map(|qs| {
                qs.iter()
                    .filter(|q| {
                        ["ready", "delayed", "in_flight", "dead"]
                            .iter()
                            .any(|k| q[*k].as_u64() != Some(0))
                    })
                    .collect()
            })
            .unwrap_or_default();
        if status == 200 && busy.is_empty() {
            Ok(body.clone())
        } else {
            Err(body.clone())
        }
    })
    .await;
    println!(
        "chaos: {} workflows, {total_nodes} nodes, {want_children} child runs, {} waits, {all} ticks, \
         {attempts} attempts, runs {statuses:?}, faults {:?}, {:.1} s; queues at the end: {leftovers}",
        runs.len(),
        waits.len(),
        cluster.faults,
        started.elapsed().as_secs_f64()
    );
}
