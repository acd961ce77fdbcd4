//! The client subcommands of the command line (SPEC section 8): their
//! arguments, and what `gantry runs ...` does with them.

use clap::{Args, Subcommand};
use std::process::ExitCode;

#[derive(Args, Clone, Debug)]
pub(crate) struct ClientArgs {
    #[arg(long, env = "GANTRY_API_URL", default_value = "http://127.0.0.1:8080")]
    pub(crate) api_url: String,
    #[arg(long, env = "GANTRY_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
}

#[derive(Subcommand)]
pub(crate) enum ApplyCmd {
    /// Register the definition(s) in FILE (JSON or YAML; a list registers each).
    Apply {
        #[arg(short = 'f', long = "file")]
        file: std::path::PathBuf,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Subcommand)]
pub(crate) enum RunsCmd {
    /// Start a run of workflow NAME.
    Start {
        name: String,
        /// The run input, a JSON object.
        #[arg(long, default_value = "{}")]
        input: String,
        /// Idempotency key.
        #[arg(long)]
        idempotency_key: Option<String>,
        /// A tag KEY=VALUE (repeat for more; at most 16).
        #[arg(long = "tag", value_name = "KEY=VALUE")]
        tags: Vec<String>,
        /// Follow the run until it ends; exit 0 only when it succeeded.
        #[arg(long)]
        wait: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Cancel run ID, or (without ID) every running top-level run the
    /// filter matches, 10,000 at most per call.
    Cancel {
        id: Option<String>,
        #[command(flatten)]
        filter: BulkArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Retry run ID, or (without ID) every failed or cancelled top-level
    /// run the filter matches, 10,000 at most per call.
    Retry {
        id: Option<String>,
        #[command(flatten)]
        filter: BulkArgs,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Re-run finished run ID from NODE (repeat --from for more): a new run
    /// that keeps the other succeeded nodes' outputs.
    Rerun {
        id: String,
        #[arg(long = "from", value_name = "NODE", required = true)]
        from: Vec<String>,
        /// A new run input, a JSON object (default: the old run's).
        #[arg(long)]
        input: Option<String>,
        /// Follow the new run until it ends; exit 0 only when it succeeded.
        #[arg(long)]
        wait: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// List runs, newest first.
    List {
        #[arg(long)]
        workflow: Option<String>,
        /// running, succeeded, failed or cancelled.
        #[arg(long)]
        status: Option<String>,
        /// Only runs tagged KEY=VALUE (repeat: every one must match).
        #[arg(long = "tag", value_name = "KEY=VALUE")]
        tags: Vec<String>,
        /// Most runs listed (1 to 500).
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Show a run, its nodes (with skip reasons and instance counts) and
    /// its child runs.
    Show {
        id: String,
        /// Print the API's JSON instead.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Follow a run until it ends; exit 0 only when it succeeded.
    Wait {
        id: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Approve NODE of run ID, waiting for approval. A `for_each` node's
    /// instances each have a gate: `--index` decides one, and without it
    /// every instance that waits is decided.
    Approve {
        id: String,
        node: String,
        /// The instance (item index, from 0) of a `for_each` node.
        #[arg(long)]
        index: Option<u32>,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Reject NODE of run ID, waiting for approval (it fails). A `for_each` node's
    /// instances each have a gate: `--index` decides one, and without it
    /// every instance that waits is decided.
    Reject {
        id: String,
        node: String,
        /// The instance (item index, from 0) of a `for_each` node.
        #[arg(long)]
        index: Option<u32>,
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// The filter of a bulk cancel or retry.
#[derive(Args, Clone, Debug)]
pub(crate) struct BulkArgs {
    #[arg(long)]
    pub(crate) workflow: Option<String>,
    /// Only runs tagged KEY=VALUE (repeat: every one must match).
    #[arg(long = "tag", value_name = "KEY=VALUE")]
    pub(crate) tags: Vec<String>,
    /// Only runs created after this time (RFC 3339).
    #[arg(long)]
    pub(crate) created_after: Option<String>,
    /// Only runs created before this time (RFC 3339).
    #[arg(long)]
    pub(crate) created_before: Option<String>,
}

#[derive(Subcommand)]
pub(crate) enum WorkflowsCmd {
    /// Register the definition(s) in FILE (JSON or YAML; a list registers each).
    Apply {
        #[arg(short = 'f', long = "file")]
        file: std::path::PathBuf,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Stop NAME's triggers (cron and event); API starts still work.
    Pause {
        name: String,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Restart NAME's triggers from now (ticks of the pause never run).
    Resume {
        name: String,
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Subcommand)]
pub(crate) enum EventsCmd {
    /// Send event NAME; prints its id and what it matched.
    Send {
        name: String,
        /// Which waits it is for (default empty).
        #[arg(long, default_value = "")]
        key: String,
        /// The event's data, any JSON.
        #[arg(long, default_value = "null")]
        data: String,
        /// Sent again with the same id, the event has no new effect.
        #[arg(long)]
        id: Option<String>,
        #[command(flatten)]
        client: ClientArgs,
    },
}

impl RunsCmd {
    /// Carry out a `gantry runs` command against the API.
    pub(crate) async fn run(self) -> anyhow::Result<ExitCode> {
        use crate::client;
        match self {
            RunsCmd::Start {
                name,
                input,
                idempotency_key,
                tags,
                wait,
                client,
            } => {
                let start = client::Start {
                    input: &input,
                    key: idempotency_key.as_deref(),
                    tags: &tags,
                    wait,
                };
                return client::start(&client, &name, start).await;
            }
            RunsCmd::Rerun {
                id,
                from,
                input,
                wait,
                client,
            } => {
                return client::rerun(&client, &id, &from, input.as_deref(), wait).await;
            }
            RunsCmd::Cancel { id, filter, client } => {
                client::act(&client, "cancel", id.as_deref(), &filter).await?
            }
            RunsCmd::Retry { id, filter, client } => {
                client::act(&client, "retry", id.as_deref(), &filter).await?
            }
            RunsCmd::List {
                workflow,
                status,
                tags,
                limit,
                client,
            } => {
                let filter = client::ListFilter {
                    workflow: workflow.as_deref(),
                    status: status.as_deref(),
                    tags: &tags,
                    limit,
                };
                client::list_runs(&client, filter).await?
            }
            RunsCmd::Show { id, json, client } => client::show(&client, &id, json).await?,
            RunsCmd::Wait { id, client } => return crate::wait::follow(&client, &id).await,
            RunsCmd::Approve {
                id,
                node,
                index,
                client,
            } => client::decide(&client, &id, &node, index, "approve").await?,
            RunsCmd::Reject {
                id,
                node,
                index,
                client,
            } => client::decide(&client, &id, &node, index, "reject").await?,
        }
        Ok(ExitCode::SUCCESS)
    }
}
