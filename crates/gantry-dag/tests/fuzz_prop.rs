//! Bounded fuzzing of everything that reads user input in the pure core:
//! arbitrary JSON as a workflow or agent definition, arbitrary strings as
//! templates, arbitrary inputs and outputs to render. Nothing may panic;
//! what parses and validates must hold the `ValidatedDag` invariants.

use gantry_dag::{refs, render, AgentDef, ValidatedDag, WorkflowDef};
use proptest::prelude::*;
use serde_json::{json, Value};

/// Arbitrary JSON, biased towards the shapes definitions have.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "[a-z0-9_{}. -]{0,12}".prop_map(Value::from),
        "\\{\\{[a-z0-9_.]{0,12}\\}\\}".prop_map(Value::from),
        ".{0,8}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("name".to_owned()),
                    Just("nodes".to_owned()),
                    Just("id".to_owned()),
                    Just("agent".to_owned()),
                    Just("depends_on".to_owned()),
                    Just("input".to_owned()),
                    Just("retry".to_owned()),
                    Just("timeout_s".to_owned()),
                    "[a-z_]{1,8}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A workflow-shaped value with random ids, dependencies and templates.
fn workflow_like() -> impl Strategy<Value = Value> {
    let node = (
        "[a-c]{1,2}",
        proptest::collection::vec("[a-c]{1,2}", 0..3),
        proptest::collection::vec("\\{\\{[a-c]{1,2}\\.output(\\.[a-z0-9]{1,3}){0,2}\\}\\}|\\{\\{run\\.input\\.[a-z]{1,3}\\}\\}|[a-z {}]{0,6}", 0..3),
    )
        .prop_map(|(id, deps, inputs)| json!({"id": id, "agent": "noop", "depends_on": deps, "input": {"v": inputs}}));
    proptest::collection::vec(node, 0..8).prop_map(|nodes| json!({"name": "fuzz", "nodes": nodes}))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_json_never_panics_parsing_or_validating(v in any_json()) {
        if let Ok(def) = serde_json::from_value::<WorkflowDef>(v.clone()) {
            let _ = ValidatedDag::new(def, &|_| true, 64);
        }
        let _ = serde_json::from_value::<AgentDef>(v.clone());
        let _ = refs(&v);
        let _ = render(&v, &v, &|_| Some(v.clone()));
    }

    #[test]
    fn what_validates_is_a_dag_whose_templates_name_ancestors(v in workflow_like()) {
        let def: WorkflowDef = serde_json::from_value(v).expect("workflow-shaped");
        if let Ok(dag) = ValidatedDag::new(def, &|a| a == "noop", 64) {
            // Parents come before children in some order: walking parents
            // from any node never returns to it.
            for i in 0..dag.len() as u32 {
                let mut seen = vec![false; dag.len()];
                let mut stack: Vec<u32> = dag.parents(i).to_vec();
                while let Some(p) = stack.pop() {
                    prop_assert_ne!(p, i, "cycle through {}", i);
                    if !std::mem::replace(&mut seen[p as usize], true) {
                        stack.extend_from_slice(dag.parents(p));
                    }
                }
                // Rendering with no outputs yet fails cleanly or succeeds.
                let _ = render(&dag.node(i).input, &json!({}), &|_| None);
            }
        }
    }

    #[test]
    fn template_strings_never_panic(s in ".{0,40}", out in any_json()) {
        let input = json!({"a": s.clone(), "b": [s.clone(), {"c": s}]});
        let _ = refs(&input);
        let _ = render(&input, &out, &|_| Some(out.clone()));
    }
}
