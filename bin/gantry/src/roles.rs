//! Starting each role: connect, migrate, build the parts, run until SIGTERM
//! or Ctrl-C.

use crate::cli::{ApiArgs, Conn, CoordinatorArgs, DevArgs, TelemetryArgs, WorkerArgs, WorkerOpts};
use anyhow::Context;
use gantry_engine::Engine;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Logs to stderr (`GANTRY_LOG` filter, `GANTRY_LOG_FORMAT=json`) and, for
/// a role with an OTLP endpoint, spans over OTLP. The guard flushes them.
pub(crate) fn init_logging(
    telemetry: &TelemetryArgs,
    role: Option<&str>,
) -> anyhow::Result<Option<gantry_telemetry::Tracing>> {
    use tracing_subscriber::layer::{Layer, SubscriberExt};
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{EnvFilter, Registry};
    type Boxed =
        Box<dyn Layer<tracing_subscriber::layer::Layered<EnvFilter, Registry>> + Send + Sync>;
    let filter =
        EnvFilter::try_from_env("GANTRY_LOG").unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let mut layers: Vec<Boxed> = Vec::new();
    if std::env::var("GANTRY_LOG_FORMAT").is_ok_and(|v| v == "json") {
        layers.push(fmt.json().boxed());
    } else {
        layers.push(fmt.boxed());
    }
    let endpoint = telemetry.otlp_endpoint.as_deref().filter(|e| !e.is_empty());
    let guard = match (endpoint, role) {
        (Some(endpoint), Some(role)) => {
            let config = gantry_telemetry::OtlpConfig {
                endpoint: endpoint.to_owned(),
                service_name: telemetry
                    .service_name
                    .clone()
                    .unwrap_or_else(|| format!("gantry-{role}")),
            };
            let (layer, guard) = gantry_telemetry::otlp_layer(&config)?;
            layers.push(layer.boxed());
            Some(guard)
        }
        _ => None,
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(layers)
        .init();
    Ok(guard)
}

/// Connect to Postgres and Redis, applying migrations.
pub(crate) async fn connect(conn: &Conn) -> anyhow::Result<Engine> {
    let store = gantry_store::Store::connect(&conn.database_url, conn.db_pool)
        .await
        .context("cannot connect to postgres (GANTRY_DATABASE_URL)")?;
    store.migrate().await.context("cannot apply migrations")?;
    let queue = gantry_queue::Queue::connect(&conn.redis_url, &conn.redis_prefix)
        .await
        .context("cannot connect to redis (GANTRY_REDIS_URL)")?;
    queue.ping().await.context("redis does not answer")?;
    for warning in queue.settings_warnings().await {
        tracing::warn!("{warning}");
    }
    Ok(Engine::new(store, queue))
}

/// Fires on SIGTERM or Ctrl-C.
pub(crate) fn shutdown_token() -> CancellationToken {
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("install SIGTERM handler");
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutdown requested");
        t.cancel();
    });
    token
}

pub(crate) async fn migrate(conn: Conn) -> anyhow::Result<()> {
    let store = gantry_store::Store::connect(&conn.database_url, 2).await?;
    store.migrate().await?;
    println!("migrations applied");
    Ok(())
}

pub(crate) async fn api(args: ApiArgs) -> anyhow::Result<()> {
    let engine = connect(&args.conn).await?;
    serve_api(engine, &args, shutdown_token()).await
}

async fn serve_api(
    engine: Engine,
    args: &ApiArgs,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    tracing::info!(addr = %listener.local_addr()?, "api listening");
    let depth = (args.max_queue_depth > 0).then_some(args.max_queue_depth);
    let mut access = gantry_api::Access::new(args.api_token_sha256.clone(), args.rate_limit_per_s)
        .with_auth_failures_per_min(args.auth_failures_per_min);
    if let Some(secret) = args.session_secret.as_deref().filter(|s| !s.is_empty()) {
        access = access.with_session_secret(secret);
    }
    if args.allow_process_agents {
        tracing::warn!("GANTRY_ALLOW_PROCESS_AGENTS is on: API clients may register agents that run local commands on workers");
    }
    if access.is_open() {
        tracing::warn!(
            "no GANTRY_API_TOKEN_SHA256 configured: /v1 accepts requests without a token"
        );
    }
    let state = gantry_api::AppState {
        engine: engine.with_max_queue_depth(depth),
        config: gantry_api::ApiConfig {
            max_body_bytes: args.max_body_bytes,
            max_nodes: args.max_nodes,
            max_in_flight: args.max_in_flight,
            allow_process_agents: args.allow_process_agents,
            allowed_hosts: args
                .allowed_hosts
                .iter()
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty())
                .collect(),
            max_connections_per_ip: args.max_connections_per_ip,
        },
        access,
    };
    gantry_api::serve(listener, state, async move { shutdown.cancelled().await }).await?;
    Ok(())
}

