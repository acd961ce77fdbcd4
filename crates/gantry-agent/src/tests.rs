//! Unit tests for the SDK: exit codes, stdout discipline, context and secrets, file sources.

use super::*;
use crate::files::{File, FileSource};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;

#[derive(Deserialize)]
struct Input {
    n: i64,
}

fn ctx() -> Context {
    Context::from_lookup(|_| None)
}

fn call(
    stdin: &str,
    agent: impl FnOnce(Input, &Context) -> Result<Value, AgentError>,
) -> (u8, String, String) {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let code = run_with(stdin.as_bytes(), &mut out, &mut err, &ctx(), agent);
    (
        code,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

#[test]
fn success_writes_exactly_one_json_value() {
    let (code, out, err) = call(r#"{"n": 41}"#, |i, _| Ok(json!({"n": i.n + 1})));
    assert_eq!(code, 0);
    assert_eq!(out, "{\"n\":42}\n");
    assert_eq!(err, "");
    let mut stream = serde_json::Deserializer::from_str(&out).into_iter::<Value>();
    assert_eq!(stream.next().unwrap().unwrap(), json!({"n": 42}));
    assert!(stream.next().is_none());
}

#[test]
fn bad_input_is_permanent_and_agent_not_called() {
    for bad in ["", "not json", r#"{"n": "x"}"#, r#"{"n": 1} {"n": 2}"#] {
        let (code, out, err) = call(bad, |_, _| panic!("agent must not run on {bad:?}"));
        assert_eq!(code, EXIT_PERMANENT, "input {bad:?}");
        assert_eq!(out, "", "nothing on stdout for {bad:?}");
        assert!(err.starts_with("permanent failure: invalid input"), "{err}");
    }
}

#[test]
fn oversized_input_is_permanent() {
    let big = " ".repeat(MAX_INPUT_BYTES as usize + 1);
    let (code, out, err) = call(&big, |_, _| panic!("agent must not run"));
    assert_eq!(code, EXIT_PERMANENT);
    assert_eq!(out, "");
    assert!(err.contains("larger than"), "{err}");
}

#[test]
fn agent_errors_map_to_exit_codes_and_stderr() {
    let (code, out, err) = call(r#"{"n":1}"#, |_, _| {
        Err(AgentError::permanent("no such repo"))
    });
    assert_eq!((code, out.as_str()), (78, ""));
    assert_eq!(err, "permanent failure: no such repo\n");

    let (code, out, err) = call(r#"{"n":1}"#, |_, _| {
        Err(AgentError::retryable("upstream busy"))
    });
    assert_eq!((code, out.as_str()), (1, ""));
    assert_eq!(err, "retryable failure: upstream busy\n");
}

#[test]
fn unserializable_output_is_permanent_with_empty_stdout() {
    let mut out = Vec::new();
    let mut err = Vec::new();
    // JSON object keys must be strings; a map keyed by tuples cannot be serialized.
    let code = run_with(
        r#"{"n":1}"#.as_bytes(),
        &mut out,
        &mut err,
        &ctx(),
        |_: Input, _| Ok(HashMap::from([((1, 2), 3)])),
    );
    assert_eq!(code, EXIT_PERMANENT);
    assert!(out.is_empty());
    assert!(String::from_utf8(err)
        .unwrap()
        .contains("cannot serialize output"));
}

#[test]
fn context_reads_gantry_variables() {
    let vars = HashMap::from([
        ("GANTRY_RUN_ID", "r1"),
        ("GANTRY_NODE_ID", "scan"),
        ("GANTRY_ATTEMPT", "3"),
        ("GANTRY_IDEMPOTENCY_KEY", "r1:scan"),
        ("GANTRY_SECRETS_PATH", "/tmp/s"),
    ]);
    let ctx = Context::from_lookup(|k| vars.get(k).map(|v| v.to_string()));
    assert_eq!(ctx.run_id, "r1");
    assert_eq!(ctx.node_id, "scan");
    assert_eq!(ctx.attempt, 3);
    assert_eq!(ctx.idempotency_key, "r1:scan");
    assert_eq!(ctx.secrets_path, std::path::PathBuf::from("/tmp/s"));

    let empty = Context::from_lookup(|k| (k == "GANTRY_ATTEMPT").then(|| "x".to_owned()));
    assert_eq!(empty.attempt, 0);
    assert_eq!(empty.run_id, "");
    assert_eq!(empty.secrets_path, std::path::PathBuf::from("/run/secrets"));
}

#[test]
fn secrets_are_read_from_files_and_names_cannot_escape() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("SLACK_WEBHOOK_URL"), "http://hook\n").unwrap();
    std::fs::write(dir.path().join("EMPTY"), "").unwrap();
    std::fs::write(dir.path().join("BIG"), "x".repeat(70 * 1024)).unwrap();
    let outside = dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(dir.path().join("TOP"), "top-secret").unwrap();
    let path = outside.to_str().unwrap().to_owned();
    let ctx = Context::from_lookup(|k| (k == "GANTRY_SECRETS_PATH").then(|| path.clone()));
    assert_eq!(ctx.secret("TOP"), None, "not in the secrets dir");
    assert_eq!(ctx.secret("../TOP"), None, "traversal refused");

    let path = dir.path().to_str().unwrap().to_owned();
    let ctx = Context::from_lookup(|k| (k == "GANTRY_SECRETS_PATH").then(|| path.clone()));
    assert_eq!(
        ctx.secret("SLACK_WEBHOOK_URL").as_deref(),
        Some("http://hook")
    );
    assert_eq!(ctx.secret("TOP").as_deref(), Some("top-secret"));
    assert_eq!(ctx.secret("MISSING"), None);
    assert_eq!(ctx.secret("EMPTY"), None);
    assert_eq!(ctx.secret("BIG"), None);
    assert_eq!(ctx.secret("outside"), None, "a directory is not a secret");
    assert_eq!(ctx.secret(""), None);
    assert_eq!(ctx.secret(".."), None);
}

