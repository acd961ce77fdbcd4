//! `wait` nodes in the pure core: what registration refuses, the key
//! rendered when the node begins to wait (from the run and its ancestors),
//! the match as the wait's attempt succeeding, `on_timeout` `fail` and
//! `skip`, a key that cannot be rendered, and a retry after a timeout,
//! each also through the partial view the coordinator loads.

use gantry_dag::{
    advance, Event, Fact, Facts, NodeFailure, NodeIdx, NodeStatus, OnTimeout, Outcome, Plan,
    RunState, RunStatus, SkipReason, Transition, ValidatedDag, WorkflowDef, DEFAULT_MAX_NODES,
    DEFAULT_WAIT_TIMEOUT_S,
};
use serde_json::{json, Value};

fn check(nodes: Value) -> Result<ValidatedDag, Vec<gantry_dag::Problem>> {
    let def: WorkflowDef = serde_json::from_value(json!({"name": "w", "nodes": nodes})).unwrap();
    ValidatedDag::new(def, &|a| a == "a1", DEFAULT_MAX_NODES)
}

fn fields(nodes: Value) -> Vec<(String, &'static str)> {
    check(nodes)
        .unwrap_err()
        .into_iter()
        .map(|p| (p.field, p.code))
        .collect()
}

#[test]
fn registration_names_every_bad_field_of_a_wait() {
    let got = fields(json!([
        {"id": "a", "agent": "a1"},
        {"id": "bad-name", "wait": {"event": "CI Finished"}},
        {"id": "zero", "wait": {"event": "ci.finished", "timeout_s": 0}},
        {"id": "long", "wait": {"event": "ci.finished", "timeout_s": 31 * 24 * 3600}},
        {"id": "syntax", "wait": {"event": "ci.finished", "key": "{{run.id"}},
        {"id": "stranger", "wait": {"event": "ci.finished", "key": "{{a.output.sha}}"}},
        {"id": "item", "wait": {"event": "ci.finished", "key": "{{item}}"}},
        {"id": "input", "wait": {"event": "ci.finished"}, "input": {"x": 1}},
        {"id": "retry", "wait": {"event": "ci.finished"}, "timeout_s": 5,
         "retry": {"max_attempts": 2}},
        {"id": "huge", "wait": {"event": "ci.finished", "key": "k".repeat(2000)}}
    ]));
    let want = [
        ("nodes[1].wait.event", "bad_name"),
        ("nodes[2].wait.timeout_s", "bad_value"),
        ("nodes[3].wait.timeout_s", "bad_value"),
        ("nodes[4].wait.key", "bad_template"),
        ("nodes[5].wait.key", "template_not_ancestor"),
        ("nodes[6].wait.key", "bad_template"),
        ("nodes[7].input", "bad_value"),
        ("nodes[8].retry", "bad_value"),
        ("nodes[8].timeout_s", "bad_value"),
        ("nodes[9].wait.key", "bad_value"),
    ];
    for w in want {
        assert!(
            got.contains(&(w.0.to_owned(), w.1)),
            "{w:?} missing from {got:?}"
        );
    }
    assert_eq!(got.len(), want.len(), "{got:?}");
    // Only the two outcomes exist, and a wait names its event.
    for bad in [
        json!({"event": "e", "on_timeout": "retry"}),
        json!({"key": "k"}),
        json!({"event": "e", "extra": 1}),
    ] {
        let def = json!({"name": "w", "nodes": [{"id": "x", "wait": bad}]});
        assert!(serde_json::from_value::<WorkflowDef>(def).is_err(), "{bad}");
    }
}

