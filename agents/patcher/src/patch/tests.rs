//! Patcher tests on inline files: plain and git diffs, creates and deletes, failing hunks.

use super::*;

fn run(files: &[(&str, &str)], diff: &str) -> Result<Output, AgentError> {
    patch(&Input {
        source: FileSource::inline(files.iter().map(|(p, c)| File::new(*p, *c)).collect()),
        diff: diff.into(),
        strip: None,
    })
}

const CONFIG: &str = "import os\nAWS_KEY = \"AKIAIOSFODNN7EXAMPLE\"\nDEBUG = True\n\ndef connect():\n    return os.environ['DB']\n";

#[test]
fn applies_a_plain_unified_diff_with_two_hunks() {
    let diff = "--- a/app/config.py\n+++ b/app/config.py\n@@ -1,3 +1,3 @@\n import os\n-AWS_KEY = \"AKIAIOSFODNN7EXAMPLE\"\n+AWS_KEY = os.environ[\"AWS_ACCESS_KEY_ID\"]\n DEBUG = True\n@@ -5,2 +5,3 @@\n def connect():\n+    \"\"\"Connect using DB from the environment.\"\"\"\n     return os.environ['DB']\n";
    let out = run(&[("app/config.py", CONFIG), ("README.md", "# r")], diff).unwrap();
    assert_eq!(out.applied, 2);
    assert_eq!(out.files.len(), 1, "only touched files are returned");
    assert_eq!(out.files[0].path, "app/config.py");
    assert_eq!(
        out.files[0].content,
        "import os\nAWS_KEY = os.environ[\"AWS_ACCESS_KEY_ID\"]\nDEBUG = True\n\ndef connect():\n    \"\"\"Connect using DB from the environment.\"\"\"\n    return os.environ['DB']\n"
    );
}

#[test]
fn applies_a_git_diff_that_creates_modifies_and_deletes() {
    let diff = "diff --git a/SECURITY.md b/SECURITY.md\nnew file mode 100644\n--- /dev/null\n+++ b/SECURITY.md\n@@ -0,0 +1,2 @@\n+# Security\n+Report issues to security@example.com\ndiff --git a/old.txt b/old.txt\ndeleted file mode 100644\n--- a/old.txt\n+++ /dev/null\n@@ -1 +0,0 @@\n-gone\ndiff --git a/README.md b/README.md\n--- a/README.md\n+++ b/README.md\n@@ -1 +1,2 @@\n # r\n+See SECURITY.md\n";
    let out = run(&[("README.md", "# r\n"), ("old.txt", "gone\n")], diff).unwrap();
    assert_eq!(out.applied, 3);
    let got: Vec<_> = out
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.content.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("README.md", "# r\nSee SECURITY.md\n"),
            (
                "SECURITY.md",
                "# Security\nReport issues to security@example.com\n"
            ),
        ]
    );
    assert_eq!(out.deleted, ["old.txt"]);
}

#[test]
fn a_hunk_that_does_not_apply_fails_permanently_naming_file_and_hunk() {
    let diff = "--- a/app/config.py\n+++ b/app/config.py\n@@ -2,2 +2,2 @@\n AWS_KEY = \"AKIAIOSFODNN7EXAMPLE\"\n-DEBUG = True\n+DEBUG = False\n@@ -5,2 +5,2 @@\n-def nope():\n+def yes():\n     return os.environ['DB']\n";
    let err = run(&[("app/config.py", CONFIG)], diff).unwrap_err();
    let AgentError::Permanent(msg) = err else {
        panic!("{err:?}")
    };
    assert!(
        msg.starts_with("app/config.py: error applying hunk #"),
        "{msg}"
    );
}

#[test]
fn missing_targets_existing_creates_and_escaping_paths_fail() {
    let modify = "--- a/nope.py\n+++ b/nope.py\n@@ -1 +1 @@\n-a\n+b\n";
    let err = run(&[], modify).unwrap_err();
    assert_eq!(
        err,
        AgentError::permanent("nope.py: file to patch not found")
    );

    let create = "--- /dev/null\n+++ b/x.txt\n@@ -0,0 +1 @@\n+x\n";
    let err = run(&[("x.txt", "old\n")], create).unwrap_err();
    assert_eq!(
        err,
        AgentError::permanent("x.txt: cannot create, the file already exists")
    );

    let escape = "--- /dev/null\n+++ b/../../etc/cron.d/x\n@@ -0,0 +1 @@\n+x\n";
    let err = run(&[], escape).unwrap_err();
    assert!(matches!(err, AgentError::Permanent(m) if m.contains("inside the workspace")));
}

#[test]
fn empty_diff_applies_nothing_and_junk_is_rejected() {
    let out = run(&[], "").unwrap();
    assert_eq!((out.applied, out.files.len()), (0, 0));
    let err = run(&[], "this is not a diff\n").unwrap_err();
    assert!(matches!(err, AgentError::Permanent(_)), "{err:?}");
}

#[test]
fn strip_zero_keeps_paths() {
    let diff = "--- a/f\n+++ a/f\n@@ -1 +1 @@\n-x\n+y\n";
    let out = patch(&Input {
        source: FileSource::inline(vec![File::new("a/f", "x\n")]),
        diff: diff.into(),
        strip: Some(0),
    })
    .unwrap();
    assert_eq!(out.files, [File::new("a/f", "y\n")]);
}
