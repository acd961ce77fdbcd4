//! Workflow triggers (SPEC section 9) at registration and on an event: a
//! bad cron expression or time zone, a bad filter, misplaced fields and a
//! cron input the input schema refuses are each named with their field; an
//! event trigger's filter decides both ways.

use gantry_dag::{Trigger, ValidatedDag, WorkflowDef, DEFAULT_MAX_NODES};
use serde_json::{json, Value};

fn check(triggers: Value) -> Result<ValidatedDag, Vec<gantry_dag::Problem>> {
    let def: WorkflowDef = serde_json::from_value(json!({
        "name": "w",
        "input_schema": {"type": "object", "properties": {"repo": {"type": "string"}}},
        "triggers": triggers,
        "nodes": [{"id": "a", "agent": "a1"}]
    }))
    .unwrap();
    ValidatedDag::new(def, &|_| true, DEFAULT_MAX_NODES)
}

#[test]
fn every_bad_trigger_field_is_named() {
    let problems = check(json!([
        {"cron": "*/15 * * * *", "timezone": "Europe/Berlin", "input": {"repo": "x/y"}},
        {"cron": "61 * * * *"},
        {"cron": "* * * * *", "timezone": "Mars/Olympus"},
        {"cron": "* * * * *", "input": {"repo": 5}},
        {"cron": "* * * * *", "filter": "true"},
        {"event": "Bad Name"},
        {"event": "repo.pushed", "filter": "event.data.branch =="},
        {"event": "repo.pushed", "filter": "secret == 1"},
        {"event": "repo.pushed", "timezone": "UTC"},
        {"cron": "* * * * *", "event": "repo.pushed"},
        {},
        {"cron": "0 0 30 2 *"},
        {"cron": "* ".repeat(200)}
    ]))
    .unwrap_err();
    let got: Vec<(&str, &str)> = problems
        .iter()
        .map(|p| (p.field.as_str(), p.code))
        .collect();
    let want = [
        ("triggers[1].cron", "bad_schedule"),
        ("triggers[2].timezone", "bad_schedule"),
        ("triggers[3].input.repo", "schema_violation"),
        ("triggers[4].filter", "bad_value"),
        ("triggers[5].event", "bad_name"),
        ("triggers[6].filter", "bad_condition"),
        ("triggers[7].filter", "bad_condition"),
        ("triggers[8].timezone", "bad_value"),
        ("triggers[9]", "bad_value"),
        ("triggers[10]", "missing_field"),
        ("triggers[11].cron", "bad_schedule"),
        ("triggers[12].cron", "bad_schedule"),
    ];
    assert_eq!(got, want, "{problems:#?}");
    let filter = problems
        .iter()
        .find(|p| p.field == "triggers[7].filter")
        .unwrap();
    assert!(
        filter.message.starts_with("filter reads \"secret\""),
        "{}",
        filter.message
    );
    let fields: Vec<Value> = vec![json!({"cron": "* * * * *", "every": 5})];
    let def = json!({"name": "w", "triggers": fields, "nodes": [{"id": "a", "agent": "a1"}]});
    assert!(
        serde_json::from_value::<WorkflowDef>(def).is_err(),
        "an unknown trigger field"
    );
    let many: Vec<Value> = (0..33).map(|_| json!({"event": "e"})).collect();
    let problems = check(Value::Array(many)).unwrap_err();
    assert_eq!(problems[0].field, "triggers");
}

#[test]
fn an_event_trigger_starts_a_run_only_for_its_name_and_filter() {
    let dag = check(json!([
        {"event": "repo.pushed", "filter": "event.data.branch == 'main' && event.key != ''"},
        {"event": "tag.created"},
        {"cron": "0 * * * *"}
    ]))
    .unwrap();
    let [filtered, plain, cron] = dag.triggers() else {
        panic!("three triggers")
    };
    assert!(matches!(cron, Trigger::Cron { timezone: None, .. }));
    let event = |name: &str, key: &str, branch: &str| json!({"name": name, "key": key, "data": {"branch": branch}});
    assert_eq!(
        filtered.matches(&event("repo.pushed", "app", "main")),
        Ok(true)
    );
    assert_eq!(
        filtered.matches(&event("repo.pushed", "app", "dev")),
        Ok(false)
    );
    assert_eq!(
        filtered.matches(&event("repo.pushed", "", "main")),
        Ok(false)
    );
    assert_eq!(
        filtered.matches(&event("tag.created", "app", "main")),
        Ok(false)
    );
    assert_eq!(plain.matches(&event("tag.created", "", "")), Ok(true));
    assert_eq!(cron.matches(&event("tag.created", "", "")), Ok(false));
    // A filter that does not evaluate to a bool is an error, not a match.
    let dag = check(json!([{"event": "e", "filter": "event.data.n + 1"}])).unwrap();
    assert!(dag.triggers()[0]
        .matches(&json!({"name": "e", "key": "", "data": {"n": 1}}))
        .is_err());
}
