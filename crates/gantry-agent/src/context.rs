//! The run context an agent sees: ids and attempt from `GANTRY_*` variables, and secrets read
//! from files under `/run/secrets`.

use std::path::PathBuf;

/// Where secrets are mounted inside an agent's container.
pub const DEFAULT_SECRETS_PATH: &str = "/run/secrets";

/// Largest secret value read; a bigger file is treated as absent rather than read into memory.
const MAX_SECRET_BYTES: u64 = 64 * 1024;

/// What the worker tells an agent about the attempt it is running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    /// `GANTRY_RUN_ID`, empty when unset (e.g. an agent run by hand).
    pub run_id: String,
    /// `GANTRY_NODE_ID`, empty when unset.
    pub node_id: String,
    /// `GANTRY_ATTEMPT`, 1-based; 0 when unset or not a number.
    pub attempt: u32,
    /// `GANTRY_IDEMPOTENCY_KEY`: run id + node id, the same on every attempt. Use it to make
    /// side effects (a webhook, a ticket) happen once even when the attempt is retried.
    pub idempotency_key: String,
    /// Directory holding one file per secret; `GANTRY_SECRETS_PATH` overrides the default.
    pub secrets_path: PathBuf,
}

impl Context {
    /// Reads the context from the process environment.
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Builds a context from any variable lookup, so tests need not touch the process
    /// environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let var = |name: &str| lookup(name).unwrap_or_default();
        Self {
            run_id: var("GANTRY_RUN_ID"),
            node_id: var("GANTRY_NODE_ID"),
            attempt: var("GANTRY_ATTEMPT").trim().parse().unwrap_or(0),
            idempotency_key: var("GANTRY_IDEMPOTENCY_KEY"),
            secrets_path: lookup("GANTRY_SECRETS_PATH")
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_SECRETS_PATH)),
        }
    }

    /// The secret `name`, read from `<secrets_path>/<name>` with trailing newlines removed.
    ///
    /// `None` when the secret is not mounted, empty, unreadable, too large, or when `name` is
    /// not a plain file name (so `../etc/passwd` can never be read through this call).
    pub fn secret(&self, name: &str) -> Option<String> {
        if !is_plain_name(name) {
            return None;
        }
        let path = self.secrets_path.join(name);
        let meta = std::fs::metadata(&path).ok()?;
        if !meta.is_file() || meta.len() > MAX_SECRET_BYTES {
            return None;
        }
        let value = std::fs::read_to_string(&path).ok()?;
        let value = value.trim_end_matches(['\r', '\n']);
        (!value.is_empty()).then(|| value.to_owned())
    }
}

fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}
