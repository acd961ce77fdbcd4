//! Validation tests: each problem code, several problems at once, big DAGs.

use gantry_dag::{AgentDef, ValidatedDag, WorkflowDef, DEFAULT_MAX_NODES};
use serde_json::json;
use std::time::Instant;

fn agents(name: &str) -> bool {
    matches!(name, "a1" | "a2")
}

fn check(def: serde_json::Value) -> Result<ValidatedDag, Vec<gantry_dag::Problem>> {
    let def: WorkflowDef = serde_json::from_value(def).unwrap();
    ValidatedDag::new(def, &agents, DEFAULT_MAX_NODES)
}

/// The (field, code) pairs of the problems, in order.
fn codes(def: serde_json::Value) -> Vec<(String, &'static str)> {
    check(def)
        .unwrap_err()
        .into_iter()
        .map(|p| (p.field, p.code))
        .collect()
}

fn pair(field: &str, code: &'static str) -> (String, &'static str) {
    (field.to_owned(), code)
}

#[test]
fn valid_diamond_builds_graph() {
    let dag = check(json!({"name": "wf", "nodes": [
        {"id": "a", "agent": "a1", "input": {"x": "{{run.input.repo}}"}},
        {"id": "b", "agent": "a1", "depends_on": ["a", "a"], "input": {"f": "{{a.output.x}}"}},
        {"id": "c", "agent": "a2", "depends_on": ["a"]},
        {"id": "d", "agent": "a2", "depends_on": ["b", "c"],
         "input": {"m": "total {{a.output.n}} and {{ b.output }}"}}
    ]}))
    .unwrap();
    assert_eq!(dag.len(), 4);
    assert_eq!(
        dag.parents(1),
        &[0],
        "duplicate depends_on entries are deduplicated"
    );
    assert_eq!(dag.children(0), &[1, 2]);
    assert_eq!(dag.roots().collect::<Vec<_>>(), vec![0]);
    assert_eq!(dag.topo(), &[0, 1, 2, 3]);
    let mut desc = dag.descendants(0);
    desc.sort();
    assert_eq!(desc, vec![1, 2, 3]);
    assert_eq!(dag.idx("d"), Some(3));
    assert_eq!(dag.refs(3).len(), 2);
}

#[test]
fn bad_names() {
    let got = codes(json!({"name": "Bad Name", "nodes": [
        {"id": "ok", "agent": "a1"}, {"id": "-x", "agent": "a1"}
    ]}));
    assert_eq!(
        got,
        vec![pair("name", "bad_name"), pair("nodes[1].id", "bad_name")]
    );
}

#[test]
fn empty_workflow() {
    assert_eq!(
        codes(json!({"name": "wf", "nodes": []})),
        vec![pair("nodes", "empty_workflow")]
    );
}

#[test]
fn too_many_nodes() {
    let nodes: Vec<_> = (0..11)
        .map(|i| json!({"id": format!("n{i}"), "agent": "a1"}))
        .collect();
    let def: WorkflowDef = serde_json::from_value(json!({"name": "wf", "nodes": nodes})).unwrap();
    let problems = ValidatedDag::new(def, &agents, 10).unwrap_err();
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].code, "too_many_nodes");
    assert!(problems[0].message.contains("11") && problems[0].message.contains("10"));
}

#[test]
fn duplicate_id() {
    let problems = check(json!({"name": "wf", "nodes": [
        {"id": "a", "agent": "a1"}, {"id": "b", "agent": "a1"}, {"id": "a", "agent": "a1"}
    ]}))
    .unwrap_err();
    assert_eq!(problems.len(), 1);
    assert_eq!(
        (problems[0].field.as_str(), problems[0].code),
        ("nodes[2].id", "duplicate_id")
    );
    assert!(problems[0].message.contains("\"a\""));
}

