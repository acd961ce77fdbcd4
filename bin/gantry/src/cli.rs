//! Command-line shape (SPEC section 8): one `clap` parser per role.

use crate::cli_client::{ApplyCmd, EventsCmd, RunsCmd, WorkflowsCmd};
pub(crate) use crate::cli_client::{BulkArgs, ClientArgs};
use clap::{Args, Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "gantry",
    version,
    about = "Workflows of agents on a horizontally scaled worker pool"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
    #[command(flatten)]
    pub(crate) telemetry: TelemetryArgs,
}

/// Where traces go (every role; clients and benchmarks ignore it).
#[derive(Args, Clone, Debug)]
pub(crate) struct TelemetryArgs {
    /// OTLP/HTTP endpoint for traces, e.g. `http://otel-collector:4318`
    /// (spans go to `/v1/traces`). No traces are exported when unset.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", global = true)]
    pub(crate) otlp_endpoint: Option<String>,
    /// `service.name` of the exported spans (default `gantry-ROLE`).
    #[arg(long, env = "OTEL_SERVICE_NAME", global = true)]
    pub(crate) service_name: Option<String>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve the HTTP API.
    Api(ApiArgs),
    /// Pull jobs and execute agents.
    Worker(WorkerArgs),
    /// Advance runs and reconcile.
    Coordinator(CoordinatorArgs),
    /// Every role in one process, for a laptop.
    Dev(DevArgs),
    /// Apply the database migrations.
    Migrate(Conn),
    /// Register agents.
    Agents {
        #[command(subcommand)]
        cmd: ApplyCmd,
    },
    /// Register workflows; pause and resume their triggers.
    Workflows {
        #[command(subcommand)]
        cmd: WorkflowsCmd,
    },
    /// Start and inspect runs.
    Runs {
        #[command(subcommand)]
        cmd: RunsCmd,
    },
    /// Show queue depths.
    Queues(ClientArgs),
    /// List every cron trigger with its next and last tick.
    Schedules(ClientArgs),
    /// Send events (SPEC section 9).
    Events {
        #[command(subcommand)]
        cmd: EventsCmd,
    },
    /// Run a benchmark scenario and print its JSON object as the last line.
    Bench(BenchArgs),
    /// Exit 0 when URL answers 2xx (a health check for images without curl).
    Probe {
        /// e.g. http://127.0.0.1:8080/readyz
        url: String,
        #[arg(long, default_value_t = 2000)]
        timeout_ms: u64,
    },
}

/// Where Postgres and Redis are.
#[derive(Args, Clone, Debug)]
pub(crate) struct Conn {
    #[arg(
        long,
        env = "GANTRY_DATABASE_URL",
        default_value = "postgres://gantry:gantry@127.0.0.1:55432/gantry",
        hide_env_values = true
    )]
    pub(crate) database_url: String,
    #[arg(
        long,
        env = "GANTRY_REDIS_URL",
        default_value = "redis://127.0.0.1:56379",
        hide_env_values = true
    )]
    pub(crate) redis_url: String,
    /// Prefix of every Redis key.
    #[arg(long, env = "GANTRY_REDIS_PREFIX", default_value = "gantry")]
    pub(crate) redis_prefix: String,
    /// Postgres connections of this process.
    #[arg(long, env = "GANTRY_DB_POOL", default_value_t = 10)]
    pub(crate) db_pool: u32,
}

