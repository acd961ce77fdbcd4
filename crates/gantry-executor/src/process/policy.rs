//! What a worker lets process agents do: which commands may run
//! (`GANTRY_PROCESS_COMMANDS`), as which user (`GANTRY_PROCESS_USER`), in
//! which directory (a fresh private one, or an allowed `workspace`).

use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The uid and gid process agents run as by default when the worker is root.
pub(crate) const NOBODY: ProcessUser = ProcessUser {
    uid: 65534,
    gid: 65534,
};

/// Errors of a process runtime's configuration, reported at start-up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("GANTRY_PROCESS_COMMANDS entry {0:?} is not an absolute path")]
    NotAbsolute(PathBuf),
    #[error("GANTRY_PROCESS_COMMANDS entry {path:?} cannot be resolved: {reason}")]
    Unresolvable { path: PathBuf, reason: String },
    #[error("GANTRY_PROCESS_COMMANDS entry {0:?} is neither an executable file nor a directory")]
    NotExecutable(PathBuf),
    #[error("GANTRY_PROCESS_USER {0:?} is not UID[:GID]")]
    BadUser(String),
    #[error(
        "GANTRY_PROCESS_USER {wanted} differs from this worker's own user {own}: only a root \
         worker can run agents as another user"
    )]
    NotRoot {
        wanted: ProcessUser,
        own: ProcessUser,
    },
}

/// A uid and gid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessUser {
    pub uid: u32,
    pub gid: u32,
}

impl std::fmt::Display for ProcessUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.uid, self.gid)
    }
}

/// `UID[:GID]`; without a gid, the gid is the uid.
impl FromStr for ProcessUser {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || ConfigError::BadUser(s.to_owned());
        let (uid, gid) = match s.trim().split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (s.trim(), None),
        };
        let uid: u32 = uid.parse().map_err(|_| bad())?;
        let gid: u32 = match gid {
            Some(g) => g.parse().map_err(|_| bad())?,
            None => uid,
        };
        Ok(Self { uid, gid })
    }
}

impl ProcessUser {
    /// The user this process runs as.
    pub fn current() -> Self {
        Self {
            uid: rustix::process::getuid().as_raw(),
            gid: rustix::process::getgid().as_raw(),
        }
    }

    /// Whom agents run as, given what the operator asked for: a root worker
    /// runs them as `wanted` (default [`NOBODY`]); any other worker only as
    /// itself (`None`: no switch), and refuses another user.
    pub fn for_worker(wanted: Option<ProcessUser>) -> Result<Option<ProcessUser>, ConfigError> {
        let own = Self::current();
        if own.uid == 0 {
            return Ok(Some(wanted.unwrap_or(NOBODY)));
        }
        match wanted {
            Some(w) if w != own => Err(ConfigError::NotRoot { wanted: w, own }),
            _ => Ok(None),
        }
    }
}

/// The canonical allow-list: files that may run, and directories under
/// which anything may run.
#[derive(Debug, Clone, Default)]
pub(crate) struct AllowList {
    files: Vec<PathBuf>,
    dirs: Vec<PathBuf>,
}

/// Why a command may not run; the text names the command and the option.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refused {
    #[error(
        "process command {0:?} is not an absolute path; this worker runs only commands listed in \
         GANTRY_PROCESS_COMMANDS"
    )]
    NotAbsolute(String),
    #[error("process command {0:?} is not allowed on this worker (GANTRY_PROCESS_COMMANDS)")]
    NotListed(String),
}

impl AllowList {
    /// Resolves every entry (symlinks included); each must be absolute and
    /// an executable file or a directory.
    pub(crate) fn new(entries: &[PathBuf]) -> Result<Self, ConfigError> {
        use std::os::unix::fs::PermissionsExt;
        let mut list = Self::default();
        for entry in entries.iter().filter(|e| !e.as_os_str().is_empty()) {
            if !entry.is_absolute() {
                return Err(ConfigError::NotAbsolute(entry.clone()));
            }
            let canonical =
                std::fs::canonicalize(entry).map_err(|e| ConfigError::Unresolvable {
                    path: entry.clone(),
                    reason: e.to_string(),
                })?;
            let meta = std::fs::metadata(&canonical).map_err(|e| ConfigError::Unresolvable {
                path: entry.clone(),
                reason: e.to_string(),
            })?;
            if meta.is_dir() {
                list.dirs.push(canonical);
            } else if meta.is_file() && meta.permissions().mode() & 0o111 != 0 {
                list.files.push(canonical);
            } else {
                return Err(ConfigError::NotExecutable(entry.clone()));
            }
        }
        Ok(list)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.files.is_empty() && self.dirs.is_empty()
    }

