//! Review tests on inline files.

use super::*;
use serde_json::json;

fn input(files: &[(&str, &str)]) -> Input {
    Input {
        source: FileSource::inline(files.iter().map(|(p, c)| File::new(*p, *c)).collect()),
        max_function_lines: None,
        max_line_length: None,
        max_findings: None,
        findings: None,
    }
}

fn found(out: &Output) -> Vec<(&str, usize, &str)> {
    out.findings
        .iter()
        .map(|f| (f.file.as_str(), f.line, f.rule))
        .collect()
}

fn body(lines: usize) -> String {
    (0..lines)
        .map(|i| format!("    let x{i} = {i};\n"))
        .collect()
}

#[test]
fn long_functions_in_three_languages() {
    let rust = format!(
        "fn short() {{\n{}}}\n\nfn long() {{\n{}}}\n",
        body(3),
        body(60)
    );
    let py = format!("def long():\n{}\n", body(60).replace("let ", ""));
    let js = format!("function ok() {{\n{}}}\n", body(58));
    let out = review(&input(&[
        ("src/lib.rs", &rust),
        ("a.py", &py),
        ("b.js", &js),
    ]))
    .unwrap();
    assert_eq!(
        found(&out),
        [
            ("a.py", 1, "long-function"),
            ("src/lib.rs", 7, "long-function")
        ]
    );
    assert_eq!(
        out.findings[1].message,
        "function `long` is 62 lines long (limit 60)"
    );
}

#[test]
fn unwrap_only_in_rust_library_code() {
    let lib = "fn a() {\n    let v = x.unwrap();\n    // y.unwrap() in a comment\n    z.expect(\"why\");\n}\n#[cfg(test)]\nmod tests {\n    fn t() { a.unwrap(); }\n}\n";
    let out = review(&input(&[
        ("crates/x/src/lib.rs", lib),
        ("crates/x/src/main.rs", "fn main() { a.unwrap(); }"),
        ("crates/x/src/bin/tool.rs", "fn main() { a.unwrap(); }"),
        ("crates/x/tests/it.rs", "fn t() { a.unwrap(); }"),
        ("app.py", "x = d.unwrap()\n"),
    ]))
    .unwrap();
    assert_eq!(
        found(&out),
        [
            ("crates/x/src/lib.rs", 2, "unwrap"),
            ("crates/x/src/lib.rs", 4, "unwrap")
        ]
    );
}

#[test]
fn todo_markers_and_long_lines_in_code_only() {
    let long = format!("x = \"{}\"\n", "a".repeat(130));
    let out = review(&input(&[
        (
            "a.py",
            &format!("# TODO: handle errors\n{long}# FIXME later\n# todos are fine\n"),
        ),
        ("README.md", &format!("TODO in docs is ignored\n{long}")),
    ]))
    .unwrap();
    assert_eq!(
        found(&out),
        [
            ("a.py", 1, "todo"),
            ("a.py", 2, "long-line"),
            ("a.py", 3, "todo")
        ]
    );
    assert_eq!(out.summary.by_rule["todo"], 2);
    assert_eq!(out.summary.files_reviewed, 1);
}

#[test]
fn thresholds_are_configurable() {
    let mut inp = input(&[("a.js", "function f() {\n  return 1;\n}\n")]);
    inp.max_function_lines = Some(2);
    inp.max_line_length = Some(13);
    let out = review(&inp).unwrap();
    assert_eq!(
        found(&out),
        [("a.js", 1, "long-function"), ("a.js", 1, "long-line")]
    );
}

#[test]
fn upstream_findings_are_summarized() {
    let mut inp = input(&[("a.py", "# TODO\n")]);
    inp.findings = Some(vec![
        json!({"file": "c.py", "line": 2, "rule": "aws-access-key", "severity": "critical"}),
        json!({"file": "c.py", "line": 5, "rule": "shell-true", "severity": "high"}),
        json!({"rule": "shell-true", "severity": "high"}),
    ]);
    let out = review(&inp).unwrap();
    let up = out.summary.upstream.as_ref().unwrap();
    assert_eq!(up.total, 3);
    assert_eq!(up.by_severity["high"], 2);
    assert_eq!(up.by_rule["aws-access-key"], 1);
    assert_eq!(out.summary.total, 1);
    assert_eq!(out.summary.combined_total, 4);
    let json = serde_json::to_value(&out).unwrap();
    assert_eq!(json["summary"]["upstream"]["by_severity"]["critical"], 1);
}

#[test]
fn findings_are_capped() {
    let mut inp = input(&[("a.py", &"# TODO\n".repeat(20))]);
    inp.max_findings = Some(5);
    let out = review(&inp).unwrap();
    assert_eq!(out.findings.len(), 5);
    assert!(out.summary.truncated);
}