/// A chain: `a1` node `build`, then `gate` waiting for `ci.finished` keyed
/// by `key`, then `after` (an `a1` node whose trigger rule is `rule`).
fn chain(key: &str, wait: Value, rule: &str) -> (ValidatedDag, Plan) {
    let mut w = json!({"event": "ci.finished", "key": key});
    w.as_object_mut()
        .unwrap()
        .extend(wait.as_object().unwrap().clone());
    let dag = check(json!([
        {"id": "build", "agent": "a1"},
        {"id": "gate", "wait": w, "depends_on": ["build"]},
        {"id": "after", "agent": "a1", "depends_on": ["gate"], "trigger_rule": rule}
    ]))
    .unwrap();
    let agent: gantry_dag::AgentDef =
        serde_json::from_value(json!({"name": "a1", "runtime": "builtin", "builtin": "noop"}))
            .unwrap();
    let plan = Plan::resolve(&dag, &|_| Some(agent.clone())).unwrap();
    (dag, plan)
}

const BUILD: NodeIdx = 0;
const GATE: NodeIdx = 1;
const AFTER: NodeIdx = 2;

/// Drives one run, applying each event to the full state and to the
/// partial view the store would load, which must agree.
struct Run {
    dag: ValidatedDag,
    plan: Plan,
    state: RunState,
}

impl Run {
    fn new((dag, plan): (ValidatedDag, Plan), build_output: Value) -> Self {
        let mut state = RunState::new(&dag);
        state.facts = Facts::of_new_run(&dag, "run-7".to_owned(), json!({"pr": 42}));
        let mut run = Self { dag, plan, state };
        run.apply(Event::Begin);
        run.state.nodes.get_mut(&BUILD).unwrap().status = NodeStatus::Running;
        run.state.nodes.get_mut(&BUILD).unwrap().attempt = 1;
        // The build's output, as the store loads it into the facts.
        if let Some(f) = run.state.facts.nodes.get_mut(&BUILD) {
            *f = Fact {
                status: NodeStatus::Succeeded,
                output: build_output,
                error: None,
            };
        }
        run
    }

    fn apply(&mut self, event: Event) -> Transition {
        let mut partial = match RunState::view(&self.dag, &event) {
            Some(ids) => RunState {
                nodes: ids.iter().map(|i| (*i, self.state.nodes[i])).collect(),
                ..self.state.clone()
            },
            None => self.state.clone(),
        };
        let want = RunState::facts_view(&self.dag, &event);
        assert!(
            want.iter().all(|i| self.state.facts.nodes.contains_key(i)),
            "facts_view {want:?} names nodes outside the facts"
        );
        let t = advance(&self.dag, &self.plan, &mut self.state, event, 0.5);
        let tp = advance(&self.dag, &self.plan, &mut partial, event, 0.5);
        assert_eq!(t, tp, "the partial view decides like the full state");
        t
    }

    fn status(&self, n: NodeIdx) -> NodeStatus {
        self.state.nodes[&n].status
    }
}

fn finished(node: NodeIdx, attempt: u32, outcome: Outcome) -> Event {
    Event::Finished {
        node,
        attempt,
        outcome,
    }
}

#[test]
fn a_wait_begins_with_its_key_rendered_and_its_match_decides_the_next_node() {
    let mut run = Run::new(
        chain(
            "{{run.id}}/{{build.output.sha}}",
            json!({}),
            "all_succeeded",
        ),
        json!({"sha": "abc"}),
    );
    let t = run.apply(finished(BUILD, 1, Outcome::Succeeded));
    assert_eq!(run.status(GATE), NodeStatus::Waiting);
    assert_eq!(t.waits.len(), 1, "{t:?}");
    let w = &t.waits[0];
    assert_eq!((w.node, w.attempt), (GATE, 1));
    assert_eq!(w.event, "ci.finished");
    assert_eq!(w.key, "run-7/abc");
    assert_eq!(w.timeout_s, DEFAULT_WAIT_TIMEOUT_S);
    assert!(t.actions.is_empty(), "a wait is not delivered: {t:?}");

    // A stale or foreign result changes nothing; the match does.
    assert!(run
        .apply(finished(GATE, 2, Outcome::Succeeded))
        .changed
        .is_empty());
    run.apply(finished(GATE, 1, Outcome::Succeeded));
    assert_eq!(run.status(GATE), NodeStatus::Succeeded);
    assert_eq!(run.status(AFTER), NodeStatus::Queued);
    // A second match of the same wait is a replay.
    assert!(run
        .apply(finished(GATE, 1, Outcome::Succeeded))
        .changed
        .is_empty());
}

