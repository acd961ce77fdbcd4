//! Secrets for one attempt, shared by the `docker` and `process` runtimes:
//! read from the worker's secrets directory into a private per-attempt
//! directory (bind-mounted read-only at `/run/secrets` for a container, named
//! by `GANTRY_SECRETS_PATH` for a process) and removed with the attempt. The
//! values are kept only to redact them from logs, errors and outputs.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Who reads the staged files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Reader {
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    /// The reader is a host process (not a container with only the inner
    /// directory mounted), so it must be able to traverse the parent too.
    pub(crate) on_host: bool,
}

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

/// Copies each named secret from `dir` into a fresh directory `reader` can
/// read. `Err` explains which secret is missing and why (never a value).
pub(crate) fn stage(
    dir: Option<&Path>,
    names: &[String],
    reader: Reader,
) -> Result<Staged, String> {
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
    // Host-private: the values must not be readable by other host users. A
    // host process reader owns it (a container only sees the inner mount).
    if reader.on_host {
        std::os::unix::fs::chown(parent.path(), Some(reader.uid), Some(reader.gid))
            .map_err(|e| format!("cannot hand the secrets directory to the agent's user: {e}"))?;
    }
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
        restrict(&file, reader, 0o400, 0o444)
            .map_err(|e| format!("cannot stage secret {name}: {e}"))?;
        values.push(String::from_utf8_lossy(&value).into_owned());
    }
    restrict(&mount, reader, 0o500, 0o555).map_err(|e| format!("cannot stage secrets: {e}"))?;
    Ok(Staged {
        parent: Some(parent),
        mount: Some(mount),
        values,
    })
}

/// Hands `path` to the reader with `owned_mode`; a worker that may not
/// chown (not root) falls back to `shared_mode`, readable by everyone (the
/// parent directory still keeps other host users out).
fn restrict(path: &Path, reader: Reader, owned_mode: u32, shared_mode: u32) -> std::io::Result<()> {
    let mode = match std::os::unix::fs::chown(path, Some(reader.uid), Some(reader.gid)) {
        Ok(()) => owned_mode,
        Err(_) => shared_mode,
    };
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

pub(crate) fn is_plain_name(name: &str) -> bool {
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

    const READER: Reader = Reader {
        uid: 65534,
        gid: 65534,
        on_host: false,
    };

    #[test]
    fn stages_readable_copies_and_removes_them() {
        let src = tempfile::tempdir().unwrap();
        fs::write(src.path().join("TOKEN"), "abc\n").unwrap();
        let staged = stage(Some(src.path()), &["TOKEN".to_owned()], READER).unwrap();
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
        let err = stage(Some(src.path()), &["NOPE".to_owned()], READER).unwrap_err();
        assert!(err.contains("secret NOPE is not available"), "{err}");
        let err = stage(None, &["A".to_owned()], READER).unwrap_err();
        assert!(err.contains("GANTRY_SECRETS_DIR"), "{err}");
        let err = stage(Some(src.path()), &["../etc/passwd".to_owned()], READER).unwrap_err();
        assert!(err.contains("not a plain file name"), "{err}");
        assert!(stage(None, &[], READER).unwrap().mount_source().is_none());
    }
}
