//! Trigger rules, `when` and skip reasons in the pure state machine (SPEC
//! section 2.1), and a property: the partial view (`RunState::view` plus
//! `RunState::facts_view`) always decides exactly what the full state does.

use gantry_dag::{
    advance, Action, Event, Fact, NodeFailure, NodeIdx, NodeStatus, Outcome, Plan, RunState,
    RunStatus, SkipReason, Transition, ValidatedDag, WorkflowDef, DEFAULT_MAX_NODES,
};
use proptest::prelude::*;
use serde_json::{json, Value};

fn build(nodes: Value) -> (ValidatedDag, Plan) {
    let def: WorkflowDef = serde_json::from_value(json!({"name": "wf", "nodes": nodes})).unwrap();
    let dag = ValidatedDag::new(def, &|a| a == "auto", DEFAULT_MAX_NODES).unwrap();
    let agent = serde_json::from_value(json!({
        "name": "auto", "runtime": "builtin", "builtin": "noop",
        "retry": {"max_attempts": 1}
    }))
    .unwrap();
    let plan = Plan::resolve(&dag, &|_| Some(gantry_dag::AgentDef::clone(&agent))).unwrap();
    (dag, plan)
}

/// One run driven by hand: claims and completions as a worker would.
struct Run {
    dag: ValidatedDag,
    plan: Plan,
    state: RunState,
    /// What the store holds of finished attempts: output and error.
    results: std::collections::BTreeMap<NodeIdx, (Value, Option<String>)>,
    log: Vec<Transition>,
}

impl Run {
    fn start(nodes: Value, input: Value) -> Self {
        let (dag, plan) = build(nodes);
        let (mut state, _) = RunState::start(&dag, &plan);
        state.facts.input = input;
        state.facts.run_id = "run-1".into();
        Self {
            dag,
            plan,
            state,
            results: Default::default(),
            log: Vec::new(),
        }
    }

    /// The facts the store would load for `nodes`: each row's status, and
    /// the output and error of its finished attempt.
    fn load_facts(&self, statuses: &RunState, nodes: &[NodeIdx]) -> gantry_dag::Facts {
        let nodes = nodes
            .iter()
            .map(|&i| {
                let (output, error) = self.results.get(&i).cloned().unwrap_or((Value::Null, None));
                let status = statuses.nodes[&i].status;
                (
                    i,
                    Fact {
                        status,
                        output,
                        error,
                    },
                )
            })
            .collect();
        gantry_dag::Facts {
            run_id: self.state.facts.run_id.clone(),
            input: self.state.facts.input.clone(),
            nodes,
        }
    }

    fn idx(&self, id: &str) -> NodeIdx {
        self.dag.idx(id).unwrap()
    }

    fn status(&self, id: &str) -> NodeStatus {
        self.state.nodes[&self.idx(id)].status
    }

    fn skip_reason(&self, id: &str) -> Option<SkipReason> {
        self.state.nodes[&self.idx(id)].skip_reason
    }

    /// Claim `id` and finish it with `output` (Ok) or a permanent failure.
    fn finish(&mut self, id: &str, result: Result<Value, &str>) -> Transition {
        let node = self.idx(id);
        let ns = self.state.nodes.get_mut(&node).unwrap();
        assert_eq!(ns.status, NodeStatus::Queued, "{id} is not queued");
        ns.status = NodeStatus::Running;
        ns.attempt += 1;
        ns.tries += 1;
        let attempt = ns.attempt;
        let outcome = match result {
            Ok(output) => {
                self.results.insert(node, (output, None));
                Outcome::Succeeded
            }
            Err(e) => {
                self.results.insert(node, (Value::Null, Some(e.to_owned())));
                Outcome::Failed { retryable: false }
            }
        };
        let all: Vec<NodeIdx> = self.state.nodes.keys().copied().collect();
        self.state.facts = self.load_facts(&self.state, &all);
        let event = Event::Finished {
            node,
            attempt,
            outcome,
        };
        let t = advance(&self.dag, &self.plan, &mut self.state, event, 0.5);
        self.log.push(t.clone());
        t
    }
}

