//! Secrets for one attempt: read from the worker's secrets directory into a
//! private per-attempt directory that is bind-mounted read-only at
//! `/run/secrets` and removed with the attempt. The values are kept only to
//! redact them from logs and errors.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The agent's uid and gid inside the container.
const AGENT_ID: u32 = 65534;

/// Staged secrets; dropping this removes the directory.
#[derive(Debug, Default)]
pub(crate) struct Staged {
    /// Host-private parent (0700) holding the mounted `secrets` directory.
    parent: Option<tempfile::TempDir>,
    mount: Option<PathBuf>,
    values: Vec<String>,
}

impl Staged {
    pub(crate) fn mount_source(&self) -> Option<&Path> {
        self.mount.as_deref()
    }

    pub(crate) fn values(&self) -> Vec<&str> {
        self.values.iter().map(String::as_str).collect()
    }

    /// Length of the longest form a value may take in the log (see
    /// [`crate::protocol::secret_forms`]), the tail margin redaction needs.
    pub(crate) fn longest_form(&self) -> usize {
        self.values
            .iter()
            .flat_map(|v| crate::protocol::secret_forms(v))
            .map(|f| f.len())
            .max()
            .unwrap_or(0)
    }
}

/// Copies each named secret from `dir` into a fresh directory the agent's
/// user can read. `Err` explains which secret is missing and why.
pub(crate) fn stage(dir: Option<&Path>, names: &[String]) -> Result<Staged, String> {
    if names.is_empty() {
        return Ok(Staged::default());
    }
    let Some(dir) = dir else {
        return Err(format!(
            "agent needs secrets ({}) but this worker has no secrets directory (GANTRY_SECRETS_DIR)",
            names.join(", ")
        ));
    };
    let parent = tempfile::Builder::new()
        .prefix("gantry-secrets-")
        .tempdir()
        .map_err(|e| format!("cannot create a secrets directory: {e}"))?;
    // Host-private: the values must not be readable by other host users.
    fs::set_permissions(parent.path(), fs::Permissions::from_mode(0o700))
        .map_err(|e| format!("cannot protect the secrets directory: {e}"))?;
    let mount = parent.path().join("secrets");
    fs::create_dir(&mount).map_err(|e| format!("cannot create a secrets directory: {e}"))?;
    let mut values = Vec::with_capacity(names.len());
    for name in names {
        if !is_plain_name(name) {
            return Err(format!("secret name {name:?} is not a plain file name"));
        }
        let value = fs::read(dir.join(name))
            .map_err(|e| format!("secret {name} is not available on this worker: {e}"))?;
        let file = mount.join(name);
        fs::write(&file, &value).map_err(|e| format!("cannot stage secret {name}: {e}"))?;
        restrict(&file, 0o400, 0o444).map_err(|e| format!("cannot stage secret {name}: {e}"))?;
        values.push(String::from_utf8_lossy(&value).into_owned());
    }
    restrict(&mount, 0o500, 0o555).map_err(|e| format!("cannot stage secrets: {e}"))?;
    Ok(Staged {
        parent: Some(parent),
        mount: Some(mount),
        values,
    })
}

/// Hands `path` to the agent's user with `owned_mode`; a worker that may not
/// chown (not root) falls back to `shared_mode`, readable by everyone (the
/// parent directory still keeps other host users out).
fn restrict(path: &Path, owned_mode: u32, shared_mode: u32) -> std::io::Result<()> {
    let mode = match std::os::unix::fs::chown(path, Some(AGENT_ID), Some(AGENT_ID)) {
        Ok(()) => owned_mode,
        Err(_) => shared_mode,
    };
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0'])
}

impl Drop for Staged {
    fn drop(&mut self) {
        // A 0500 directory cannot be emptied even by its owner unless root;
        // give write back first so TempDir's removal succeeds.
        if let Some(mount) = &self.mount {
            let _ = fs::set_permissions(mount, fs::Permissions::from_mode(0o700));
        }
        if let Some(parent) = self.parent.take() {
            if let Err(e) = parent.close() {
                tracing::warn!(error = %e, "cannot remove a staged secrets directory");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_readable_copies_and_removes_them() {
        let src = tempfile::tempdir().unwrap();
        fs::write(src.path().join("TOKEN"), "abc\n").unwrap();
        let staged = stage(Some(src.path()), &["TOKEN".to_owned()]).unwrap();
        let mount = staged.mount_source().unwrap().to_owned();
        assert_eq!(fs::read(mount.join("TOKEN")).unwrap(), b"abc\n");
        assert_eq!(staged.values(), vec!["abc\n"]);
        assert!(staged.longest_form() >= 4);
        let mode = fs::metadata(&mount).unwrap().permissions().mode() & 0o777;
        assert!(mode == 0o500 || mode == 0o555, "{mode:o}");
        let parent = mount.parent().unwrap().to_owned();
        let parent_mode = fs::metadata(&parent).unwrap().permissions().mode() & 0o777;
        assert_eq!(parent_mode, 0o700);
        drop(staged);
        assert!(!parent.exists());
    }

    #[test]
    fn missing_secret_or_directory_or_bad_name_is_an_error() {
        let src = tempfile::tempdir().unwrap();
        let err = stage(Some(src.path()), &["NOPE".to_owned()]).unwrap_err();
        assert!(err.contains("secret NOPE is not available"), "{err}");
        let err = stage(None, &["A".to_owned()]).unwrap_err();
        assert!(err.contains("GANTRY_SECRETS_DIR"), "{err}");
        let err = stage(Some(src.path()), &["../etc/passwd".to_owned()]).unwrap_err();
        assert!(err.contains("not a plain file name"), "{err}");
        assert!(stage(None, &[]).unwrap().mount_source().is_none());
    }
}