#[derive(Args, Clone, Debug)]
pub(crate) struct ApiArgs {
    #[command(flatten)]
    pub(crate) conn: Conn,
    #[arg(long, env = "GANTRY_LISTEN", default_value = "127.0.0.1:8080")]
    pub(crate) listen: String,
    /// Largest request body accepted.
    #[arg(long, env = "GANTRY_MAX_BODY_BYTES", default_value_t = 1 << 20)]
    pub(crate) max_body_bytes: usize,
    /// Largest workflow accepted.
    #[arg(long, env = "GANTRY_MAX_NODES", default_value_t = gantry_dag::DEFAULT_MAX_NODES)]
    pub(crate) max_nodes: usize,
    /// `/v1` requests handled at once; past it, 503 with `Retry-After`
    /// instead of queueing (the database pool is the bottleneck).
    #[arg(long, env = "GANTRY_MAX_IN_FLIGHT", default_value_t = 256)]
    pub(crate) max_in_flight: usize,
    /// Refuse new runs (429, `Retry-After`) while a queue they use holds
    /// this many waiting jobs (ready and delayed); 0 is no limit.
    #[arg(long, env = "GANTRY_MAX_QUEUE_DEPTH", default_value_t = 100_000)]
    pub(crate) max_queue_depth: u64,
    /// Hex SHA-256 of each accepted bearer token, comma separated
    /// (`printf %s TOKEN | sha256sum`). None: `/v1` is open.
    #[arg(
        long,
        env = "GANTRY_API_TOKEN_SHA256",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub(crate) api_token_sha256: Vec<String>,
    /// Requests per second per token (per client address when open), bursts
    /// of twice that; over it, 429 with `Retry-After`. 0: no limit.
    #[arg(long, env = "GANTRY_RATE_LIMIT_PER_S", default_value_t = 0)]
    pub(crate) rate_limit_per_s: u32,
    /// Secret the dashboard's session cookies are signed with; give every
    /// API replica the same one. Unset: a random key per process.
    #[arg(long, env = "GANTRY_SESSION_SECRET", hide_env_values = true)]
    pub(crate) session_secret: Option<String>,
    /// Let `POST /v1/agents` register `process` agents, which run a local
    /// command on a worker host (`1`/`true`); off, they are refused with 403.
    #[arg(
        long,
        env = "GANTRY_ALLOW_PROCESS_AGENTS",
        default_value_t = false,
        action = clap::ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub(crate) allow_process_agents: bool,
    /// Extra `Host` names an open API (no token) answers when it listens on
    /// 0.0.0.0 or ::, comma separated; localhost and the listen address are
    /// always accepted.
    #[arg(long, env = "GANTRY_ALLOWED_HOSTS", value_delimiter = ',')]
    pub(crate) allowed_hosts: Vec<String>,
    /// Connections open at once per client address; past it, a new one is
    /// closed at once.
    #[arg(long, env = "GANTRY_MAX_CONNECTIONS_PER_IP", default_value_t = 512)]
    pub(crate) max_connections_per_ip: usize,
    /// Failed authentications (bad tokens on `/v1` or the dashboard login)
    /// per minute per client address, bursts of as many; past it, 429 with
    /// `Retry-After`. 0: not counted.
    #[arg(long, env = "GANTRY_AUTH_FAILURES_PER_MIN", default_value_t = gantry_api::DEFAULT_AUTH_FAILURES_PER_MIN)]
    pub(crate) auth_failures_per_min: u32,
}

#[derive(Args, Clone, Debug)]
pub(crate) struct WorkerArgs {
    #[command(flatten)]
    pub(crate) conn: Conn,
    #[command(flatten)]
    pub(crate) worker: WorkerOpts,
    /// Serve `/metrics`, `/healthz` and `/readyz` here, e.g. `0.0.0.0:9102`.
    #[arg(long, env = "GANTRY_METRICS_LISTEN")]
    pub(crate) metrics_listen: Option<String>,
    /// Seconds this worker's writes to Postgres may fail in a row before its
    /// `/readyz` answers 503.
    #[arg(long, env = "GANTRY_WRITE_FAILURE_S", default_value_t = 10)]
    pub(crate) write_failure_s: u64,
}

/// How long finished runs are kept (SPEC 4.1).
#[derive(Args, Clone, Debug)]
pub(crate) struct RetentionArgs {
    /// Days a finished run is kept when its workflow has no
    /// `retention_days`; 0 keeps runs for ever.
    #[arg(long, env = "GANTRY_RETENTION_DAYS", default_value_t = 30)]
    pub(crate) retention_days: u32,
}