#[test]
fn when_false_skips_and_none_failed_joins_after_the_branch() {
    let mut run = Run::start(
        json!([
            {"id": "scan", "agent": "auto"},
            {"id": "fix", "agent": "auto", "depends_on": ["scan"],
             "when": "nodes.scan.output.summary.total > 0"},
            {"id": "after-fix", "agent": "auto", "depends_on": ["fix"]},
            {"id": "ci", "agent": "auto", "depends_on": ["fix"], "trigger_rule": "none_failed"}
        ]),
        json!({}),
    );
    run.finish("scan", Ok(json!({"summary": {"total": 0}})));
    assert_eq!(run.status("fix"), NodeStatus::Skipped);
    assert_eq!(run.skip_reason("fix"), Some(SkipReason::ConditionFalse));
    assert_eq!(run.status("after-fix"), NodeStatus::Skipped);
    assert_eq!(
        run.skip_reason("after-fix"),
        Some(SkipReason::UpstreamSkipped)
    );
    assert_eq!(run.status("ci"), NodeStatus::Queued);
    run.finish("ci", Ok(json!({})));
    assert_eq!(
        run.state.status,
        RunStatus::Succeeded,
        "skipped nodes do not fail a run"
    );
}

#[test]
fn when_true_runs_the_node() {
    let mut run = Run::start(
        json!([
            {"id": "scan", "agent": "auto"},
            {"id": "fix", "agent": "auto", "depends_on": ["scan"],
             "when": "nodes.scan.output.summary.total > 0 && input.apply && run.id == 'run-1'"}
        ]),
        json!({"apply": true}),
    );
    run.finish("scan", Ok(json!({"summary": {"total": 2}})));
    assert_eq!(run.status("fix"), NodeStatus::Queued);
}

#[test]
fn one_failed_handles_a_failure_and_the_run_still_fails() {
    let nodes = json!([
        {"id": "review", "agent": "auto"},
        {"id": "other", "agent": "auto"},
        {"id": "publish", "agent": "auto", "depends_on": ["review"]},
        {"id": "alert", "agent": "auto", "depends_on": ["review"], "trigger_rule": "one_failed"},
        {"id": "report", "agent": "auto", "depends_on": ["publish", "alert"], "trigger_rule": "all_done"}
    ]);
    let mut run = Run::start(nodes.clone(), json!({}));
    run.finish("review", Err("exit 3"));
    assert_eq!(run.status("publish"), NodeStatus::Skipped);
    assert_eq!(run.skip_reason("publish"), Some(SkipReason::UpstreamFailed));
    assert_eq!(run.status("alert"), NodeStatus::Queued);
    // An unrelated branch still runs after the failure.
    assert_eq!(run.status("other"), NodeStatus::Queued);
    run.finish("alert", Ok(json!({})));
    assert_eq!(
        run.status("report"),
        NodeStatus::Queued,
        "all_done runs after a skip"
    );
    run.finish("other", Ok(json!({})));
    run.finish("report", Ok(json!({})));
    assert_eq!(
        run.state.status,
        RunStatus::Failed,
        "a failed node fails the run"
    );

    let mut ok = Run::start(nodes, json!({}));
    ok.finish("review", Ok(json!({})));
    assert_eq!(ok.status("alert"), NodeStatus::Skipped);
    assert_eq!(ok.skip_reason("alert"), Some(SkipReason::ConditionFalse));
    ok.finish("publish", Ok(json!({})));
    ok.finish("other", Ok(json!({})));
    ok.finish("report", Ok(json!({})));
    assert_eq!(ok.state.status, RunStatus::Succeeded);
}