pub(crate) async fn coordinator(args: CoordinatorArgs) -> anyhow::Result<()> {
    let engine = connect(&args.conn).await?;
    let config = args.retention.coordinator();
    with_metrics(
        engine,
        args.metrics_listen.as_deref(),
        args.write_failure_s,
        |engine, shutdown| async move {
            tracing::info!("coordinator started");
            Ok(gantry_coordinator::run(engine, config, shutdown).await?)
        },
    )
    .await
}

/// Run a role beside its metrics server (`/metrics`, `/healthz`, `/readyz`
/// on `listen`) until SIGTERM or Ctrl-C, then stop both.
async fn with_metrics<F, Fut>(
    engine: Engine,
    listen: Option<&str>,
    write_failure_s: u64,
    role: F,
) -> anyhow::Result<()>
where
    F: FnOnce(Engine, CancellationToken) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let shutdown = shutdown_token();
    let metrics = crate::metrics_server::spawn(
        listen,
        engine.clone(),
        Duration::from_secs(write_failure_s),
        shutdown.clone(),
    )
    .await?;
    let res = role(engine, shutdown.clone()).await;
    shutdown.cancel();
    if let Some(m) = metrics {
        let _ = m.await;
    }
    res
}

pub(crate) async fn worker(args: WorkerArgs) -> anyhow::Result<()> {
    process_runtime(&args.worker, Default::default())?;
    let engine = connect(&args.conn).await?;
    let opts = &args.worker;
    with_metrics(
        engine,
        args.metrics_listen.as_deref(),
        args.write_failure_s,
        |engine, shutdown| async move { run_worker(engine, opts, shutdown).await },
    )
    .await
}

