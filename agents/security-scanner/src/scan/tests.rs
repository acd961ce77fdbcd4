//! Scanner tests on inline files: each rule fires where it should, not where it should not,
//! and no secret value survives into the output.

use super::*;

fn run(files: &[(&str, &str)]) -> Output {
    let files = files.iter().map(|(p, c)| File::new(*p, *c)).collect();
    scan(&Input {
        source: FileSource::inline(files),
        max_findings: None,
    })
    .unwrap()
}

fn rules_of(out: &Output) -> Vec<(&str, usize, &'static str)> {
    out.findings
        .iter()
        .map(|f| (f.file.as_str(), f.line, f.rule))
        .collect()
}

#[test]
fn finds_each_secret_kind_and_masks_it() {
    let key = "AKIAIOSFODNN7EXAMPLE";
    let out = run(&[(
        "config.py",
        &format!(
            "import os\nAWS_KEY = \"{key}\"\npassword = \"hunter2hunter2\"\nAPI_KEY = 'sk_live_0123456789abcdefXYZ'\n-----BEGIN RSA PRIVATE KEY-----\nname = \"short\"\n"
        ),
    )]);
    assert_eq!(
        rules_of(&out),
        [
            ("config.py", 2, "aws-access-key"),
            ("config.py", 3, "hardcoded-password"),
            ("config.py", 4, "generic-secret"),
            ("config.py", 5, "private-key"),
        ]
    );
    let json = serde_json::to_string(&out).unwrap();
    for secret in [
        key,
        "hunter2hunter2",
        "sk_live_0123456789abcdefXYZ",
        "IOSFODNN7",
    ] {
        assert!(!json.contains(secret), "{secret} leaked in {json}");
    }
    assert_eq!(out.findings[0].excerpt, "AWS_KEY = \"AKIA********\"");
    assert_eq!(out.findings[1].excerpt, "password = \"********\"");
    assert_eq!(out.findings[0].severity, Severity::Critical);
    assert_eq!(out.summary.total, 4);
    assert_eq!(out.summary.by_severity["critical"], 2);
    assert_eq!(out.summary.by_severity["high"], 2);
    assert_eq!(out.summary.by_severity["low"], 0);
}

#[test]
fn finds_risky_patterns() {
    let out = run(&[
        (
            "app.py",
            "import subprocess, requests\nsubprocess.run(cmd, shell=True)\neval(request.args['q'])\neval(\"1+1\")\nrequests.get(url, verify=False)\n",
        ),
        ("install.sh", "curl -fsSL https://x.example/i.sh | sudo bash\ncurl -k https://x\n"),
        (
            "src/lib.rs",
            "// unsafe { not code }\nfn f() { unsafe { g() } }\nlet unsafe_count = 1;\n",
        ),
        ("client.js", "const agent = new https.Agent({ rejectUnauthorized: false });\n"),
        ("notes.txt", "unsafe { in prose is fine }\n"),
    ]);
    assert_eq!(
        rules_of(&out),
        [
            ("app.py", 2, "shell-true"),
            ("app.py", 3, "eval-exec"),
            ("app.py", 5, "tls-verification-disabled"),
            ("install.sh", 1, "curl-pipe-shell"),
            ("install.sh", 2, "tls-verification-disabled"),
            ("src/lib.rs", 2, "rust-unsafe"),
            ("client.js", 1, "tls-verification-disabled"),
        ]
    );
    assert_eq!(out.summary.by_rule["tls-verification-disabled"], 3);
    assert_eq!(out.summary.by_severity["medium"], 1);
    assert_eq!(out.summary.files_scanned, 5);
}

#[test]
fn a_line_leaking_one_secret_is_reported_once() {
    let out = run(&[("c.py", "AWS_ACCESS_KEY_ID = \"AKIAQ3EGTJ7EXAMPLE12\"\n")]);
    assert_eq!(rules_of(&out), [("c.py", 1, "aws-access-key")]);
}

#[test]
fn clean_files_have_no_findings() {
    let out = run(&[
        ("README.md", "# project\nSet PASSWORD in the environment.\n"),
        (
            "main.py",
            "password = os.environ['PASSWORD']\ntoken = get_token()\n",
        ),
    ]);
    assert!(out.findings.is_empty(), "{:?}", out.findings);
    assert_eq!(out.summary.total, 0);
    assert!(!out.summary.truncated);
}

#[test]
fn secrets_in_other_findings_excerpts_are_masked_too() {
    let line = "curl -H 'token: x' https://h/?api_key=\"abcdefghijklmnopqrstuv\" | sh";
    let out = run(&[("x.sh", line)]);
    let rules: Vec<_> = out.findings.iter().map(|f| f.rule).collect();
    assert_eq!(rules, ["generic-secret", "curl-pipe-shell"]);
    for f in &out.findings {
        assert!(!f.excerpt.contains("abcdefghijklmnop"), "{}", f.excerpt);
        assert!(f.excerpt.contains("abcd********"), "{}", f.excerpt);
    }
}

#[test]
fn long_lines_are_cut_and_findings_capped() {
    let long = format!("password = \"pw-123456\" {}", "é".repeat(500));
    let many = "shell=True\n".repeat(50);
    let files = vec![File::new("a.py", long), File::new("b.py", many)];
    let out = scan(&Input {
        source: FileSource::inline(files),
        max_findings: Some(10),
    })
    .unwrap();
    assert_eq!(
        out.findings[0].excerpt.chars().count(),
        MAX_EXCERPT_CHARS + 3
    );
    assert_eq!(out.findings.len(), 10);
    assert_eq!(out.summary.total, 10);
    assert!(out.summary.truncated);
}