#[test]
fn unknown_dependency_and_self_loop() {
    let problems = check(json!({"name": "wf", "nodes": [
        {"id": "a", "agent": "a1", "depends_on": ["ghost"]},
        {"id": "b", "agent": "a1", "depends_on": ["a", "b"]}
    ]}))
    .unwrap_err();
    let got: Vec<_> = problems
        .iter()
        .map(|p| (p.field.as_str(), p.code))
        .collect();
    assert_eq!(
        got,
        vec![
            ("nodes[0].depends_on[0]", "unknown_dependency"),
            ("nodes[1].depends_on[1]", "self_loop")
        ]
    );
    assert!(problems[0].message.contains("ghost"));
    assert!(problems[1].message.contains("\"b\""));
}

#[test]
fn cycles_reported_once_each_with_path() {
    let problems = check(json!({"name": "wf", "nodes": [
        {"id": "a", "agent": "a1", "depends_on": ["c"]},
        {"id": "b", "agent": "a1", "depends_on": ["a"]},
        {"id": "c", "agent": "a1", "depends_on": ["b"]},
        {"id": "x", "agent": "a1", "depends_on": ["y"]},
        {"id": "y", "agent": "a1", "depends_on": ["x"]},
        {"id": "z", "agent": "a1", "depends_on": ["c"]}
    ]}))
    .unwrap_err();
    let cycles: Vec<_> = problems.iter().filter(|p| p.code == "cycle").collect();
    assert_eq!(cycles.len(), 2, "{problems:?}");
    assert_eq!(cycles[0].message, "cycle a -> b -> c -> a");
    assert_eq!(cycles[0].field, "nodes[0].depends_on");
    assert_eq!(cycles[1].message, "cycle x -> y -> x");
    assert_eq!(problems.len(), 2);
}

#[test]
fn long_cycle_does_not_overflow_the_stack() {
    let n = 5_000;
    let nodes: Vec<_> = (0..n)
        .map(|i| json!({"id": format!("n{i}"), "agent": "a1", "depends_on": [format!("n{}", (i + 1) % n)]}))
        .collect();
    let problems = check(json!({"name": "wf", "nodes": nodes})).unwrap_err();
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].code, "cycle");
    assert!(problems[0]
        .message
        .starts_with("cycle n0 -> n4999 -> n4998"));
    assert!(problems[0].message.ends_with("n1 -> n0"));
}

#[test]
fn unknown_agent() {
    let problems = check(json!({"name": "wf", "nodes": [
        {"id": "a", "agent": "nope"}, {"id": "b", "agent": "a1"}
    ]}))
    .unwrap_err();
    assert_eq!(problems.len(), 1);
    assert_eq!(
        (problems[0].field.as_str(), problems[0].code),
        ("nodes[0].agent", "unknown_agent")
    );
    assert!(problems[0].message.contains("nope"));
}

#[test]
fn bad_template() {
    let problems = check(json!({"name": "wf", "nodes": [
        {"id": "a", "agent": "a1", "input": {"x": {"y": ["ok", "{{run.inptu}}"]}, "z": "{{ run.input"}}
    ]}))
    .unwrap_err();
    let got: Vec<_> = problems
        .iter()
        .map(|p| (p.field.as_str(), p.code))
        .collect();
    assert_eq!(
        got,
        vec![
            ("nodes[0].input.x.y[1]", "bad_template"),
            ("nodes[0].input.z", "bad_template")
        ]
    );
    assert!(problems[0].message.contains("{{run.inptu}}"));
}

#[test]
fn template_not_ancestor() {
    let problems = check(json!({"name": "wf", "nodes": [
        {"id": "a", "agent": "a1"},
        {"id": "b", "agent": "a1"},
        {"id": "c", "agent": "a1", "depends_on": ["a"], "input": {
            "ok": "{{a.output}}", "sibling": "{{b.output.x}}",
            "ghost": "{{ghost.output}}", "me": "{{c.output}}"}},
        {"id": "d", "agent": "a1", "depends_on": ["c"], "input": {"grand": "{{a.output.v}}", "later": "{{e.output}}"}},
        {"id": "e", "agent": "a1", "depends_on": ["d"]}
    ]}))
    .unwrap_err();
    let mut got: Vec<_> = problems
        .iter()
        .map(|p| (p.field.as_str(), p.code))
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("nodes[2].input.ghost", "template_not_ancestor"),
            ("nodes[2].input.me", "template_not_ancestor"),
            ("nodes[2].input.sibling", "template_not_ancestor"),
            ("nodes[3].input.later", "template_not_ancestor"),
        ]
    );
    assert!(problems.iter().any(|p| p.message.contains("ghost")));
}

