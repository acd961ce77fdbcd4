//! The review rules and the report: own findings plus a summary of upstream findings.

use crate::functions::Finder;
use gantry_agent::files::{File, FileSource};
use gantry_agent::AgentError;
use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

const DEFAULT_MAX_FUNCTION_LINES: usize = 60;
const DEFAULT_MAX_LINE_LENGTH: usize = 120;
const DEFAULT_MAX_FINDINGS: usize = 1000;
const CODE_EXTENSIONS: &[&str] = &[
    "rs", "py", "js", "jsx", "ts", "tsx", "mjs", "cjs", "go", "java", "kt", "c", "h", "cc", "cpp",
    "hpp", "rb", "php", "sh", "swift", "scala", "cs",
];

#[derive(Debug, Deserialize)]
pub(crate) struct Input {
    #[serde(flatten)]
    pub(crate) source: FileSource,
    #[serde(default)]
    pub(crate) max_function_lines: Option<usize>,
    #[serde(default)]
    pub(crate) max_line_length: Option<usize>,
    #[serde(default)]
    pub(crate) max_findings: Option<usize>,
    /// Findings from an upstream node (the security scanner), summarized alongside ours.
    #[serde(default)]
    pub(crate) findings: Option<Vec<Value>>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub(crate) struct Finding {
    pub(crate) file: String,
    pub(crate) line: usize,
    pub(crate) rule: &'static str,
    pub(crate) severity: &'static str,
    pub(crate) message: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct Upstream {
    pub(crate) total: usize,
    pub(crate) by_severity: BTreeMap<String, usize>,
    pub(crate) by_rule: BTreeMap<String, usize>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Summary {
    pub(crate) total: usize,
    pub(crate) by_rule: BTreeMap<&'static str, usize>,
    pub(crate) files_reviewed: usize,
    pub(crate) truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) upstream: Option<Upstream>,
    /// Our findings plus upstream ones.
    pub(crate) combined_total: usize,
}

#[derive(Debug, Serialize)]
pub(crate) struct Output {
    pub(crate) findings: Vec<Finding>,
    pub(crate) summary: Summary,
}

pub(crate) fn review(input: &Input) -> Result<Output, AgentError> {
    let files = input.source.load()?;
    let rules = Rules::new(input).map_err(|e| AgentError::permanent(format!("bad rule: {e}")))?;
    let max = input.max_findings.unwrap_or(DEFAULT_MAX_FINDINGS);
    let mut findings = Vec::new();
    let mut reviewed = 0;
    for file in files.iter().filter(|f| is_code(&f.path)) {
        reviewed += 1;
        findings.extend(rules.review_file(file));
    }
    findings.sort_by(|a, b| (&a.file, a.line, a.rule).cmp(&(&b.file, b.line, b.rule)));
    let truncated = findings.len() > max;
    findings.truncate(max);
    let mut by_rule = BTreeMap::new();
    for f in &findings {
        *by_rule.entry(f.rule).or_default() += 1;
    }
    let upstream = input.findings.as_deref().map(summarize_upstream);
    Ok(Output {
        summary: Summary {
            total: findings.len(),
            by_rule,
            files_reviewed: reviewed,
            truncated,
            combined_total: findings.len() + upstream.as_ref().map_or(0, |u| u.total),
            upstream,
        },
        findings,
    })
}

fn is_code(path: &str) -> bool {
    path.rsplit_once('.')
        .is_some_and(|(_, ext)| CODE_EXTENSIONS.contains(&ext))
}

/// Rust files where `unwrap`/`expect` is acceptable: binaries, tests, examples, build scripts.
fn is_rust_non_library(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    let in_dir = |d: &str| path.starts_with(&format!("{d}/")) || path.contains(&format!("/{d}/"));
    name == "main.rs"
        || name == "build.rs"
        || ["bin", "tests", "benches", "examples"]
            .iter()
            .any(|d| in_dir(d))
}

struct Rules {
    finder: Finder,
    unwrap: Regex,
    todo: Regex,
    max_function_lines: usize,
    max_line_length: usize,
}

impl Rules {
    fn new(input: &Input) -> Result<Self, regex::Error> {
        Ok(Self {
            finder: Finder::new()?,
            unwrap: Regex::new(r"\.unwrap\(\)|\.expect\(")?,
            todo: Regex::new(r"\b(TODO|FIXME|XXX)\b")?,
            max_function_lines: input
                .max_function_lines
                .unwrap_or(DEFAULT_MAX_FUNCTION_LINES),
            max_line_length: input.max_line_length.unwrap_or(DEFAULT_MAX_LINE_LENGTH),
        })
    }

    fn review_file(&self, file: &File) -> Vec<Finding> {
        let mut out = Vec::new();
        let finding = |line, rule, severity, message| Finding {
            file: file.path.clone(),
            line,
            rule,
            severity,
            message,
        };
        for f in self.finder.find(&file.path, &file.content) {
            if f.len() > self.max_function_lines {
                let msg = format!(
                    "function `{}` is {} lines long (limit {})",
                    f.name,
                    f.len(),
                    self.max_function_lines
                );
                out.push(finding(f.start, "long-function", "medium", msg));
            }
        }
        let check_unwrap = file.path.ends_with(".rs") && !is_rust_non_library(&file.path);
        let mut in_tests = false;
        for (i, line) in file.content.lines().enumerate() {
            let code = line.trim_start();
            // By convention a Rust file's tests follow `#[cfg(test)]` to its end.
            in_tests |= code.starts_with("#[cfg(test)]");
            let is_comment =
                code.starts_with("//") || code.starts_with('#') && !code.starts_with("#[");
            if check_unwrap && !in_tests && !is_comment && self.unwrap.is_match(line) {
                let msg =
                    "unwrap/expect in library code panics at run time; return an error".into();
                out.push(finding(i + 1, "unwrap", "medium", msg));
            }
            if let Some(m) = self.todo.find(line) {
                out.push(finding(
                    i + 1,
                    "todo",
                    "low",
                    format!("{} marker", m.as_str()),
                ));
            }
            let len = line.chars().count();
            if len > self.max_line_length {
                let msg = format!("line is {len} characters (limit {})", self.max_line_length);
                out.push(finding(i + 1, "long-line", "low", msg));
            }
        }
        out
    }
}

fn summarize_upstream(findings: &[Value]) -> Upstream {
    let mut by_severity = BTreeMap::new();
    let mut by_rule = BTreeMap::new();
    for f in findings {
        let field = |k| {
            f.get(k)
                .and_then(Value::as_str)
                .unwrap_or("unknown")
                .to_owned()
        };
        *by_severity.entry(field("severity")).or_default() += 1;
        *by_rule.entry(field("rule")).or_default() += 1;
    }
    Upstream {
        total: findings.len(),
        by_severity,
        by_rule,
    }
}

#[cfg(test)]
mod tests;
