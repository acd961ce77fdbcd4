//! `GANTRY_ALLOWED_MOUNTS`, shared by the `docker` and `process` runtimes:
//! an input's `workspace` path is usable only when it resolves (symlinks and
//! all) under one of the allowed roots. A container mounts it read-only at
//! `/workspace`; a process agent runs in it.

use serde_json::Value;
use std::path::{Component, Path, PathBuf};

/// The allowed roots, canonicalized once; a root that cannot be resolved
/// is dropped with a warning (nothing under it can be allowed anyway).
pub(crate) fn canonical_roots(roots: &[PathBuf]) -> Vec<PathBuf> {
    roots
        .iter()
        .filter_map(|p| match std::fs::canonicalize(p) {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::warn!(path = %p.display(), error = %e, "allowed mount cannot be resolved; ignored");
                None
            }
        })
        .collect()
}

/// The host directory named by the input's string field `workspace`, when it
/// resolves to a path under one of the canonical `allowed` roots. `Err` names
/// the rejected path; a path that does not exist and one outside every root
/// get the same text, so the answer never tells which host paths exist.
pub(crate) fn workspace_mount(
    input: &Value,
    allowed: &[PathBuf],
) -> Result<Option<PathBuf>, String> {
    let Some(Value::String(raw)) = input.get("workspace") else {
        return Ok(None);
    };
    let reject = |why: &str| Err(format!("workspace {raw:?} cannot be mounted: {why}"));
    let path = Path::new(raw);
    if !path.is_absolute() {
        return reject("not an absolute path");
    }
    if path.components().any(|c| c == Component::ParentDir) {
        return reject("'..' is not allowed");
    }
    match std::fs::canonicalize(path) {
        Ok(canonical) if allowed.iter().any(|root| canonical.starts_with(root)) => {
            Ok(Some(canonical))
        }
        _ => reject(NOT_ALLOWED),
    }
}

const NOT_ALLOWED: &str = "not under an allowed mount";

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn workspace_must_resolve_under_an_allowed_root() {
        let root = tempfile::tempdir().unwrap();
        let allowed = canonical_roots(&[root.path().to_owned(), "/no/such/root".into()]);
        assert_eq!(allowed.len(), 1);
        let inside = root.path().join("repo");
        std::fs::create_dir(&inside).unwrap();
        let got = workspace_mount(&json!({"workspace": inside}), &allowed).unwrap();
        assert_eq!(got, Some(std::fs::canonicalize(&inside).unwrap()));
        assert_eq!(
            workspace_mount(&json!({"other": 1}), &allowed).unwrap(),
            None
        );

        let escape = format!("{}/repo/../../etc", root.path().display());
        let err = workspace_mount(&json!({ "workspace": escape }), &allowed).unwrap_err();
        assert!(err.contains("'..'") && err.contains("/etc"), "{err}");
        let err = workspace_mount(&json!({"workspace": "/etc"}), &allowed).unwrap_err();
        assert_eq!(
            err,
            r#"workspace "/etc" cannot be mounted: not under an allowed mount"#
        );
        let err = workspace_mount(&json!({"workspace": "repo"}), &allowed).unwrap_err();
        assert!(err.contains("absolute"), "{err}");

        // A symlink inside the root pointing out of it is caught after resolution.
        let link = root.path().join("link");
        std::os::unix::fs::symlink("/etc", &link).unwrap();
        let err = workspace_mount(&json!({ "workspace": link }), &allowed).unwrap_err();
        assert!(err.contains("not under an allowed mount"), "{err}");
        // No roots at all: nothing is mountable.
        assert!(workspace_mount(&json!({ "workspace": inside }), &[]).is_err());
    }

    #[test]
    fn missing_and_forbidden_paths_get_the_same_error() {
        let root = tempfile::tempdir().unwrap();
        let allowed = canonical_roots(&[root.path().to_owned()]);
        let text = |p: &str| {
            workspace_mount(&json!({ "workspace": p }), &allowed)
                .unwrap_err()
                .replace(p, "PATH")
        };
        let missing_inside = format!("{}/missing", root.path().display());
        let expected = "workspace \"PATH\" cannot be mounted: not under an allowed mount";
        assert_eq!(text("/etc"), expected, "exists, outside");
        assert_eq!(text("/no/such/dir"), expected, "missing, outside");
        assert_eq!(text(&missing_inside), expected, "missing, inside");
    }
}