#[test]
fn several_problems_all_listed() {
    let problems = check(json!({"name": "WF", "nodes": [
        {"id": "a", "agent": "a1", "depends_on": ["b"]},
        {"id": "b", "agent": "missing", "depends_on": ["a"]},
        {"id": "a", "agent": "a1", "depends_on": ["nowhere"], "input": {"t": "{{zzz.output}}", "u": "{{"}},
        {"id": "s", "agent": "a2", "depends_on": ["s"], "retry": {"max_attempts": 0}}
    ]}))
    .unwrap_err();
    let mut got: Vec<_> = problems
        .iter()
        .map(|p| (p.field.as_str(), p.code))
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("name", "bad_name"),
            ("nodes[0].depends_on", "cycle"),
            ("nodes[1].agent", "unknown_agent"),
            ("nodes[2].depends_on[0]", "unknown_dependency"),
            ("nodes[2].id", "duplicate_id"),
            ("nodes[2].input.t", "template_not_ancestor"),
            ("nodes[2].input.u", "bad_template"),
            ("nodes[3].depends_on[0]", "self_loop"),
            ("nodes[3].retry.max_attempts", "bad_value"),
        ]
    );
}

fn big_chain(n: usize) -> serde_json::Value {
    let nodes: Vec<_> = (0..n)
        .map(|i| {
            let deps: Vec<String> = if i == 0 { vec![] } else { vec![format!("n{}", i - 1)] };
            json!({"id": format!("n{i}"), "agent": "a1", "depends_on": deps,
                   "input": {"root": if i == 0 { json!("{{run.input}}") } else { json!("{{n0.output.v}}") },
                             "prev": if i == 0 { json!(1) } else { json!(format!("{{{{n{}.output}}}}", i - 1)) }}})
        })
        .collect();
    json!({"name": "wf", "nodes": nodes})
}

#[test]
fn five_thousand_node_chain_validates_quickly() {
    let def: WorkflowDef = serde_json::from_value(big_chain(5_000)).unwrap();
    let started = Instant::now();
    let dag = ValidatedDag::new(def, &agents, DEFAULT_MAX_NODES).unwrap();
    let took = started.elapsed();
    eprintln!("validated 5,000 nodes in {took:?}");
    assert_eq!(dag.topo().len(), 5_000);
    assert_eq!(dag.topo()[4_999], 4_999);
    // Generous for unoptimized test builds on a shared 2-core machine; the
    // release build takes a few milliseconds.
    assert!(took.as_millis() < 1_000, "validation took {took:?}");
}

#[test]
fn wide_fanout_validates() {
    let mut nodes = vec![json!({"id": "root", "agent": "a1"})];
    let mut leaves = Vec::new();
    for i in 0..4_998 {
        nodes.push(json!({"id": format!("l{i}"), "agent": "a2", "depends_on": ["root"], "input": "{{root.output}}"}));
        leaves.push(format!("l{i}"));
    }
    nodes.push(json!({"id": "join", "agent": "a1", "depends_on": leaves, "input": {"first": "{{l0.output}}", "root": "{{root.output}}"}}));
    let dag = check(json!({"name": "wf", "nodes": nodes})).unwrap();
    assert_eq!(dag.parents(4_999).len(), 4_998);
    assert_eq!(dag.topo()[0], 0);
    assert_eq!(dag.topo()[4_999], 4_999);
}

fn agent(v: serde_json::Value) -> AgentDef {
    serde_json::from_value(v).unwrap()
}

#[test]
fn good_agents_have_no_problems() {
    let docker = agent(
        json!({"name": "scanner", "runtime": "docker", "image": "gantry/x:1", "secrets": ["SLACK_WEBHOOK_URL"], "output_schema": {}}),
    );
    let process = agent(
        json!({"name": "p", "runtime": "process", "command": ["./bin"], "network": "bridge"}),
    );
    let builtin = agent(json!({"name": "echo", "runtime": "builtin", "builtin": "echo"}));
    for a in [docker, process, builtin] {
        assert_eq!(a.problems(), vec![], "{a:?}");
    }
}