#[test]
fn a_join_waits_for_every_parent_before_it_is_decided() {
    let mut run = Run::start(
        json!([
            {"id": "a", "agent": "auto"},
            {"id": "b", "agent": "auto"},
            {"id": "join", "agent": "auto", "depends_on": ["a", "b"]}
        ]),
        json!({}),
    );
    run.finish("a", Err("boom"));
    assert_eq!(
        run.status("join"),
        NodeStatus::Pending,
        "b is still running"
    );
    run.finish("b", Ok(json!({})));
    assert_eq!(run.status("join"), NodeStatus::Skipped);
    assert_eq!(run.skip_reason("join"), Some(SkipReason::UpstreamFailed));
    assert_eq!(run.state.status, RunStatus::Failed);
}

#[test]
fn a_when_that_is_not_a_bool_fails_the_node_with_its_cause() {
    let mut run = Run::start(
        json!([
            {"id": "scan", "agent": "auto"},
            {"id": "fix", "agent": "auto", "depends_on": ["scan"], "when": "nodes.scan.output.count"},
            {"id": "after", "agent": "auto", "depends_on": ["fix"]}
        ]),
        json!({}),
    );
    let t = run.finish("scan", Ok(json!({"count": 3})));
    assert_eq!(run.status("fix"), NodeStatus::Failed);
    let fix = run.idx("fix");
    assert!(matches!(&t.failures[..], [(n, NodeFailure::Condition(_))] if *n == fix));
    assert_eq!(
        t.failures[0].1.to_string(),
        "when evaluated to a number, not a bool"
    );
    assert_eq!(run.skip_reason("after"), Some(SkipReason::UpstreamFailed));
    assert_eq!(run.state.status, RunStatus::Failed);
}

#[test]
fn a_failed_parent_reads_as_its_status_and_error() {
    let mut run = Run::start(
        json!([
            {"id": "scan", "agent": "auto"},
            {"id": "triage", "agent": "auto", "depends_on": ["scan"], "trigger_rule": "all_done",
             "when": "nodes.scan.status == 'failed' && nodes.scan.error == 'exit 3' && nodes.scan.output == null"}
        ]),
        json!({}),
    );
    run.finish("scan", Err("exit 3"));
    assert_eq!(run.status("triage"), NodeStatus::Queued);
}

#[test]
fn retry_decides_skipped_nodes_again() {
    let mut run = Run::start(
        json!([
            {"id": "a", "agent": "auto"},
            {"id": "b", "agent": "auto", "depends_on": ["a"]}
        ]),
        json!({}),
    );
    run.finish("a", Err("boom"));
    assert_eq!(run.state.status, RunStatus::Failed);
    let t = advance(&run.dag, &run.plan, &mut run.state, Event::Retry, 0.5);
    assert!(t.actions.contains(&Action::Enqueue { node: 0 }));
    assert_eq!(run.status("b"), NodeStatus::Pending);
    assert_eq!(run.skip_reason("b"), None);
    run.finish("a", Ok(json!({})));
    assert_eq!(run.status("b"), NodeStatus::Queued);
}

#[test]
fn registration_checks_conditions() {
    let def: WorkflowDef = serde_json::from_value(json!({"name": "wf", "nodes": [
        {"id": "a", "agent": "auto"},
        {"id": "b", "agent": "auto", "when": "nodes.a.status == 'succeeded'"},
        {"id": "c", "agent": "auto", "depends_on": ["a"], "when": "nodes.a.status =="},
        {"id": "d", "agent": "auto", "depends_on": ["a"], "when": "nodes.zz.output == 1"}
    ]}))
    .unwrap();
    let problems = ValidatedDag::new(def, &|_| true, DEFAULT_MAX_NODES).unwrap_err();
    let got: Vec<(&str, &str)> = problems
        .iter()
        .map(|p| (p.field.as_str(), p.code))
        .collect();
    assert_eq!(
        got,
        [
            ("nodes[2].when", "bad_condition"),
            ("nodes[1].when", "condition_not_ancestor"),
            ("nodes[3].when", "condition_not_ancestor"),
        ]
    );
    let bad_rule = serde_json::from_value::<WorkflowDef>(json!({"name": "wf", "nodes": [
        {"id": "a", "agent": "auto", "trigger_rule": "most_failed"}
    ]}));
    assert!(bad_rule.unwrap_err().to_string().contains("most_failed"));
}

