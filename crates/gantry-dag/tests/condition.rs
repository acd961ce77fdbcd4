//! `when` conditions: what compiles, what registration refuses, and what
//! evaluation decides (SPEC section 2.1).

use gantry_dag::{
    Condition, ConditionError, EvalError, NodeFacts, MAX_CONDITION_BYTES, MAX_CONDITION_NESTING,
};
use serde_json::{json, Value};
use std::collections::BTreeMap;

fn facts(status: &str, output: Value, error: Option<&str>) -> NodeFacts {
    NodeFacts {
        status: status.to_owned(),
        output,
        error: error.map(str::to_owned),
    }
}

fn eval(src: &str, input: Value, nodes: &[(&str, NodeFacts)]) -> Result<bool, EvalError> {
    let nodes: BTreeMap<String, NodeFacts> = nodes
        .iter()
        .map(|(id, f)| ((*id).to_owned(), f.clone()))
        .collect();
    Condition::compile(src)
        .unwrap()
        .eval(&input, "run-1", &nodes)
}

#[test]
fn the_spec_example_reads_an_ancestor_output() {
    let scan = facts("succeeded", json!({"summary": {"total": 3}}), None);
    assert_eq!(
        eval(
            "nodes.scan.output.summary.total > 0",
            json!({}),
            &[("scan", scan.clone())]
        ),
        Ok(true)
    );
    let none = facts("succeeded", json!({"summary": {"total": 0}}), None);
    assert_eq!(
        eval(
            "nodes.scan.output.summary.total > 0",
            json!({}),
            &[("scan", none)]
        ),
        Ok(false)
    );
}

#[test]
fn input_run_status_and_error_are_visible() {
    let failed = facts("failed", Value::Null, Some("exit 3"));
    let nodes = [("my-node", failed)];
    assert_eq!(
        eval(r#"nodes["my-node"].status == "failed""#, json!({}), &nodes),
        Ok(true)
    );
    assert_eq!(
        eval(
            r#"nodes["my-node"].error.startsWith("exit")"#,
            json!({}),
            &nodes
        ),
        Ok(true)
    );
    assert_eq!(
        eval(
            r#"input.branch == "main" && run.id == "run-1""#,
            json!({"branch": "main"}),
            &[]
        ),
        Ok(true)
    );
    assert_eq!(
        eval(
            "input.items.exists(i, i > 2)",
            json!({"items": [1, 2, 3]}),
            &[]
        ),
        Ok(true)
    );
}

#[test]
fn the_nodes_read_are_named_for_the_ancestor_check() {
    let c = Condition::compile(r#"nodes.a.status == "succeeded" || has(nodes["b-1"].output.x)"#)
        .unwrap();
    assert_eq!(c.nodes().collect::<Vec<_>>(), ["a", "b-1"]);
}

#[test]
fn a_result_that_is_not_a_bool_or_an_error_is_a_failure() {
    assert_eq!(
        eval("input.n + 1", json!({"n": 1}), &[]),
        Err(EvalError::NotBool("a number".into()))
    );
    assert!(matches!(
        eval("input.missing.deeper == 1", json!({}), &[]),
        Err(EvalError::Failed(_))
    ));
    assert!(matches!(
        eval("1 / input.zero == 1", json!({"zero": 0}), &[]),
        Err(EvalError::Failed(_))
    ));
}

#[test]
fn registration_refuses_what_cannot_be_checked_or_bounded() {
    assert!(matches!(
        Condition::compile("nodes.a.status =="),
        Err(ConditionError::Parse(_))
    ));
    assert_eq!(
        Condition::compile("secret == 1").unwrap_err(),
        ConditionError::UnknownVariable("secret".into())
    );
    assert_eq!(
        Condition::compile("nodes[input.which].status == 'failed'").unwrap_err(),
        ConditionError::ComputedNode
    );
    assert_eq!(
        Condition::compile("size(nodes) > 1").unwrap_err(),
        ConditionError::ComputedNode
    );
    assert_eq!(
        Condition::compile("input.l.all(x, input.l.all(y, x == y))").unwrap_err(),
        ConditionError::NestedComprehension
    );
    assert_eq!(
        Condition::compile("input.l.exists(x, x == input.wanted)").unwrap_err(),
        ConditionError::FreeInComprehension("input".into())
    );
    let sum = vec!["input.s"; 20].join(" + ");
    assert_eq!(
        Condition::compile(&format!("size({sum}) > 0")).unwrap_err(),
        ConditionError::TooLarge
    );
    assert!(
        matches!(
            Condition::compile("input.s.matches('a+')").map(|c| c.eval(
                &json!({"s": "a"}),
                "r",
                &BTreeMap::new()
            )),
            Ok(Err(EvalError::Failed(_)))
        ),
        "regular expressions are left out: a pattern from the data could cost per element"
    );
    let long = format!("{}true", "true && ".repeat(MAX_CONDITION_BYTES / 8));
    assert!(matches!(
        Condition::compile(&long),
        Err(ConditionError::TooLong { .. })
    ));
    // The generated parser recurses through every precedence level per
    // bracket: in a debug build a dozen nested brackets overflow a 2 MiB
    // thread stack, so nesting is refused before the parser sees it.
    for open in ["(", "[", "{"] {
        let deep = format!("{}true", open.repeat(200));
        assert_eq!(
            Condition::compile(&deep).unwrap_err(),
            ConditionError::TooDeep
        );
    }
    let ok = format!(
        "{}true{}",
        "(".repeat(MAX_CONDITION_NESTING),
        ")".repeat(MAX_CONDITION_NESTING)
    );
    assert_eq!(eval(&ok, json!({}), &[]), Ok(true));
}

#[test]
fn a_comprehension_reads_a_large_list() {
    let items: Vec<Value> = (0..100_000).map(|i| json!({"severity": i % 7})).collect();
    assert_eq!(
        eval(
            "input.findings.exists(f, f.severity == 6)",
            json!({"findings": items.clone()}),
            &[]
        ),
        Ok(true)
    );
    assert_eq!(
        eval(
            "input.findings.filter(f, f.severity > 5).size() > 0",
            json!({"findings": items}),
            &[]
        ),
        Ok(true)
    );
}