impl RetentionArgs {
    /// The coordinator's settings with this retention.
    pub(crate) fn coordinator(&self) -> gantry_coordinator::Config {
        gantry_coordinator::Config {
            retention_days: self.retention_days,
            ..Default::default()
        }
    }
}

#[derive(Args, Clone, Debug)]
pub(crate) struct CoordinatorArgs {
    #[command(flatten)]
    pub(crate) conn: Conn,
    /// Serve `/metrics`, `/healthz` and `/readyz` here, e.g. `0.0.0.0:9101`.
    #[arg(long, env = "GANTRY_METRICS_LISTEN")]
    pub(crate) metrics_listen: Option<String>,
    /// Seconds this coordinator's writes to Postgres may fail in a row
    /// before its `/readyz` answers 503.
    #[arg(long, env = "GANTRY_WRITE_FAILURE_S", default_value_t = 10)]
    pub(crate) write_failure_s: u64,
    #[command(flatten)]
    pub(crate) retention: RetentionArgs,
}

#[derive(Args, Clone, Debug)]
pub(crate) struct WorkerOpts {
    /// Queues to pull from, comma separated.
    #[arg(
        long,
        env = "GANTRY_QUEUES",
        value_delimiter = ',',
        default_value = "default"
    )]
    pub(crate) queues: Vec<String>,
    /// Attempts executing at once.
    #[arg(long, env = "GANTRY_CONCURRENCY", default_value_t = 16)]
    pub(crate) concurrency: usize,
    /// Lease on running nodes in milliseconds; renewed every third of it.
    #[arg(long, env = "GANTRY_LEASE_MS", default_value_t = 30_000)]
    pub(crate) lease_ms: u64,
    /// Seconds running attempts may take to finish after SIGTERM.
    #[arg(long, env = "GANTRY_GRACE_S", default_value_t = 30)]
    pub(crate) grace_s: u64,
    /// Apply this worker's results to their runs in the recording
    /// transaction when the run is not locked (`false`: always leave them to
    /// the coordinator).
    #[arg(long, env = "GANTRY_INLINE_ADVANCE", default_value_t = true, action = clap::ArgAction::Set)]
    pub(crate) inline_advance: bool,
    /// Worker id (default: host name, pid and a random suffix).
    #[arg(long, env = "GANTRY_WORKER_ID")]
    pub(crate) id: Option<String>,
    /// The docker runtime: `auto` uses the local engine when it answers at
    /// start-up, `on` refuses to start without it, `off` never uses it.
    #[arg(long, env = "GANTRY_DOCKER", default_value = "auto", value_parser = ["auto", "on", "off"])]
    pub(crate) docker: String,
    /// Directory holding secret values, one file per name (as a Kubernetes
    /// Secret volume lays them out).
    #[arg(long, env = "GANTRY_SECRETS_DIR")]
    pub(crate) secrets_dir: Option<std::path::PathBuf>,
    /// Host directories an agent input may mount read-only at `/workspace`,
    /// comma separated (a process agent runs in it instead). Nothing else
    /// from the host is mounted.
    #[arg(long, env = "GANTRY_ALLOWED_MOUNTS", default_value = "")]
    pub(crate) allowed_mounts: PathList,
    /// Which secrets each agent may read: `AGENT=NAME[,NAME...]` entries
    /// separated by `;`. Unset: no agent gets any secret.
    #[arg(
        long,
        env = "GANTRY_SECRET_BINDINGS",
        default_value = "",
        value_parser = clap::value_parser!(gantry_executor::SecretBindings)
    )]
    pub(crate) secret_bindings: gantry_executor::SecretBindings,
    /// Absolute paths of the executables process agents may run, or of
    /// directories under which any may, comma separated. Empty: this worker
    /// runs no process agents.
    #[arg(long, env = "GANTRY_PROCESS_COMMANDS", default_value = "")]
    pub(crate) process_commands: PathList,
    /// `UID[:GID]` process agents run as; a root worker defaults to
    /// `65534:65534`, any other worker runs them as itself and refuses
    /// another user.
    #[arg(
        long,
        env = "GANTRY_PROCESS_USER",
        value_parser = clap::value_parser!(gantry_executor::ProcessUser)
    )]
    pub(crate) process_user: Option<gantry_executor::ProcessUser>,
}

