//! Parses the diff with `diffy`'s patch sets and applies each file patch in order.

use diffy::patch_set::{FileOperation, ParseOptions, PatchKind, PatchSet};
use gantry_agent::files::{check_relative, File, FileSource};
use gantry_agent::AgentError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
pub(crate) struct Input {
    #[serde(flatten)]
    pub(crate) source: FileSource,
    /// The unified diff; empty applies nothing.
    #[serde(default)]
    pub(crate) diff: String,
    /// Leading path components to strip, as `patch -p`; default 1 when the diff uses git's
    /// `a/` and `b/` prefixes, else 0.
    #[serde(default)]
    pub(crate) strip: Option<usize>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Output {
    /// Every file the diff created or changed, with its new content, sorted by path.
    pub(crate) files: Vec<File>,
    /// Paths the diff deleted (or renamed away).
    pub(crate) deleted: Vec<String>,
    /// Hunks applied.
    pub(crate) applied: usize,
}

pub(crate) fn patch(input: &Input) -> Result<Output, AgentError> {
    if input.diff.trim().is_empty() {
        return Ok(Output {
            files: Vec::new(),
            deleted: Vec::new(),
            applied: 0,
        });
    }
    let mut tree: BTreeMap<String, String> = input
        .source
        .load()?
        .into_iter()
        .map(|f| (f.path, f.content))
        .collect();
    let git = input.diff.starts_with("diff --git ") || input.diff.contains("\ndiff --git ");
    let options = if git {
        ParseOptions::gitdiff()
    } else {
        ParseOptions::unidiff()
    };
    let mut changed: BTreeMap<String, ()> = BTreeMap::new();
    let mut deleted = Vec::new();
    let mut applied = 0;
    for (index, file_patch) in PatchSet::parse(&input.diff, options).enumerate() {
        let file_patch =
            file_patch.map_err(|e| AgentError::permanent(format!("cannot parse diff: {e}")))?;
        let op = file_patch.operation();
        let strip = input
            .strip
            .unwrap_or_else(|| usize::from(git || has_ab_prefixes(op)));
        let op = op.strip_prefix(strip);
        let (from, to) = match &op {
            FileOperation::Create(p) => (None, Some(p.to_string())),
            FileOperation::Delete(p) => (Some(p.to_string()), None),
            FileOperation::Modify { original, modified } => {
                (Some(original.to_string()), Some(modified.to_string()))
            }
            FileOperation::Rename { from, to } | FileOperation::Copy { from, to } => {
                (Some(from.to_string()), Some(to.to_string()))
            }
        };
        let name = to
            .as_deref()
            .or(from.as_deref())
            .unwrap_or_default()
            .to_owned();
        for path in from.iter().chain(to.iter()) {
            check_relative(path)?;
        }
        let PatchKind::Text(text) = file_patch.patch() else {
            return Err(AgentError::permanent(format!(
                "{name}: binary patches are not supported"
            )));
        };
        let base = match &from {
            None if tree.contains_key(&name) => {
                return Err(AgentError::permanent(format!(
                    "{name}: cannot create, the file already exists"
                )))
            }
            None => String::new(),
            Some(path) => tree
                .get(path)
                .cloned()
                .ok_or_else(|| AgentError::permanent(format!("{path}: file to patch not found")))?,
        };
        let patched = diffy::apply(&base, text).map_err(|e| {
            AgentError::permanent(format!("{name}: {e} (file patch {})", index + 1))
        })?;
        applied += text.hunks().len();
        let moved = matches!(op, FileOperation::Rename { .. } | FileOperation::Delete(_));
        if let (true, Some(from)) = (moved, &from) {
            tree.remove(from);
            changed.remove(from);
            deleted.push(from.clone());
        }
        if let Some(to) = to {
            deleted.retain(|d| d != &to);
            tree.insert(to.clone(), patched);
            changed.insert(to, ());
        }
    }
    if applied == 0 && changed.is_empty() && deleted.is_empty() {
        return Err(AgentError::permanent("diff contains no file patches"));
    }
    let files = changed
        .into_keys()
        .map(|path| {
            let content = tree.remove(&path).unwrap_or_default();
            File { path, content }
        })
        .collect();
    Ok(Output {
        files,
        deleted,
        applied,
    })
}

/// Whether a plain unified diff uses git's `a/` and `b/` path prefixes.
fn has_ab_prefixes(op: &FileOperation<'_, str>) -> bool {
    let a = |p: &str| p.starts_with("a/");
    let b = |p: &str| p.starts_with("b/");
    match op {
        FileOperation::Create(p) => b(p),
        FileOperation::Delete(p) => a(p),
        FileOperation::Modify { original, modified } => a(original) && b(modified),
        FileOperation::Rename { from, to } | FileOperation::Copy { from, to } => a(from) && b(to),
    }
}

#[cfg(test)]
mod tests;