pub(crate) fn worker_config(opts: &WorkerOpts) -> gantry_worker::Config {
    let id = opts.id.clone().unwrap_or_else(|| {
        let host = std::fs::read_to_string("/etc/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "worker".into());
        format!("{host}-{}-{:04x}", std::process::id(), rand_suffix())
    });
    gantry_worker::Config {
        id,
        queues: opts.queues.clone(),
        concurrency: opts.concurrency,
        lease: Duration::from_millis(opts.lease_ms.max(100)),
        grace: Duration::from_secs(opts.grace_s),
        breaker: Default::default(),
        inline_advance: opts.inline_advance,
    }
}

fn rand_suffix() -> u16 {
    (uuid::Uuid::new_v4().as_u128() & 0xffff) as u16
}

pub(crate) async fn run_worker(
    engine: Engine,
    opts: &WorkerOpts,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let config = worker_config(opts);
    tracing::info!(id = %config.id, queues = ?config.queues, concurrency = config.concurrency, "worker started");
    let executor = gantry_executor::Executor::new(Default::default())
        .with_secrets(opts.secrets_dir.clone(), opts.secret_bindings.clone());
    let (executor, reaper) = with_runtimes(executor, opts, &config.id, &shutdown).await?;
    gantry_worker::run(engine, Arc::new(executor), config, shutdown.clone()).await?;
    shutdown.cancel();
    if let Some(reaper) = reaper {
        let _ = reaper.await;
    }
    tracing::info!("worker stopped");
    Ok(())
}

/// Adds the process runtime (when its allow-list names anything) and the
/// docker runtime (as `GANTRY_DOCKER` says); returns the docker reaper.
async fn with_runtimes(
    mut executor: gantry_executor::Executor,
    opts: &WorkerOpts,
    worker_id: &str,
    shutdown: &CancellationToken,
) -> anyhow::Result<(
    gantry_executor::Executor,
    Option<tokio::task::JoinHandle<()>>,
)> {
    // Agents of this worker's uid must not read its /proc files (environ
    // holds the database URL); exec'd agents become dumpable again.
    gantry_executor::make_non_dumpable().context("cannot make the worker non-dumpable")?;
    let process = process_runtime(opts, executor.limits())?;
    if process.is_enabled() {
        tracing::info!(user = %process.user(), "process runtime enabled");
        warn_if_shared(opts.secrets_dir.as_deref());
    }
    executor = executor.with_process(process);
    let reaper = match docker_runtime(opts, worker_id).await? {
        Some(docker) => {
            let docker = Arc::new(docker);
            executor = executor.with_docker(docker.clone());
            // Orphans of a crashed worker go at start-up, then every minute.
            Some(tokio::spawn(
                docker.reap_loop(Duration::from_secs(60), shutdown.clone()),
            ))
        }
        None => None,
    };
    Ok((executor, reaper))
}

/// The process runtime the options describe; a bad allow-list entry or
/// user is an error, so [`worker`] and [`dev`] check it before connecting.
pub(crate) fn process_runtime(
    opts: &WorkerOpts,
    limits: gantry_executor::ExecLimits,
) -> anyhow::Result<gantry_executor::ProcessRuntime> {
    let user = gantry_executor::ProcessUser::for_worker(opts.process_user)?;
    Ok(gantry_executor::ProcessRuntime::new(
        limits,
        &gantry_executor::ProcessConfig {
            commands: opts.process_commands.0.clone(),
            user,
            allowed_mounts: opts.allowed_mounts.0.clone(),
        },
    )?)
}

/// Process agents run on this host: a secrets directory other users may
/// read is open to them (only bound copies are meant to reach an agent).
fn warn_if_shared(dir: Option<&std::path::Path>) {
    use std::os::unix::fs::PermissionsExt;
    let Some(dir) = dir else { return };
    if let Ok(meta) = std::fs::metadata(dir) {
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                dir = %dir.display(),
                "GANTRY_SECRETS_DIR is accessible to other users; process agents may read it directly (chmod 0700)"
            );
        }
    }
}

/// The docker runtime the worker's options ask for; `None` when it is off,
/// or in `auto` mode when no engine answers (docker agents then fail with
/// a runtime error naming the problem, and builtin and process agents run).
async fn docker_runtime(
    opts: &WorkerOpts,
    worker_id: &str,
) -> anyhow::Result<Option<gantry_executor::DockerRuntime>> {
    if opts.docker == "off" {
        return Ok(None);
    }
    let mut cfg = gantry_executor::DockerConfig::new(worker_id);
    cfg.allowed_mounts = opts.allowed_mounts.0.clone();
    match gantry_executor::DockerRuntime::connect(cfg).await {
        Ok(rt) => {
            tracing::info!("docker runtime enabled");
            Ok(Some(rt))
        }
        Err(e) if opts.docker == "auto" => {
            tracing::warn!(error = %e, "docker engine unreachable; docker agents will fail until a worker with docker runs them");
            Ok(None)
        }
        Err(e) => Err(anyhow::anyhow!("docker engine unreachable: {e}")),
    }
}

/// All roles in one process.
pub(crate) async fn dev(args: DevArgs) -> anyhow::Result<()> {
    // Before any role runs, so the API's /metrics sees every role's metrics.
    gantry_telemetry::install();
    process_runtime(&args.worker, Default::default())?;
    let engine = connect(&args.api.conn).await?;
    let shutdown = shutdown_token();
    let coord = tokio::spawn(gantry_coordinator::run(
        engine.clone(),
        args.retention.coordinator(),
        shutdown.clone(),
    ));
    let worker = {
        let (engine, opts, s) = (engine.clone(), args.worker.clone(), shutdown.clone());
        tokio::spawn(async move { run_worker(engine, &opts, s).await })
    };
    let api = serve_api(engine, &args.api, shutdown.clone()).await;
    shutdown.cancel();
    let _ = worker.await;
    let _ = coord.await;
    api
}
