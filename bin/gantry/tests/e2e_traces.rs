//! OTLP traces end to end: an api, a coordinator and a worker, each its own
//! process, export spans to a small OTLP/HTTP receiver inside this test. One
//! run yields one trace: every span of it shares the trace id of its
//! `workflow.run` span, spans come from all three processes, and each
//! `agent.execute` descends from `workflow.run` (SPEC section 6).

mod common;

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use common::{node_of, Env};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use prost::Message;
use serde_json::json;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One received span, flattened.
#[derive(Debug, Clone)]
struct Got {
    service: String,
    name: String,
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
    parent_id: Vec<u8>,
    attrs: HashMap<String, String>,
}

type Spans = Arc<Mutex<Vec<Got>>>;

fn text(kv: &[KeyValue]) -> HashMap<String, String> {
    kv.iter()
        .filter_map(|kv| {
            let v = match kv.value.as_ref()?.value.as_ref()? {
                Any::StringValue(s) => s.clone(),
                Any::IntValue(i) => i.to_string(),
                Any::BoolValue(b) => b.to_string(),
                Any::DoubleValue(d) => d.to_string(),
                _ => return None,
            };
            Some((kv.key.clone(), v))
        })
        .collect()
}

async fn receive(State(spans): State<Spans>, body: Bytes) -> &'static str {
    let req = ExportTraceServiceRequest::decode(body).expect("an OTLP trace export");
    let mut got = spans.lock().unwrap();
    for rs in req.resource_spans {
        let res = text(rs.resource.map(|r| r.attributes).as_deref().unwrap_or(&[]));
        let service = res.get("service.name").cloned().unwrap_or_default();
        for ss in rs.scope_spans {
            for s in ss.spans {
                got.push(Got {
                    service: service.clone(),
                    name: s.name,
                    trace_id: s.trace_id,
                    span_id: s.span_id,
                    parent_id: s.parent_span_id,
                    attrs: text(&s.attributes),
                });
            }
        }
    }
    ""
}

/// An OTLP/HTTP receiver on a free loopback port; returns its base URL.
async fn receiver(spans: Spans) -> String {
    let app = axum::Router::new()
        .route("/v1/traces", post(receive))
        .with_state(spans);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

fn borrow<'a>(v: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    v.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// Whether `span` has `ancestor` up its parent chain among `all`.
fn descends(span: &Got, ancestor: &Got, all: &[Got]) -> bool {
    let mut parent = span.parent_id.clone();
    for _ in 0..64 {
        if parent.is_empty() {
            return false;
        }
        if parent == ancestor.span_id {
            return true;
        }
        match all.iter().find(|s| s.span_id == parent) {
            Some(p) => parent = p.parent_id.clone(),
            None => return false,
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_per_run_across_api_coordinator_and_worker() {
    let spans: Spans = Arc::default();
    let endpoint = receiver(spans.clone()).await;
    let otel = |service: &'static str| {
        [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.clone()),
            ("OTEL_SERVICE_NAME", service.to_owned()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()),
        ]
    };

    let mut env = Env::new().await;
    let api_vars = otel("gantry-api");
    let _api = env.serve("api", &borrow(&api_vars)).await;
    let coord_vars = otel("gantry-coordinator");
    let _coord = env.coordinator("coordinator", &borrow(&coord_vars)).await;
    // Without inline advance the coordinator dispatches `second`, so the
    // trace crosses all three processes.
    let mut worker_vars = otel("gantry-worker").to_vec();
    worker_vars.push(("GANTRY_INLINE_ADVANCE", "false".to_owned()));
    let _worker = env.worker("w1", &borrow(&worker_vars)).await;
    env.builtin_agents().await;
    env.workflow(json!({"name": "traced", "nodes": [
        {"id": "first", "agent": "echo", "input": {"n": 1}},
        {"id": "second", "agent": "noop", "depends_on": ["first"]}
    ]}))
    .await;
    let id = env.start("traced", json!({})).await;
    let run = env.wait_run(&id, Duration::from_secs(30)).await;
    assert_eq!(run["status"], "succeeded", "{run:#}");
    assert_eq!(node_of(&run, "second")["status"], "succeeded", "{run:#}");

    // Spans are exported in batches every 100 ms: wait (bounded) for all.
    let wanted = ["workflow.run", "node.dispatch", "agent.execute"];
    let mut mine = Vec::new();
    for _ in 0..100 {
        mine = spans
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.attrs.get("run.id") == Some(&id))
            .cloned()
            .collect::<Vec<_>>();
        let names: BTreeSet<&str> = mine.iter().map(|s| s.name.as_str()).collect();
        let executes = mine.iter().filter(|s| s.name == "agent.execute").count();
        let dispatches = mine.iter().filter(|s| s.name == "node.dispatch").count();
        if wanted.iter().all(|w| names.contains(w)) && executes == 2 && dispatches == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let all = spans.lock().unwrap().clone();
    let root = mine
        .iter()
        .find(|s| s.name == "workflow.run")
        .unwrap_or_else(|| panic!("no workflow.run span for run {id}; got {all:#?}"));
    assert_eq!(root.service, "gantry-api");
    assert_eq!(
        root.attrs.get("workflow.name").map(String::as_str),
        Some("traced")
    );
    for s in &mine {
        assert_eq!(s.trace_id, root.trace_id, "span {s:?} is in another trace");
    }
    let in_trace: Vec<Got> = all
        .iter()
        .filter(|s| s.trace_id == root.trace_id)
        .cloned()
        .collect();
    let services: BTreeSet<&str> = in_trace.iter().map(|s| s.service.as_str()).collect();
    for svc in ["gantry-api", "gantry-coordinator", "gantry-worker"] {
        assert!(services.contains(svc), "no span from {svc}: {services:?}");
    }
    let executes: Vec<&Got> = mine.iter().filter(|s| s.name == "agent.execute").collect();
    assert_eq!(executes.len(), 2, "one agent.execute per node: {mine:#?}");
    for e in &executes {
        assert_eq!(e.service, "gantry-worker");
        assert!(
            descends(e, root, &in_trace),
            "agent.execute {e:?} does not descend from workflow.run"
        );
        for key in [
            "workflow.name",
            "run.id",
            "node.id",
            "agent.name",
            "attempt",
        ] {
            assert!(
                e.attrs.contains_key(key),
                "agent.execute lacks {key}: {e:?}"
            );
        }
        assert_eq!(e.attrs["attempt"], "1");
    }
    let nodes: BTreeSet<&str> = executes
        .iter()
        .map(|e| e.attrs["node.id"].as_str())
        .collect();
    assert_eq!(nodes, BTreeSet::from(["first", "second"]));
    let dispatchers: BTreeSet<(&str, &str)> = mine
        .iter()
        .filter(|s| s.name == "node.dispatch")
        .map(|s| (s.attrs["node.id"].as_str(), s.service.as_str()))
        .collect();
    assert_eq!(
        dispatchers,
        BTreeSet::from([("first", "gantry-api"), ("second", "gantry-coordinator")]),
        "who dispatched each node"
    );
}