    /// The canonical path to execute for `argv0`, when it is allowed. A
    /// command that does not exist gets the same answer as one off the
    /// list, so the error never tells which host paths exist.
    pub(crate) fn check(&self, argv0: &str) -> Result<PathBuf, Refused> {
        if !Path::new(argv0).is_absolute() {
            return Err(Refused::NotAbsolute(argv0.to_owned()));
        }
        let refused = || Refused::NotListed(argv0.to_owned());
        let canonical = std::fs::canonicalize(argv0).map_err(|_| refused())?;
        let listed = self.files.contains(&canonical)
            || self
                .dirs
                .iter()
                .any(|d| canonical.starts_with(d) && canonical != *d);
        if listed {
            Ok(canonical)
        } else {
            Err(refused())
        }
    }
}

/// A fresh private working directory for one attempt, owned by the agent's
/// user (mode 0700) and removed when dropped.
pub(crate) fn work_dir(user: Option<ProcessUser>) -> std::io::Result<tempfile::TempDir> {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new().prefix("gantry-work-").tempdir()?;
    if let Some(u) = user {
        std::os::unix::fs::chown(dir.path(), Some(u.uid), Some(u.gid))?;
    }
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn exe(path: &Path) {
        std::fs::write(path, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn only_listed_files_and_what_lies_under_listed_directories_run() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("agents");
        std::fs::create_dir(&dir).unwrap();
        let inside = dir.join("a.sh");
        exe(&inside);
        let single = root.path().join("single.sh");
        exe(&single);
        let other = root.path().join("other.sh");
        exe(&other);
        let list = AllowList::new(&[dir.clone(), single.clone()]).unwrap();
        assert!(!list.is_empty());
        let canon = |p: &Path| std::fs::canonicalize(p).unwrap();
        assert_eq!(list.check(inside.to_str().unwrap()), Ok(canon(&inside)));
        assert_eq!(list.check(single.to_str().unwrap()), Ok(canon(&single)));
        let o = other.to_str().unwrap();
        assert_eq!(list.check(o), Err(Refused::NotListed(o.to_owned())));
        assert!(list.check("/bin/sh").is_err());
        assert!(
            list.check(dir.to_str().unwrap()).is_err(),
            "the directory itself"
        );
        // Missing and unlisted read the same.
        let missing = format!("{}/nope", dir.display());
        assert_eq!(
            list.check(&missing),
            Err(Refused::NotListed(missing.clone()))
        );
        assert!(matches!(list.check("a.sh"), Err(Refused::NotAbsolute(_))));
        // `..` and symlinks are resolved before the comparison.
        let dotdot = format!("{}/../other.sh", dir.display());
        assert!(list.check(&dotdot).is_err());
        let link = dir.join("link");
        std::os::unix::fs::symlink(&other, &link).unwrap();
        assert!(list.check(link.to_str().unwrap()).is_err());
        let msg = list.check(o).unwrap_err().to_string();
        assert!(
            msg.contains(o) && msg.contains("GANTRY_PROCESS_COMMANDS"),
            "{msg}"
        );
    }

    #[test]
    fn bad_entries_are_refused_at_start_up() {
        let root = tempfile::tempdir().unwrap();
        let plain = root.path().join("data.txt");
        std::fs::write(&plain, "x").unwrap();
        assert!(matches!(
            AllowList::new(&["bin".into()]),
            Err(ConfigError::NotAbsolute(_))
        ));
        assert!(matches!(
            AllowList::new(&["/no/such/thing".into()]),
            Err(ConfigError::Unresolvable { .. })
        ));
        assert!(matches!(
            AllowList::new(&[plain]),
            Err(ConfigError::NotExecutable(_))
        ));
        assert!(AllowList::new(&[]).unwrap().is_empty());
    }

    #[test]
    fn users_parse_and_only_root_switches() {
        assert_eq!(
            "1000:100".parse(),
            Ok(ProcessUser {
                uid: 1000,
                gid: 100
            })
        );
        assert_eq!("7".parse(), Ok(ProcessUser { uid: 7, gid: 7 }));
        assert!("x:1".parse::<ProcessUser>().is_err());
        assert!("1:".parse::<ProcessUser>().is_err());
        let own = ProcessUser::current();
        if own.uid == 0 {
            assert_eq!(ProcessUser::for_worker(None), Ok(Some(NOBODY)));
            let u = ProcessUser { uid: 5, gid: 6 };
            assert_eq!(ProcessUser::for_worker(Some(u)), Ok(Some(u)));
        } else {
            assert_eq!(ProcessUser::for_worker(None), Ok(None));
            assert_eq!(ProcessUser::for_worker(Some(own)), Ok(None));
            assert!(ProcessUser::for_worker(Some(NOBODY)).is_err());
        }
    }
}