#[test]
fn bad_agent_lists_every_problem() {
    let a = agent(
        json!({"name": "Bad", "runtime": "docker", "queue": "Q!", "timeout_s": 0,
        "retry": {"max_attempts": 0, "multiplier": 0.5},
        "limits": {"memory_mb": 0, "cpus": 0.0, "pids": 0}, "network": "host",
        "secrets": ["ok_1", "1bad"], "output_schema": "nope"}),
    );
    let got: Vec<_> = a
        .problems()
        .into_iter()
        .map(|p| (p.field, p.code))
        .collect();
    let want = [
        ("name", "bad_name"),
        ("queue", "bad_name"),
        ("image", "missing_field"),
        ("timeout_s", "bad_value"),
        ("retry.max_attempts", "bad_value"),
        ("retry.multiplier", "bad_value"),
        ("limits.memory_mb", "bad_value"),
        ("limits.cpus", "bad_value"),
        ("limits.pids", "bad_value"),
        ("network", "bad_value"),
        ("secrets[1]", "bad_name"),
        ("output_schema", "bad_value"),
    ];
    assert_eq!(got, want.map(|(f, c)| (f.to_owned(), c)));
}

#[test]
fn runtime_fields_are_required() {
    let p = agent(json!({"name": "p", "runtime": "process", "command": []}));
    assert_eq!(p.problems()[0].field, "command");
    let b = agent(json!({"name": "b", "runtime": "builtin"}));
    assert_eq!(b.problems()[0].code, "missing_field");
    let b = agent(json!({"name": "b", "runtime": "builtin", "builtin": "rm"}));
    assert_eq!(
        (b.problems()[0].field.as_str(), b.problems()[0].code),
        ("builtin", "bad_value")
    );
}

#[test]
fn a_node_has_exactly_one_kind_and_its_fields() {
    let got = codes(json!({"name": "wf", "nodes": [
        {"id": "none"},
        {"id": "both", "agent": "a1", "workflow": "child"},
        {"id": "bad-name", "workflow": "Child!"},
        {"id": "zero", "workflow": "child", "version": 0},
        {"id": "stray", "agent": "a1", "version": 2},
        {"id": "waits", "wait": {"event": "ci.finished"}, "for_each": "{{run.input.x}}"}
    ]}));
    for want in [
        pair("nodes[0]", "missing_field"),
        pair("nodes[1]", "bad_value"),
        pair("nodes[2].workflow", "bad_name"),
        pair("nodes[3].version", "bad_value"),
        pair("nodes[4].version", "bad_value"),
        pair("nodes[5].for_each", "bad_for_each"),
    ] {
        assert!(got.contains(&want), "{want:?} missing from {got:?}");
    }
}

#[test]
fn a_workflow_node_needs_no_agent_and_its_plan_no_queue() {
    let dag = check(json!({"name": "wf", "nodes": [
        {"id": "a", "agent": "a1"},
        {"id": "kid", "workflow": "child", "version": 3, "depends_on": ["a"],
         "input": {"x": "{{a.output.y}}"}}
    ]}))
    .unwrap();
    let kid = dag.idx("kid").unwrap();
    assert_eq!(
        dag.node(kid).kind(),
        gantry_dag::NodeKind::Workflow {
            name: "child",
            version: Some(3)
        }
    );
    let a1: AgentDef = serde_json::from_value(
        json!({"name": "a1", "runtime": "builtin", "builtin": "noop", "queue": "q"}),
    )
    .unwrap();
    let plan = gantry_dag::Plan::resolve(&dag, &|n| (n == "a1").then(|| a1.clone())).unwrap();
    assert_eq!(plan.node(kid).queue, "");
    assert_eq!(plan.node(kid).retry.max_attempts, 1);
    assert_eq!(plan.node(dag.idx("a").unwrap()).queue, "q");
}
