//! Secret bindings (`GANTRY_SECRET_BINDINGS`): which agent may read which
//! secret names. An agent reads only secrets bound to it by name; with no
//! bindings no agent gets any secret, whatever its definition lists.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

/// A bad `GANTRY_SECRET_BINDINGS` entry, or a secret an agent may not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindingError {
    #[error("secret binding {entry:?} is not AGENT=NAME[,NAME...]")]
    Malformed { entry: String },
    #[error("secret binding {entry:?}: agent name {agent:?} is not a valid agent name")]
    BadAgent { entry: String, agent: String },
    #[error("secret binding {entry:?}: secret name {name:?} is not a plain file name")]
    BadSecret { entry: String, name: String },
    #[error("secret binding {entry:?} binds no secret name")]
    Empty { entry: String },
    #[error("agent {agent:?} is bound twice in GANTRY_SECRET_BINDINGS")]
    Duplicate { agent: String },
    /// The one an attempt sees: names the agent and the secret, never a value.
    #[error(
        "agent {agent:?} may not read secret {secret:?}: it is not bound to it on this worker \
         (GANTRY_SECRET_BINDINGS)"
    )]
    NotBound { agent: String, secret: String },
}

/// Agent name to the secret names it may read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretBindings {
    by_agent: BTreeMap<String, BTreeSet<String>>,
}

impl SecretBindings {
    /// Nothing bound: no agent gets any secret.
    pub fn none() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.by_agent.is_empty()
    }

    /// `Ok` when every name in `secrets` is bound to `agent`; else the first
    /// one that is not.
    pub fn check(&self, agent: &str, secrets: &[String]) -> Result<(), BindingError> {
        let bound = self.by_agent.get(agent);
        match secrets
            .iter()
            .find(|s| !bound.is_some_and(|b| b.contains(s.as_str())))
        {
            None => Ok(()),
            Some(secret) => Err(BindingError::NotBound {
                agent: agent.to_owned(),
                secret: secret.clone(),
            }),
        }
    }

    /// The secret names bound to `agent`.
    pub fn bound_to(&self, agent: &str) -> impl Iterator<Item = &str> {
        self.by_agent
            .get(agent)
            .into_iter()
            .flatten()
            .map(String::as_str)
    }
}

/// `AGENT=NAME[,NAME...]` entries separated by `;`, e.g.
/// `notifier=SLACK_WEBHOOK_URL;deployer=AWS_KEY,AWS_SECRET`. Whitespace
/// around names is ignored; an empty string binds nothing.
impl FromStr for SecretBindings {
    type Err = BindingError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut by_agent = BTreeMap::new();
        for entry in s.split(';').map(str::trim).filter(|e| !e.is_empty()) {
            let Some((agent, names)) = entry.split_once('=') else {
                return Err(BindingError::Malformed {
                    entry: entry.to_owned(),
                });
            };
            let agent = agent.trim();
            if !is_agent_name(agent) {
                return Err(BindingError::BadAgent {
                    entry: entry.to_owned(),
                    agent: agent.to_owned(),
                });
            }
            let mut set = BTreeSet::new();
            for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                if !crate::secrets::is_plain_name(name) || name.contains(['=', ';']) {
                    return Err(BindingError::BadSecret {
                        entry: entry.to_owned(),
                        name: name.to_owned(),
                    });
                }
                set.insert(name.to_owned());
            }
            if set.is_empty() {
                return Err(BindingError::Empty {
                    entry: entry.to_owned(),
                });
            }
            if by_agent.insert(agent.to_owned(), set).is_some() {
                return Err(BindingError::Duplicate {
                    agent: agent.to_owned(),
                });
            }
        }
        Ok(Self { by_agent })
    }
}

impl fmt::Display for SecretBindings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let entries: Vec<String> = self
            .by_agent
            .iter()
            .map(|(a, names)| {
                format!(
                    "{a}={}",
                    names.iter().cloned().collect::<Vec<_>>().join(",")
                )
            })
            .collect();
        f.write_str(&entries.join(";"))
    }
}

/// The SPEC's name rule: `^[a-z0-9][a-z0-9_-]{0,62}$`.
fn is_agent_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|&c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn parses_entries_and_checks_names() {
        let b: SecretBindings = " notifier=SLACK_WEBHOOK_URL ; deployer=AWS_KEY, AWS_SECRET;"
            .parse()
            .unwrap();
        assert_eq!(
            b.to_string(),
            "deployer=AWS_KEY,AWS_SECRET;notifier=SLACK_WEBHOOK_URL"
        );
        assert!(b.check("notifier", &names(&["SLACK_WEBHOOK_URL"])).is_ok());
        assert!(b
            .check("deployer", &names(&["AWS_SECRET", "AWS_KEY"]))
            .is_ok());
        assert!(b.check("anyone", &[]).is_ok());
        let err = b.check("notifier", &names(&["AWS_KEY"])).unwrap_err();
        assert_eq!(
            err,
            BindingError::NotBound {
                agent: "notifier".into(),
                secret: "AWS_KEY".into()
            }
        );
        let msg = err.to_string();
        assert!(
            msg.contains("\"notifier\"") && msg.contains("\"AWS_KEY\""),
            "{msg}"
        );
        assert_eq!(
            b.bound_to("deployer").collect::<Vec<_>>(),
            ["AWS_KEY", "AWS_SECRET"]
        );
    }

    #[test]
    fn nothing_bound_by_default() {
        let b: SecretBindings = "".parse().unwrap();
        assert!(b.is_empty());
        assert_eq!(b, SecretBindings::none());
        assert!(b.check("notifier", &names(&["SLACK_WEBHOOK_URL"])).is_err());
    }

    #[test]
    fn bad_entries_are_refused() {
        let bad = |s: &str| s.parse::<SecretBindings>().unwrap_err();
        assert!(matches!(bad("notifier"), BindingError::Malformed { .. }));
        assert!(matches!(bad("Notifier=A"), BindingError::BadAgent { .. }));
        assert!(matches!(bad("=A"), BindingError::BadAgent { .. }));
        assert!(matches!(bad("n=../x"), BindingError::BadSecret { .. }));
        assert!(matches!(bad("n=A=B"), BindingError::BadSecret { .. }));
        assert!(matches!(bad("n= , "), BindingError::Empty { .. }));
        assert!(matches!(bad("n=A;n=B"), BindingError::Duplicate { .. }));
    }
}