#[test]
fn a_timeout_fails_the_wait_or_skips_it_as_on_timeout_says() {
    let mut run = Run::new(
        chain("k", json!({"timeout_s": 5}), "all_succeeded"),
        json!({}),
    );
    run.apply(finished(BUILD, 1, Outcome::Succeeded));
    assert_eq!(run.dag.wait(GATE).unwrap().on_timeout, OnTimeout::Fail);
    run.apply(finished(GATE, 1, Outcome::TimedOut));
    assert_eq!(run.status(GATE), NodeStatus::Failed);
    assert_eq!(run.status(AFTER), NodeStatus::Skipped);
    assert_eq!(run.state.status, RunStatus::Failed);

    // A retry waits again, as the next attempt.
    let t = run.apply(Event::Retry);
    assert_eq!(run.status(GATE), NodeStatus::Waiting);
    assert_eq!((t.waits[0].node, t.waits[0].attempt), (GATE, 2));

    for (rule, after) in [
        ("all_succeeded", NodeStatus::Skipped),
        ("none_failed", NodeStatus::Queued),
    ] {
        let mut run = Run::new(chain("k", json!({"on_timeout": "skip"}), rule), json!({}));
        run.apply(finished(BUILD, 1, Outcome::Succeeded));
        run.apply(finished(GATE, 1, Outcome::TimedOut));
        let gate = run.state.nodes[&GATE];
        assert_eq!(gate.status, NodeStatus::Skipped, "{rule}");
        assert_eq!(gate.skip_reason, Some(SkipReason::TimedOut), "{rule}");
        assert_eq!(run.status(AFTER), after, "{rule}");
        assert_eq!(run.state.failed, 0, "{rule}: a skipped wait fails nothing");
    }
}

#[test]
fn a_key_that_cannot_be_rendered_fails_the_wait_with_the_reason() {
    for (output, why) in [
        (json!({}), "wait key: "),
        (
            json!({"sha": {"a": 1}}),
            "wait key resolved to an object, not a string",
        ),
        (
            json!({"sha": "x".repeat(300)}),
            "wait key is 300 bytes, more than 256",
        ),
    ] {
        let mut run = Run::new(
            chain("{{build.output.sha}}", json!({}), "all_succeeded"),
            output.clone(),
        );
        let t = run.apply(finished(BUILD, 1, Outcome::Succeeded));
        assert_eq!(run.status(GATE), NodeStatus::Failed, "{output}");
        assert!(t.waits.is_empty());
        let (node, failure): &(NodeIdx, NodeFailure) = &t.failures[0];
        assert_eq!(*node, GATE);
        assert!(
            failure.to_string().starts_with(why),
            "{failure} for {output}"
        );
        assert_eq!(run.status(AFTER), NodeStatus::Skipped);
    }
    // A number or a bool is its JSON text.
    let mut run = Run::new(
        chain("{{build.output.sha}}", json!({}), "all_succeeded"),
        json!({"sha": 42}),
    );
    let t = run.apply(finished(BUILD, 1, Outcome::Succeeded));
    assert_eq!(t.waits[0].key, "42");
}

#[test]
fn cancelling_a_run_cancels_its_waiting_node() {
    let mut run = Run::new(chain("k", json!({}), "all_succeeded"), json!({}));
    run.apply(finished(BUILD, 1, Outcome::Succeeded));
    run.apply(Event::Cancel);
    assert_eq!(run.status(GATE), NodeStatus::Cancelled);
    // The wait's late match is fenced off.
    assert!(run
        .apply(finished(GATE, 1, Outcome::Succeeded))
        .changed
        .is_empty());
}
