//! Runs the rule table over every line of every file and builds the report.

use crate::rules::{rules, Rule, Severity};
use gantry_agent::files::{File, FileSource};
use gantry_agent::AgentError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Longest excerpt kept per finding, in characters.
const MAX_EXCERPT_CHARS: usize = 160;
/// Default cap on findings so the output stays far below the worker's output limit.
const DEFAULT_MAX_FINDINGS: usize = 1000;

#[derive(Debug, Deserialize)]
pub(crate) struct Input {
    #[serde(flatten)]
    pub(crate) source: FileSource,
    #[serde(default)]
    pub(crate) max_findings: Option<usize>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub(crate) struct Finding {
    pub(crate) file: String,
    pub(crate) line: usize,
    pub(crate) rule: &'static str,
    pub(crate) severity: Severity,
    pub(crate) excerpt: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct Summary {
    pub(crate) total: usize,
    pub(crate) by_severity: BTreeMap<&'static str, usize>,
    pub(crate) by_rule: BTreeMap<&'static str, usize>,
    pub(crate) files_scanned: usize,
    pub(crate) truncated: bool,
}

#[derive(Debug, Serialize)]
pub(crate) struct Output {
    pub(crate) findings: Vec<Finding>,
    pub(crate) summary: Summary,
}

pub(crate) fn scan(input: &Input) -> Result<Output, AgentError> {
    let files = input.source.load()?;
    let rules = rules().map_err(|e| AgentError::permanent(format!("bad rule table: {e}")))?;
    let max = input.max_findings.unwrap_or(DEFAULT_MAX_FINDINGS);
    let mut findings = Vec::new();
    let mut truncated = false;
    'files: for file in &files {
        for finding in scan_file(file, &rules) {
            if findings.len() >= max {
                truncated = true;
                break 'files;
            }
            findings.push(finding);
        }
    }
    let mut by_severity: BTreeMap<&'static str, usize> =
        Severity::ALL.iter().map(|s| (s.as_str(), 0)).collect();
    let mut by_rule = BTreeMap::new();
    for f in &findings {
        *by_severity.entry(f.severity.as_str()).or_default() += 1;
        *by_rule.entry(f.rule).or_default() += 1;
    }
    Ok(Output {
        summary: Summary {
            total: findings.len(),
            by_severity,
            by_rule,
            files_scanned: files.len(),
            truncated,
        },
        findings,
    })
}

fn scan_file(file: &File, rules: &[Rule]) -> Vec<Finding> {
    let applicable: Vec<&Rule> = rules.iter().filter(|r| r.applies_to(&file.path)).collect();
    let mut out = Vec::new();
    for (idx, line) in file.content.lines().enumerate() {
        let code = line.trim_start();
        // One secret finding per line: the table lists specific rules first, and the generic
        // ones would only repeat them (`AWS_ACCESS_KEY_ID = "AKIA..."` is one leak, not two).
        let mut secret_found = false;
        for rule in &applicable {
            if rule.id == "rust-unsafe" && code.starts_with("//") {
                continue;
            }
            if secret_found && rule.secret_group.is_some() {
                continue;
            }
            if rule.regex.is_match(line) {
                secret_found |= rule.secret_group.is_some();
                out.push(Finding {
                    file: file.path.clone(),
                    line: idx + 1,
                    rule: rule.id,
                    severity: rule.severity,
                    excerpt: excerpt(line, rules),
                });
            }
        }
    }
    out
}

/// The trimmed line with every secret any rule recognizes masked, then shortened.
pub(crate) fn excerpt(line: &str, rules: &[Rule]) -> String {
    let mut spans: Vec<(usize, usize)> = Vec::new();
    for rule in rules {
        let Some(group) = rule.secret_group else {
            continue;
        };
        for caps in rule.regex.captures_iter(line) {
            if let Some(m) = caps.get(group) {
                spans.push((m.start(), m.end()));
            }
        }
    }
    spans.sort_unstable();
    let mut masked = String::with_capacity(line.len());
    let mut pos = 0;
    for (start, end) in spans {
        if start < pos {
            continue; // overlaps a span already masked
        }
        masked.push_str(&line[pos..start]);
        masked.push_str(&mask(&line[start..end]));
        pos = end;
    }
    masked.push_str(&line[pos..]);
    let trimmed = masked.trim();
    match trimmed.char_indices().nth(MAX_EXCERPT_CHARS) {
        Some((cut, _)) => format!("{}...", &trimmed[..cut]),
        None => trimmed.to_owned(),
    }
}

/// Keeps a 4-character prefix of long values (enough to find the key, useless to an
/// attacker) and hides the rest behind a fixed-length mask that does not reveal the length.
fn mask(secret: &str) -> String {
    let keep = if secret.chars().count() >= 16 { 4 } else { 0 };
    let prefix: String = secret.chars().take(keep).collect();
    format!("{prefix}********")
}

#[cfg(test)]
mod tests;