#[test]
fn inline_files_win_and_paths_are_checked() {
    let src: FileSource = serde_json::from_value(
        json!({"root": "/nope", "files": [{"path": "a.rs", "content": "x"}]}),
    )
    .unwrap();
    assert_eq!(src.load().unwrap(), vec![File::new("a.rs", "x")]);

    for bad in ["", "/etc/passwd", "../up", "a/../../up"] {
        let src = FileSource::inline(vec![File::new(bad, "x")]);
        let err = src.load().unwrap_err();
        assert!(matches!(err, AgentError::Permanent(_)), "{bad:?}: {err:?}");
    }
}

#[test]
fn root_defaults_and_path_alias() {
    assert_eq!(
        FileSource::default().root_dir(),
        std::path::PathBuf::from("/workspace")
    );
    let src: FileSource = serde_json::from_value(json!({"path": "repo"})).unwrap();
    assert_eq!(src.root_dir(), std::path::PathBuf::from("/workspace/repo"));
    let src: FileSource = serde_json::from_value(json!({"root": "/data"})).unwrap();
    assert_eq!(src.root_dir(), std::path::PathBuf::from("/data"));
}

#[test]
fn workspace_host_path_is_read_when_nothing_is_mounted() {
    // Where a /workspace mount exists (inside a container) it wins over the host path.
    let mounted = std::path::Path::new("/workspace").is_dir();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), "hi").unwrap();
    let host = dir.path().to_str().unwrap().to_owned();
    let src: FileSource = serde_json::from_value(json!({"workspace": host})).unwrap();
    if mounted {
        assert_eq!(src.root_dir(), std::path::PathBuf::from("/workspace"));
    } else {
        assert_eq!(src.root_dir(), dir.path());
        assert_eq!(src.load().unwrap(), vec![File::new("a.txt", "hi")]);
    }
    let src: FileSource =
        serde_json::from_value(json!({"workspace": host, "root": "/data"})).unwrap();
    assert_eq!(
        src.root_dir(),
        std::path::PathBuf::from("/data"),
        "root wins"
    );
}

#[test]
fn directory_tree_is_read_sorted_and_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("src/nested")).unwrap();
    std::fs::create_dir_all(root.join(".git")).unwrap();
    std::fs::create_dir_all(root.join("target")).unwrap();
    std::fs::write(root.join("README.md"), "# hi").unwrap();
    std::fs::write(root.join("src/main.rs"), "fn main() {}").unwrap();
    std::fs::write(root.join("src/nested/x.py"), "print(1)").unwrap();
    std::fs::write(root.join(".git/config"), "[core]").unwrap();
    std::fs::write(root.join("target/out.rs"), "built").unwrap();
    std::fs::write(root.join("image.bin"), [0xff, 0xfe, 0x00]).unwrap();
    std::fs::write(
        root.join("huge.txt"),
        "a".repeat(files::MAX_FILE_BYTES as usize + 1),
    )
    .unwrap();
    std::os::unix::fs::symlink("/etc", root.join("etc-link")).unwrap();

    let src = FileSource {
        root: Some(root.to_str().unwrap().to_owned()),
        files: None,
        workspace: None,
    };
    let paths: Vec<_> = src.load().unwrap().into_iter().map(|f| f.path).collect();
    assert_eq!(paths, ["README.md", "src/main.rs", "src/nested/x.py"]);

    let missing = FileSource {
        root: Some(root.join("missing").to_str().unwrap().to_owned()),
        files: None,
        workspace: None,
    };
    assert!(matches!(missing.load(), Err(AgentError::Permanent(_))));
}
