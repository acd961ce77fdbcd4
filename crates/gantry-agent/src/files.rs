//! The files an agent works on: given inline in its input (`files: [{path, content}]`) or read
//! from a directory (`root`, default the read-only mount `/workspace`), with hard bounds.

use crate::AgentError;
use serde::{Deserialize, Serialize};
use std::path::{Component, Path, PathBuf};

/// Where a workspace is mounted inside an agent's container.
pub const DEFAULT_ROOT: &str = "/workspace";
/// Most files read from a directory; more is a permanent failure.
pub const MAX_FILES: usize = 10_000;
/// Files larger than this are skipped (minified bundles, data); they are rarely source.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;
/// Most bytes read from a directory in total; more is a permanent failure.
pub const MAX_TOTAL_BYTES: u64 = 64 * 1024 * 1024;
/// Directory names never descended into: VCS metadata and build or dependency output.
pub const SKIPPED_DIRS: &[&str] = &[".git", ".hg", ".svn", "target", "node_modules"];

/// One text file, its path relative to the workspace root with `/` separators.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct File {
    pub path: String,
    pub content: String,
}

impl File {
    /// A file from a path and its content.
    pub fn new(path: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            content: content.into(),
        }
    }

    /// The file name: the last path segment.
    pub fn name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }
}

/// The part of an agent's input that says where its files are; embed it with
/// `#[serde(flatten)]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct FileSource {
    /// Directory to read when `files` is absent. A relative path is taken under
    /// [`DEFAULT_ROOT`]. `path` is accepted as another name for it.
    #[serde(default, alias = "path")]
    pub root: Option<String>,
    /// Inline files; when present (even empty) no directory is read.
    #[serde(default)]
    pub files: Option<Vec<File>>,
    /// The host directory the `docker` runtime bind-mounts read-only at [`DEFAULT_ROOT`].
    /// Inside a container the mount is read; under the `process` runtime, where nothing is
    /// mounted, this host path is read directly.
    #[serde(default)]
    pub workspace: Option<String>,
}

impl FileSource {
    /// Inline files.
    pub fn inline(files: Vec<File>) -> Self {
        Self {
            root: None,
            files: Some(files),
            workspace: None,
        }
    }

    /// The directory this source reads when it has no inline files.
    pub fn root_dir(&self) -> PathBuf {
        match self.root.as_deref().filter(|r| !r.is_empty()) {
            None => match self
                .workspace
                .as_deref()
                .filter(|w| Path::new(w).is_absolute())
            {
                Some(host) if !Path::new(DEFAULT_ROOT).is_dir() => PathBuf::from(host),
                _ => PathBuf::from(DEFAULT_ROOT),
            },
            Some(r) if Path::new(r).is_absolute() => PathBuf::from(r),
            Some(r) => Path::new(DEFAULT_ROOT).join(r),
        }
    }

    /// The files: the inline ones (paths checked) or every text file under the root, sorted
    /// by path.
    pub fn load(&self) -> Result<Vec<File>, AgentError> {
        match &self.files {
            Some(files) => {
                for f in files {
                    check_relative(&f.path)?;
                }
                Ok(files.clone())
            }
            None => read_dir_tree(&self.root_dir()),
        }
    }
}

/// Rejects paths that are empty, absolute or climb out of the workspace with `..`.
pub fn check_relative(path: &str) -> Result<(), AgentError> {
    let p = Path::new(path);
    let ok = !path.is_empty()
        && p.components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if ok {
        Ok(())
    } else {
        Err(AgentError::permanent(format!(
            "file path {path:?} must be relative and stay inside the workspace"
        )))
    }
}

/// Reads every UTF-8 file under `root`, never following symlinks, skipping [`SKIPPED_DIRS`],
/// binary files and files over [`MAX_FILE_BYTES`].
pub fn read_dir_tree(root: &Path) -> Result<Vec<File>, AgentError> {
    let meta = std::fs::metadata(root)
        .map_err(|e| AgentError::permanent(format!("cannot read root {}: {e}", root.display())))?;
    if !meta.is_dir() {
        return Err(AgentError::permanent(format!(
            "root {} is not a directory",
            root.display()
        )));
    }
    let mut files = Vec::new();
    let mut total: u64 = 0;
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| AgentError::permanent(format!("cannot list {}: {e}", dir.display())))?;
        for entry in entries {
            let entry = entry.map_err(|e| {
                AgentError::permanent(format!("cannot list {}: {e}", dir.display()))
            })?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let child = rel.join(name);
            // DirEntry::file_type does not follow symlinks, so a link never leads outside.
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                if !SKIPPED_DIRS.contains(&name) {
                    stack.push(child);
                }
                continue;
            }
            if !kind.is_file() {
                continue;
            }
            let Ok(meta) = entry.metadata() else { continue };
            if meta.len() > MAX_FILE_BYTES {
                continue;
            }
            if files.len() >= MAX_FILES {
                return Err(AgentError::permanent(format!(
                    "workspace has more than {MAX_FILES} files"
                )));
            }
            total += meta.len();
            if total > MAX_TOTAL_BYTES {
                return Err(AgentError::permanent(format!(
                    "workspace has more than {MAX_TOTAL_BYTES} bytes of files"
                )));
            }
            let Ok(bytes) = std::fs::read(entry.path()) else {
                continue;
            };
            let Ok(content) = String::from_utf8(bytes) else {
                continue;
            };
            let path = child
                .components()
                .filter_map(|c| c.as_os_str().to_str())
                .collect::<Vec<_>>()
                .join("/");
            files.push(File { path, content });
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}
