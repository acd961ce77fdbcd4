//! The bounds of an event sent from outside: each field out of bounds is
//! named, and a good event has no problem.

use gantry_dag::{is_valid_event_name, NewEvent, MAX_EVENT_DATA_BYTES, MAX_EVENT_KEY_BYTES};
use serde_json::json;

fn event(v: serde_json::Value) -> NewEvent {
    serde_json::from_value(v).expect("event shape")
}

fn fields(e: &NewEvent) -> Vec<String> {
    e.problems().into_iter().map(|p| p.field).collect()
}

#[test]
fn names_follow_the_event_name_rule() {
    for good in ["ci.finished", "a", "repo-pushed_2", &"x".repeat(128)] {
        assert!(is_valid_event_name(good), "{good}");
    }
    for bad in ["", ".x", "-x", "CI.finished", "a b", "é", &"x".repeat(129)] {
        assert!(!is_valid_event_name(bad), "{bad}");
    }
}

#[test]
fn a_good_event_has_no_problem_and_its_key_and_data_default() {
    let e = event(json!({"name": "ci.finished"}));
    assert_eq!(e.key, "");
    assert_eq!(e.data, serde_json::Value::Null);
    assert_eq!(e.id, None);
    assert!(e.problems().is_empty());
    let e = event(
        json!({"name": "ci.finished", "key": "k".repeat(MAX_EVENT_KEY_BYTES),
                         "data": {"ok": true}, "id": "evt-1"}),
    );
    assert!(e.problems().is_empty(), "{:?}", e.problems());
}

#[test]
fn every_field_out_of_bounds_is_named() {
    let big = "x".repeat(MAX_EVENT_DATA_BYTES);
    let e = event(
        json!({"name": "Bad Name", "key": "k".repeat(MAX_EVENT_KEY_BYTES + 1),
                         "data": {"blob": big}, "id": "has space"}),
    );
    assert_eq!(fields(&e), ["name", "key", "data", "id"]);
    let e = event(json!({"name": "ok", "id": ""}));
    assert_eq!(fields(&e), ["id"]);
    let e = event(json!({"name": "ok", "id": "i".repeat(256)}));
    assert_eq!(fields(&e), ["id"]);
}

#[test]
fn unknown_fields_are_refused() {
    assert!(serde_json::from_value::<NewEvent>(json!({"name": "a", "nmae": "b"})).is_err());
}
