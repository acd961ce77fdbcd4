//! Compliance tests on inline files.

use super::*;

fn run(files: &[(&str, &str)], required: Option<&[&str]>) -> Output {
    check(&Input {
        source: FileSource::inline(files.iter().map(|(p, c)| File::new(*p, *c)).collect()),
        required: required.map(|r| r.iter().map(|s| s.to_string()).collect()),
        headers: None,
    })
    .unwrap()
}

fn by_name<'a>(out: &'a Output, name: &str) -> &'a Check {
    out.checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check {name} in {:?}", out.checks))
}

const GOOD_NGINX: &str = "server {\n  listen 443 ssl;\n  add_header Content-Security-Policy \"default-src 'self'\";\n  add_header Strict-Transport-Security \"max-age=63072000\" always;\n  add_header X-Content-Type-Options nosniff;\n  add_header X-Frame-Options DENY;\n}\n";

#[test]
fn compliant_repo_passes_every_check() {
    let out = run(
        &[
            ("LICENSE", "Apache-2.0"),
            ("README.md", "# x"),
            (".github/SECURITY.md", "report to security@"),
            ("deploy/nginx.conf", GOOD_NGINX),
            (".github/workflows/ci.yml", "on: push\njobs: {}\n"),
        ],
        None,
    );
    assert!(out.passed, "{:?}", out.checks);
    assert_eq!(by_name(&out, "license").detail, "found LICENSE");
    assert_eq!(
        by_name(&out, "required-file:SECURITY.md").detail,
        "found .github/SECURITY.md"
    );
    assert!(by_name(&out, "security-headers:deploy/nginx.conf").passed);
    assert_eq!(
        (out.summary.total, out.summary.passed, out.summary.failed),
        (4, 4, 0)
    );
}

#[test]
fn missing_licence_files_and_headers_fail_with_details() {
    let weak = GOOD_NGINX.replace("  add_header X-Frame-Options DENY;\n", "");
    let yaml = "ingress:\n  headers:\n    X-Frame-Options: DENY\n";
    let out = run(
        &[
            ("README.md", "# x"),
            ("src/LICENSE", "a licence not at the root does not count"),
            ("nginx/site.conf", &weak),
            ("k8s/ingress.yaml", yaml),
        ],
        None,
    );
    assert!(!out.passed);
    assert!(!by_name(&out, "license").passed);
    assert!(by_name(&out, "required-file:README.md").passed);
    let sec = by_name(&out, "required-file:SECURITY.md");
    assert_eq!(
        (sec.passed, sec.detail.as_str()),
        (false, "SECURITY.md is missing")
    );
    let site = by_name(&out, "security-headers:nginx/site.conf");
    assert_eq!(
        (site.passed, site.detail.as_str()),
        (false, "missing X-Frame-Options")
    );
    let ing = by_name(&out, "security-headers:k8s/ingress.yaml");
    assert_eq!(
        ing.detail,
        "missing Content-Security-Policy, Strict-Transport-Security, X-Content-Type-Options"
    );
    assert_eq!((out.summary.total, out.summary.failed), (5, 4));
}

#[test]
fn custom_required_list_and_no_config() {
    let out = run(
        &[("COPYING", "GPL"), ("CHANGELOG.md", "")],
        Some(&["CHANGELOG.md"]),
    );
    assert!(out.passed, "{:?}", out.checks);
    assert_eq!(out.checks.len(), 3);
    assert_eq!(
        by_name(&out, "security-headers").detail,
        "no web server configuration found"
    );
}

#[test]
fn empty_workspace_fails() {
    let out = run(&[], None);
    assert!(!out.passed);
    assert_eq!(out.summary.failed, 3);
}
