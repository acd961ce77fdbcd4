//! The compliance checks and the report they produce.

use gantry_agent::files::{File, FileSource};
use gantry_agent::AgentError;
use serde::{Deserialize, Serialize};

const LICENSE_NAMES: &[&str] = &[
    "license",
    "license.md",
    "license.txt",
    "copying",
    "copying.md",
];
const DEFAULT_REQUIRED: &[&str] = &["README.md", "SECURITY.md"];
/// Where hosting platforms also look for community files such as SECURITY.md.
const ALTERNATE_DIRS: &[&str] = &[".github", "docs"];
const DEFAULT_HEADERS: &[&str] = &[
    "Content-Security-Policy",
    "Strict-Transport-Security",
    "X-Content-Type-Options",
    "X-Frame-Options",
];

#[derive(Debug, Deserialize)]
pub(crate) struct Input {
    #[serde(flatten)]
    pub(crate) source: FileSource,
    /// Files that must exist; default README.md and SECURITY.md.
    #[serde(default)]
    pub(crate) required: Option<Vec<String>>,
    /// Headers every web server config must set; default the four standard ones.
    #[serde(default)]
    pub(crate) headers: Option<Vec<String>>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub(crate) struct Check {
    pub(crate) name: String,
    pub(crate) passed: bool,
    pub(crate) detail: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct Summary {
    pub(crate) total: usize,
    pub(crate) passed: usize,
    pub(crate) failed: usize,
}

#[derive(Debug, Serialize)]
pub(crate) struct Output {
    pub(crate) passed: bool,
    pub(crate) checks: Vec<Check>,
    pub(crate) summary: Summary,
}

pub(crate) fn check(input: &Input) -> Result<Output, AgentError> {
    let files = input.source.load()?;
    let mut checks = vec![license(&files)];
    let required: Vec<&str> = match &input.required {
        Some(r) => r.iter().map(String::as_str).collect(),
        None => DEFAULT_REQUIRED.to_vec(),
    };
    for name in required {
        checks.push(required_file(&files, name));
    }
    let headers: Vec<&str> = match &input.headers {
        Some(h) => h.iter().map(String::as_str).collect(),
        None => DEFAULT_HEADERS.to_vec(),
    };
    checks.extend(security_headers(&files, &headers));
    let passed = checks.iter().filter(|c| c.passed).count();
    Ok(Output {
        passed: passed == checks.len(),
        summary: Summary {
            total: checks.len(),
            passed,
            failed: checks.len() - passed,
        },
        checks,
    })
}

fn license(files: &[File]) -> Check {
    let found = files
        .iter()
        .find(|f| !f.path.contains('/') && LICENSE_NAMES.contains(&f.path.to_lowercase().as_str()));
    Check {
        name: "license".into(),
        passed: found.is_some(),
        detail: match found {
            Some(f) => format!("found {}", f.path),
            None => "no LICENSE, LICENSE.md or COPYING at the root".into(),
        },
    }
}

fn required_file(files: &[File], name: &str) -> Check {
    let found = files.iter().find(|f| {
        f.path == name
            || ALTERNATE_DIRS
                .iter()
                .any(|d| f.path.strip_prefix(d).and_then(|p| p.strip_prefix('/')) == Some(name))
    });
    Check {
        name: format!("required-file:{name}"),
        passed: found.is_some(),
        detail: match found {
            Some(f) => format!("found {}", f.path),
            None => format!("{name} is missing"),
        },
    }
}

/// Whether a file configures HTTP response headers: an nginx-style `.conf` with `add_header`
/// or a `server` block, or a YAML/TOML/JSON file with a `headers` section.
fn is_header_config(file: &File) -> bool {
    let path = file.path.to_lowercase();
    let content = file.content.to_lowercase();
    if path.ends_with(".conf") {
        return content.contains("add_header") || content.contains("server {");
    }
    [".yaml", ".yml", ".toml", ".json"]
        .iter()
        .any(|e| path.ends_with(e))
        && content.contains("headers")
}

fn security_headers(files: &[File], headers: &[&str]) -> Vec<Check> {
    let configs: Vec<&File> = files.iter().filter(|f| is_header_config(f)).collect();
    if configs.is_empty() || headers.is_empty() {
        return vec![Check {
            name: "security-headers".into(),
            passed: true,
            detail: "no web server configuration found".into(),
        }];
    }
    configs
        .into_iter()
        .map(|file| {
            let content = file.content.to_lowercase();
            let missing: Vec<&str> = headers
                .iter()
                .copied()
                .filter(|h| !content.contains(&h.to_lowercase()))
                .collect();
            Check {
                name: format!("security-headers:{}", file.path),
                passed: missing.is_empty(),
                detail: if missing.is_empty() {
                    format!("sets all {} security headers", headers.len())
                } else {
                    format!("missing {}", missing.join(", "))
                },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
