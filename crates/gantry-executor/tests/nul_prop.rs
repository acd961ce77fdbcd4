//! Property tests of the output checks on the result path (issue 10): any
//! bytes on stdout either parse to an output with no NUL anywhere or end
//! the attempt as a failure, never as a success Postgres cannot store.

use gantry_executor::protocol::{contains_nul, exit_outcome, refuse_nul};
use gantry_executor::{ErrorKind, ExecOutcome};
use proptest::prelude::*;
use serde_json::{json, Value};

/// Random JSON values, NUL-bearing strings and keys included.
fn value() -> impl Strategy<Value = Value> {
    let text = prop_oneof![any::<String>(), "[a\u{0}b]{0,4}", Just("\u{0}".to_owned())];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        text.clone().prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 64, 8, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            proptest::collection::btree_map(text.clone(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// The same check, written the slow obvious way: NUL in the serialized text.
fn oracle(v: &Value) -> bool {
    v.to_string().contains("\\u0000")
}

proptest! {
    #[test]
    fn contains_nul_agrees_with_the_serialized_text(v in value()) {
        prop_assert_eq!(contains_nul(&v), oracle(&v));
    }

    #[test]
    fn a_success_never_carries_a_nul(v in value()) {
        match refuse_nul(ExecOutcome::Succeeded(v.clone())) {
            ExecOutcome::Succeeded(out) => {
                prop_assert!(!contains_nul(&out));
                prop_assert_eq!(out, v);
            }
            ExecOutcome::Failed { kind, error } => {
                prop_assert!(contains_nul(&v));
                prop_assert_eq!(kind, ErrorKind::BadOutput);
                prop_assert!(!error.contains('\0'));
            }
        }
    }

    #[test]
    fn random_stdout_bytes_end_as_a_storable_success_or_a_failure(
        bytes in proptest::collection::vec(any::<u8>(), 0..256)
    ) {
        if let ExecOutcome::Succeeded(v) = refuse_nul(exit_outcome(0, &bytes)) {
            prop_assert!(!contains_nul(&v));
        }
    }
}

#[test]
fn deep_nesting_is_a_bad_output_not_a_crash() {
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    match exit_outcome(0, deep.as_bytes()) {
        ExecOutcome::Failed { kind, .. } => assert_eq!(kind, ErrorKind::BadOutput),
        ExecOutcome::Succeeded(_) => panic!("10,000 nested arrays parsed"),
    }
}

#[test]
fn a_nul_in_a_key_or_a_string_is_refused() {
    for v in [
        json!({"x": "\u{0}"}),
        json!({"a\u{0}": 1}),
        json!([[["\u{0}"]]]),
    ] {
        assert!(contains_nul(&v), "{v}");
    }
    assert!(!contains_nul(&json!({"x": "\\u0000 as text is fine"})));
}
