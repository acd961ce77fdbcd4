//! Template tests: parsing, whole-value and embedded rendering, missing
//! paths, injection staying literal, depth limits.

use gantry_dag::{refs, render, TemplateError, TemplateRef};
use serde_json::{json, Value};

fn outputs(node: &str) -> Option<Value> {
    match node {
        "scan" => Some(
            json!({"findings": [{"id": 1}, {"id": 2}], "summary": {"total": 7}, "name": "s1", "0": "zero-key"}),
        ),
        "evil" => Some(json!({"text": "{{run.input.secret}}", "whole": "{{run.input}}"})),
        _ => None,
    }
}

fn run_input() -> Value {
    json!({"repo": "git@x", "a": [{"b": true}], "secret": "hunter2", "n": null})
}

fn r(input: Value) -> Result<Value, TemplateError> {
    render(&input, &run_input(), &outputs)
}

#[test]
fn whole_value_templates_keep_json_types() {
    let out = r(json!({
        "all": "{{run.input}}", "repo": "{{ run.input.repo }}", "b": "{{run.input.a.0.b}}",
        "findings": "{{scan.output.findings}}", "null": "{{run.input.n}}", "total": "{{scan.output.summary.total}}"
    }))
    .unwrap();
    assert_eq!(out["all"], run_input());
    assert_eq!(out["repo"], json!("git@x"));
    assert_eq!(out["b"], json!(true));
    assert_eq!(out["findings"], json!([{"id": 1}, {"id": 2}]));
    assert_eq!(out["null"], Value::Null);
    assert_eq!(out["total"], json!(7));
}

#[test]
fn embedded_templates_become_text() {
    let out = r(json!("scan found {{scan.output.summary.total}} issues in {{run.input.repo}}: {{scan.output.findings.1}}{{scan.output.name}}")).unwrap();
    assert_eq!(out, json!("scan found 7 issues in git@x: {\"id\":2}s1"));
}

#[test]
fn templates_in_arrays_and_nested_objects() {
    let out = r(json!({"list": ["{{scan.output.findings.0.id}}", {"deep": ["x {{run.input.a.0.b}}"]}], "k": 5})).unwrap();
    assert_eq!(out, json!({"list": [1, {"deep": ["x true"]}], "k": 5}));
}

#[test]
fn digit_segment_is_a_key_on_objects() {
    assert_eq!(r(json!("{{scan.output.0}}")).unwrap(), json!("zero-key"));
}

#[test]
fn literal_braces_outside_templates_are_kept() {
    assert_eq!(r(json!("a { b } c }} d")).unwrap(), json!("a { b } c }} d"));
}

#[test]
fn missing_paths_are_errors() {
    let cases = [
        ("{{run.input.nope}}", "run.input.nope"),
        ("x {{run.input.a.5.b}}", "run.input.a.5.b"),
        ("{{run.input.repo.deeper}}", "run.input.repo.deeper"),
        ("{{scan.output.findings.x}}", "scan.output.findings.x"),
        ("{{other.output}}", "other.output"),
    ];
    for (tpl, want) in cases {
        match r(json!({"f": [tpl]})) {
            Err(TemplateError::MissingPath {
                field,
                template,
                path,
            }) => {
                assert_eq!(field, "input.f[0]");
                assert!(tpl.contains(&template), "{template}");
                assert_eq!(path, want);
            }
            other => panic!("{tpl}: {other:?}"),
        }
    }
}

#[test]
fn upstream_output_with_templates_stays_literal() {
    let out = r(json!({"whole": "{{evil.output.text}}", "embedded": "see {{evil.output.text}}", "obj": "{{evil.output}}"})).unwrap();
    assert_eq!(out["whole"], json!("{{run.input.secret}}"));
    assert_eq!(out["embedded"], json!("see {{run.input.secret}}"));
    assert_eq!(out["obj"]["whole"], json!("{{run.input}}"));
    assert!(!out.to_string().contains("hunter2"));
}

#[test]
fn syntax_errors() {
    let bad = [
        "{{",
        "{{run.input",
        "{{}}",
        "{{ }}",
        "{{run}}",
        "{{run.inputs}}",
        "{{scan}}",
        "{{scan.out}}",
        "{{run.input..a}}",
        "{{run.input.}}",
        "{{Scan.output}}",
        "x {{run.input.a b}}",
        "{{{run.input}}}",
    ];
    for tpl in bad {
        match r(json!({"k": tpl})) {
            Err(TemplateError::Syntax { field, .. }) => assert_eq!(field, "input.k", "{tpl}"),
            other => panic!("{tpl} should be a syntax error, got {other:?}"),
        }
        assert!(refs(&json!({"k": tpl})).is_err(), "{tpl}");
    }
}

