//! The scanner's rule table: one regex per rule, its severity, and for secrets the capture
//! group holding the value to mask.

use regex::Regex;

/// How bad a finding is; serialized lowercase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub(crate) const ALL: [Severity; 4] = [Self::Critical, Self::High, Self::Medium, Self::Low];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }
}

/// One detection rule.
pub(crate) struct Rule {
    pub(crate) id: &'static str,
    pub(crate) severity: Severity,
    pub(crate) regex: Regex,
    /// For secret rules, the capture group holding the secret value, masked in excerpts.
    pub(crate) secret_group: Option<usize>,
    /// When set, the rule only applies to files whose name ends with one of these.
    pub(crate) extensions: &'static [&'static str],
}

struct Spec {
    id: &'static str,
    severity: Severity,
    pattern: &'static str,
    secret_group: Option<usize>,
    extensions: &'static [&'static str],
}

const SPECS: &[Spec] = &[
    Spec {
        id: "aws-access-key",
        severity: Severity::Critical,
        pattern: r"\b((?:AKIA|ASIA)[0-9A-Z]{16})\b",
        secret_group: Some(1),
        extensions: &[],
    },
    Spec {
        id: "private-key",
        severity: Severity::Critical,
        pattern: r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----",
        secret_group: None,
        extensions: &[],
    },
    Spec {
        id: "hardcoded-password",
        severity: Severity::High,
        pattern: r#"(?i)\b(?:password|passwd|pwd)["']?\s*[:=]\s*["']([^"'\s]{4,})["']"#,
        secret_group: Some(1),
        extensions: &[],
    },
    Spec {
        id: "generic-secret",
        severity: Severity::High,
        pattern: r#"(?i)\b[a-z0-9_]*(?:api[_-]?key|secret|token|access[_-]?key)[a-z0-9_]*["']?\s*[:=]\s*["']([A-Za-z0-9_\-+/=.]{16,})["']"#,
        secret_group: Some(1),
        extensions: &[],
    },
    Spec {
        id: "eval-exec",
        severity: Severity::High,
        // A call whose argument is not a plain string literal: code built from data.
        pattern: r#"\b(?:eval|exec)\s*\(\s*[^"'\s)]"#,
        secret_group: None,
        extensions: &[".py", ".js", ".ts", ".jsx", ".tsx", ".php", ".rb", ".sh"],
    },
    Spec {
        id: "shell-true",
        severity: Severity::High,
        pattern: r"\bshell\s*=\s*True\b",
        secret_group: None,
        extensions: &[],
    },
    Spec {
        id: "curl-pipe-shell",
        severity: Severity::High,
        pattern: r"\b(?:curl|wget)\b[^|\n]*\|\s*(?:sudo\s+)?(?:ba|z|da)?sh\b",
        secret_group: None,
        extensions: &[],
    },
    Spec {
        id: "tls-verification-disabled",
        severity: Severity::High,
        pattern: r#"(?i)\bverify\s*=\s*False\b|InsecureSkipVerify\s*:\s*true|rejectUnauthorized\s*:\s*false|danger_accept_invalid_certs\s*\(\s*true|NODE_TLS_REJECT_UNAUTHORIZED\s*=\s*["']?0|\bcurl\b.*\s(?:-k|--insecure)\b|ssl_verify_peer\s*=>?\s*false"#,
        secret_group: None,
        extensions: &[],
    },
    Spec {
        id: "rust-unsafe",
        severity: Severity::Medium,
        pattern: r"\bunsafe\s*(?:\{|fn\b|impl\b|trait\b)",
        secret_group: None,
        extensions: &[".rs"],
    },
];

/// Compiles the rule table.
pub(crate) fn rules() -> Result<Vec<Rule>, regex::Error> {
    SPECS
        .iter()
        .map(|s| {
            Ok(Rule {
                id: s.id,
                severity: s.severity,
                regex: Regex::new(s.pattern)?,
                secret_group: s.secret_group,
                extensions: s.extensions,
            })
        })
        .collect()
}

impl Rule {
    pub(crate) fn applies_to(&self, path: &str) -> bool {
        self.extensions.is_empty() || self.extensions.iter().any(|e| path.ends_with(e))
    }
}