/// A random DAG with a random trigger rule, and sometimes a `when`, per node.
fn case() -> impl Strategy<Value = (Value, Vec<bool>)> {
    (2usize..14)
        .prop_flat_map(|n| {
            let node = |i: usize| {
                (
                    proptest::collection::vec(0..i.max(1), 0..3.min(i + 1)),
                    0..4usize,
                    0..3usize,
                )
            };
            let nodes: Vec<_> = (0..n).map(node).collect();
            (nodes, proptest::collection::vec(any::<bool>(), n))
        })
        .prop_map(|(nodes, fates)| {
            let rules = ["all_succeeded", "none_failed", "all_done", "one_failed"];
            let defs: Vec<Value> = nodes
                .iter()
                .enumerate()
                .map(|(i, (ps, rule, when))| {
                    let mut ps: Vec<usize> = if i == 0 { vec![] } else { ps.clone() };
                    ps.sort_unstable();
                    ps.dedup();
                    let deps: Vec<String> = ps.iter().map(|p| format!("n{p}")).collect();
                    let mut def = json!({"id": format!("n{i}"), "agent": "auto", "depends_on": deps,
                                     "trigger_rule": rules[*rule]});
                    if let (Some(p), 1) = (ps.first(), when) {
                        def["when"] = json!(format!("nodes.n{p}.status == 'succeeded'"));
                    } else if let (Some(p), 2) = (ps.last(), when) {
                        def["when"] = json!(format!("nodes.n{p}.output.ok == true"));
                    }
                    def
                })
                .collect();
            (Value::Array(defs), fates)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn partial_views_decide_like_the_full_state((nodes, fates) in case()) {
        let mut full = Run::start(nodes, json!({}));
        let mut partial = RunState::start(&full.dag, &full.plan).0;
        for _ in 0..100 {
            let Some((&node, _)) = full.state.nodes.iter().find(|(_, s)| s.status == NodeStatus::Queued) else {
                break;
            };
            let id = full.dag.node(node).id.clone();
            let ok = fates[node as usize];
            let t_full = full.finish(&id, if ok { Ok(json!({"ok": true})) } else { Err("boom") });
            // The same event through the view, as the coordinator applies it.
            let ns = partial.nodes.get_mut(&node).unwrap();
            ns.status = NodeStatus::Running;
            ns.attempt += 1;
            ns.tries += 1;
            let event = Event::Finished { node, attempt: ns.attempt, outcome: if ok { Outcome::Succeeded } else { Outcome::Failed { retryable: false } } };
            let ids = RunState::view(&full.dag, &event).unwrap();
            let mut scratch = RunState {
                status: partial.status,
                remaining: partial.remaining,
                failed: partial.failed,
                nodes: ids.iter().map(|i| (*i, partial.nodes[i])).collect(),
                facts: full.load_facts(&partial, &RunState::facts_view(&full.dag, &event)),
            };
            let t_part = advance(&full.dag, &full.plan, &mut scratch, event, 0.5);
            prop_assert_eq!(&t_part, &t_full);
            partial.status = scratch.status;
            partial.remaining = scratch.remaining;
            partial.failed = scratch.failed;
            partial.nodes.extend(scratch.nodes);
            prop_assert_eq!(&partial.nodes, &full.state.nodes);
        }
        prop_assert!(full.state.status.is_terminal(), "{:?}", full.state);
        prop_assert_eq!(full.state.remaining, 0);
    }
}