#[test]
fn refs_lists_every_reference_with_its_field() {
    let got = refs(&json!({"a": ["{{run.input}}", {"b": "x {{scan.output.findings.0}} {{run.input.repo}}"}], "c": 3})).unwrap();
    assert_eq!(
        got,
        vec![
            (
                "input.a[0]".to_owned(),
                TemplateRef::RunInput { path: vec![] }
            ),
            (
                "input.a[1].b".to_owned(),
                TemplateRef::NodeOutput {
                    node: "scan".into(),
                    path: vec!["findings".into(), "0".into()]
                }
            ),
            (
                "input.a[1].b".to_owned(),
                TemplateRef::RunInput {
                    path: vec!["repo".into()]
                }
            ),
        ]
    );
}

#[test]
fn keys_are_not_templates() {
    let out = r(json!({"{{run.input.repo}}": 1})).unwrap();
    assert_eq!(out, json!({"{{run.input.repo}}": 1}));
}

fn nested(depth: usize, leaf: Value) -> Value {
    let mut v = leaf;
    for _ in 0..depth {
        v = Value::Array(vec![v]);
    }
    v
}

#[test]
fn nesting_up_to_128_levels_renders() {
    let out = r(nested(128, json!("{{run.input.repo}}"))).unwrap();
    assert_eq!(out, nested(128, json!("git@x")));
    assert_eq!(refs(&nested(128, json!("{{run.input}}"))).unwrap().len(), 1);
}

#[test]
fn deeper_nesting_is_a_syntax_error_not_a_crash() {
    for depth in [129, 10_000] {
        let input = nested(depth, json!("x"));
        let rendered = render(&input, &run_input(), &outputs);
        assert!(
            matches!(rendered, Err(TemplateError::Syntax { .. })),
            "depth {depth}"
        );
        assert!(
            matches!(refs(&input), Err(TemplateError::Syntax { .. })),
            "depth {depth}"
        );
        // serde_json drops deep values recursively; forget this one rather
        // than test its destructor.
        std::mem::forget(input);
    }
}

mod scope {
    //! `run.id`, `NODE.status`, `NODE.error`, and outputs of nodes that did
    //! not succeed (SPEC section 2.1).
    use gantry_dag::{render_in, NodeStatus, NodeView, Scope, TemplateError};
    use serde_json::{json, Value};

    fn view(status: NodeStatus, output: Value, error: Option<&str>) -> NodeView {
        NodeView {
            status,
            output,
            error: error.map(str::to_owned),
        }
    }

    fn render(input: Value) -> Result<Value, TemplateError> {
        let nodes = |n: &str| match n {
            "scan" => Some(view(NodeStatus::Succeeded, json!({"total": 2}), None)),
            "review" => Some(view(
                NodeStatus::Failed,
                json!({"ignored": true}),
                Some("exit 3"),
            )),
            "fix" => Some(view(NodeStatus::Skipped, Value::Null, None)),
            _ => None,
        };
        render_in(
            &input,
            &Scope {
                run_id: "r-1",
                input: &json!({"repo": "x/y"}),
                nodes: &nodes,
                item: None,
            },
        )
    }

    #[test]
    fn status_error_and_run_id_render() {
        assert_eq!(
            render(json!({"m": "review {{review.status}}: {{review.error}}", "id": "{{run.id}}"})),
            Ok(json!({"m": "review failed: exit 3", "id": "r-1"}))
        );
        assert_eq!(render(json!("{{scan.status}}")), Ok(json!("succeeded")));
        assert_eq!(render(json!("{{scan.error}}")), Ok(Value::Null));
    }

    #[test]
    fn outputs_of_nodes_that_did_not_succeed_read_as_null() {
        assert_eq!(render(json!("{{review.output}}")), Ok(Value::Null));
        assert_eq!(render(json!("{{fix.output.deep.path}}")), Ok(Value::Null));
        assert_eq!(
            render(json!("got [{{fix.output}}] {{scan.error}}.")),
            Ok(json!("got [] ."))
        );
        // The missing-path rule still holds for a node that succeeded.
        assert!(matches!(
            render(json!("{{scan.output.nope}}")),
            Err(TemplateError::MissingPath { .. })
        ));
        assert!(matches!(
            render(json!("{{ghost.status}}")),
            Err(TemplateError::MissingPath { .. })
        ));
    }
}
