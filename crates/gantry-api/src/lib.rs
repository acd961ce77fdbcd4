//! The HTTP API (axum) under /v1, with OpenAPI from utoipa and SSE run events,
//! and the queue inspection dashboard at `/` (module `ui`).
//!
//! [`app`] builds the router (tests drive it with `oneshot`), [`serve`] runs
//! it on a listener until a shutdown future fires. Every error answers with
//! the SPEC body `{"error": {"code", "message", "details"}}`.

mod auth;
mod body;
mod conns;
mod error;
mod events;
mod failures;
mod idempotency;
mod openapi;
mod routes;
mod site;
mod ui;

pub use auth::{token_hash, Access, DEFAULT_AUTH_FAILURES_PER_MIN};
pub use conns::HEADER_READ_TIMEOUT;
pub use error::{Error, Result};

use axum::extract::DefaultBodyLimit;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use gantry_engine::Engine;
use std::any::Any;
use std::future::Future;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

/// Longest a handler may take to answer.
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Longest a client may take to send a whole `/v1` body (408 past it).
pub const BODY_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Limits of the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiConfig {
    /// Bodies over this many bytes are rejected with 413 (default 1 MiB).
    pub max_body_bytes: usize,
    /// Workflows with more nodes are rejected with 422 (default 5,000).
    pub max_nodes: usize,
    /// `/v1` requests handled at once; past it, 503 with `Retry-After`
    /// (default 256).
    pub max_in_flight: usize,
    /// Whether `POST /v1/agents` may register `process` agents (default
    /// false: 403 `process_agents_disabled`).
    pub allow_process_agents: bool,
    /// Extra `Host` names an open API answers when it listens on every
    /// interface (`GANTRY_ALLOWED_HOSTS`).
    pub allowed_hosts: Vec<String>,
    /// Connections open at once per client address; past it a new one is
    /// closed at once (default 512).
    pub max_connections_per_ip: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            max_nodes: gantry_dag::DEFAULT_MAX_NODES,
            max_in_flight: 256,
            allow_process_agents: false,
            allowed_hosts: Vec::new(),
            max_connections_per_ip: 512,
        }
    }
}

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub engine: Engine,
    pub config: ApiConfig,
    /// Tokens and rate limits of `/v1` (default: open, unlimited).
    pub access: Access,
}

impl AppState {
    pub fn new(engine: Engine, config: ApiConfig) -> Self {
        Self {
            engine,
            config,
            access: Access::default(),
        }
    }
}

/// The router's state: the public [`AppState`] plus the per-process event
/// hub and the shutdown signal that ends open event streams.
#[derive(Clone)]
pub(crate) struct Ctx {
    pub(crate) state: AppState,
    pub(crate) hub: events::Hub,
    /// Signs dashboard sessions and CSRF tokens.
    pub(crate) ui_key: ui::SessionKey,
    /// One permit per `/v1` request being handled ([`shed`]).
    pub(crate) in_flight: Arc<Semaphore>,
    pub(crate) shutdown: CancellationToken,
    /// The address [`serve`] listens on (`None` in-process): an open API
    /// answers `Host` values naming it.
    pub(crate) listen: Option<std::net::SocketAddr>,
}

impl Ctx {
    pub(crate) fn engine(&self) -> &Engine {
        &self.state.engine
    }

    /// The read side of the store; writes go through [`Ctx::engine`].
    pub(crate) fn store(&self) -> &gantry_store::Reads {
        self.state.engine.reads()
    }
}

/// The whole API as a router.
pub fn app(state: AppState) -> Router {
    router(state, CancellationToken::new(), None)
}

/// Serve the API on `listener` until `shutdown` completes, then stop
/// accepting, end open event streams and wait for in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let token = CancellationToken::new();
    let listen = listener.local_addr()?;
    let per_ip = state.config.max_connections_per_ip;
    let app = router(state, token.clone(), Some(listen));
    let listener = conns::CappedListener::new(listener, per_ip);
    conns::serve(listener, app, shutdown, token).await;
    Ok(())
}

fn router(
    state: AppState,
    shutdown: CancellationToken,
    listen: Option<std::net::SocketAddr>,
) -> Router {
    gantry_telemetry::install();
    let limit = state.config.max_body_bytes;
    let hub = events::Hub::new(state.engine.reads().clone(), shutdown.clone());
    let ctx = Ctx {
        hub,
        ui_key: match state.access.session_key() {
            Some(key) => ui::SessionKey::from_key(key),
            None => ui::SessionKey::random(),
        },
        in_flight: Arc::new(Semaphore::new(state.config.max_in_flight)),
        state,
        shutdown,
        listen,
    };
    // Every /v1 request passes, in order: the drive-by checks (Host,
    // Origin, Content-Type), the token, failed-login and rate-limit guard,
    // the body read (bounded in size and time) and only then the in-flight
    // permit, so a slow body never holds one. Health, metrics and the
    // OpenAPI document stay open for probes and scrapers.
    let v1 = Router::new()
        .merge(routes::agents::routes())
        .merge(routes::workflows::routes())
        .merge(routes::runs::routes())
        .merge(routes::queues::routes())
        .merge(routes::workers::routes())
        .merge(routes::sent_events::routes())
        .merge(routes::schedules::routes())
        .merge(routes::bulk::routes())
        .route("/v1/runs/{id}/events", get(events::run_events))
        .route_layer(axum::middleware::from_fn_with_state(ctx.clone(), shed))
        .route_layer(axum::middleware::from_fn_with_state(
            ctx.clone(),
            body::buffer,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            ctx.clone(),
            auth::guard,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            ctx.clone(),
            site::v1_guard,
        ));
    Router::new()
        .merge(v1)
        .merge(ui::routes(ctx.clone()))
        .merge(routes::health::routes())
        .merge(routes::metrics::routes())
        .route("/openapi.json", get(openapi::spec))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(routes::metrics::track))
        .layer(axum::middleware::from_fn(time_limit))
        .layer(DefaultBodyLimit::max(limit))
        .layer(CatchPanicLayer::custom(panicked))
        .layer(TraceLayer::new_for_http())
        // Every answer carries `x-request-id` (the caller's, or a new UUID).
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(ctx)
}

/// A handler that has not answered within [`REQUEST_TIMEOUT`] gets 503 in
/// the SPEC error shape. An SSE stream answers at once, so only its start
/// is bounded.
async fn time_limit(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(req)).await {
        Ok(res) => res,
        Err(_) => Error::Unavailable {
            what: "the server",
            reason: format!("request took longer than {REQUEST_TIMEOUT:?}"),
        }
        .into_response(),
    }
}

/// Past `max_in_flight` requests being handled, answer 503 at once: a
/// saturated API then tells clients to back off instead of making every
/// request wait seconds for a database connection. An SSE stream holds its
/// permit only until its response starts.
async fn shed(
    axum::extract::State(ctx): axum::extract::State<Ctx>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match ctx.in_flight.clone().try_acquire_owned() {
        Ok(_permit) => next.run(req).await,
        Err(_) => Error::Overloaded {
            limit: ctx.state.config.max_in_flight,
        }
        .into_response(),
    }
}

async fn not_found() -> Error {
    Error::NotFound("no such route".to_owned())
}

async fn method_not_allowed() -> Error {
    Error::MethodNotAllowed
}

/// A panicking handler answers 500 with the generic body; the panic text is
/// only logged.
fn panicked(err: Box<dyn Any + Send + 'static>) -> Response {
    let what = err
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| err.downcast_ref::<&str>().copied())
        .unwrap_or("unknown panic");
    Error::Internal(format!("handler panicked: {what}")).into_response()
}