/// Comma-separated paths; an empty value (`GANTRY_X=`) is an empty list.
#[derive(Clone, Debug, Default)]
pub(crate) struct PathList(pub(crate) Vec<std::path::PathBuf>);

impl std::str::FromStr for PathList {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(
            s.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(std::path::PathBuf::from)
                .collect(),
        ))
    }
}

#[derive(Args, Clone, Debug)]
pub(crate) struct DevArgs {
    #[command(flatten)]
    pub(crate) api: ApiArgs,
    #[command(flatten)]
    pub(crate) worker: WorkerOpts,
    #[command(flatten)]
    pub(crate) retention: RetentionArgs,
}

#[derive(Args, Clone, Debug)]
pub(crate) struct BenchArgs {
    /// `chain`, `fanout`, `map`, `event`, `docker`, `scale` or `ui`.
    pub(crate) scenario: String,
    /// Nodes of the scenario (`ui`: timed requests per page, default 50).
    #[arg(long)]
    pub(crate) nodes: Option<usize>,
    #[arg(long)]
    pub(crate) workers: Option<usize>,
    /// Worker concurrency. A builtin `noop` slot costs no CPU, so the
    /// default is large: the worker then claims and records in big batches.
    #[arg(long, default_value_t = 1024)]
    pub(crate) concurrency: usize,
    /// `scale`: run the worker replicas as containers of `--image` on the
    /// host network instead of processes.
    #[arg(long)]
    pub(crate) containers: bool,
    /// The gantry image of `--containers`.
    #[arg(long, default_value = "gantry/gantry:0.1.0")]
    pub(crate) image: String,
    #[command(flatten)]
    pub(crate) conn: Conn,
}

impl Cli {
    /// The role this invocation runs, naming its spans; `None` for clients.
    pub(crate) fn role(&self) -> Option<&'static str> {
        match self.cmd {
            Cmd::Api(_) => Some("api"),
            Cmd::Worker(_) => Some("worker"),
            Cmd::Coordinator(_) => Some("coordinator"),
            Cmd::Dev(_) => Some("dev"),
            _ => None,
        }
    }

    pub(crate) async fn run(self) -> anyhow::Result<ExitCode> {
        use crate::{bench, client, roles};
        match self.cmd {
            Cmd::Api(a) => roles::api(a).await?,
            Cmd::Worker(w) => roles::worker(w).await?,
            Cmd::Coordinator(c) => roles::coordinator(c).await?,
            Cmd::Dev(d) => roles::dev(d).await?,
            Cmd::Migrate(c) => roles::migrate(c).await?,
            Cmd::Agents {
                cmd: ApplyCmd::Apply { file, client },
            } => client::apply(&client, "agents", &file).await?,
            Cmd::Workflows { cmd } => match cmd {
                WorkflowsCmd::Apply { file, client } => {
                    client::apply(&client, "workflows", &file).await?
                }
                WorkflowsCmd::Pause { name, client } => {
                    client::set_paused(&client, &name, true).await?
                }
                WorkflowsCmd::Resume { name, client } => {
                    client::set_paused(&client, &name, false).await?
                }
            },
            Cmd::Runs { cmd } => return cmd.run().await,
            Cmd::Queues(c) => client::queues(&c).await?,
            Cmd::Schedules(c) => client::schedules(&c).await?,
            Cmd::Events {
                cmd:
                    EventsCmd::Send {
                        name,
                        key,
                        data,
                        id,
                        client,
                    },
            } => client::send_event(&client, &name, &key, &data, id.as_deref()).await?,
            Cmd::Bench(b) => bench::run(b).await?,
            Cmd::Probe { url, timeout_ms } => return crate::probe::run(&url, timeout_ms).await,
        }
        Ok(ExitCode::SUCCESS)
    }
}
