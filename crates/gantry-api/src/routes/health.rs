//! Liveness (`/healthz`) and readiness (`/readyz`: Postgres and Redis reachable).

use crate::error::{Error, ErrorBody, Result};
use crate::Ctx;
use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use gantry_dag::Problem;
use serde::Serialize;
use std::time::Duration;
use utoipa::ToSchema;

/// How long a readiness probe waits for each dependency.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

pub(crate) fn routes() -> Router<Ctx> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

/// `{"status": "ok"}`.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Health {
    pub(crate) status: &'static str,
}

/// The process is alive.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "health",
    responses((status = 200, description = "alive", body = Health))
)]
pub(crate) async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Postgres and Redis are reachable.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    responses(
        (status = 200, description = "ready", body = Health),
        (status = 503, description = "a dependency is down; details name it", body = ErrorBody),
    )
)]
pub(crate) async fn readyz(State(ctx): State<Ctx>) -> Result<Json<Health>> {
    let (pg, redis) = tokio::join!(
        tokio::time::timeout(PING_TIMEOUT, ctx.store().ping()),
        tokio::time::timeout(PING_TIMEOUT, ctx.engine().queue_ping()),
    );
    let mut down = Vec::new();
    match pg {
        Ok(Ok(())) => {}
        Ok(Err(e)) => down.push(failed("postgres", e.to_string())),
        Err(_) => down.push(failed("postgres", "ping timed out".to_owned())),
    }
    match redis {
        Ok(Ok(())) => {}
        Ok(Err(e)) => down.push(failed("redis", e.to_string())),
        Err(_) => down.push(failed("redis", "ping timed out".to_owned())),
    }
    if down.is_empty() {
        return Ok(Json(Health { status: "ok" }));
    }
    let names: Vec<&str> = down.iter().map(|p| p.field.as_str()).collect();
    Err(Error::NotReady {
        message: format!("not ready: {} unreachable", names.join(" and ")),
        down,
    })
}

/// The real error is logged; the client only learns which dependency failed.
fn failed(what: &str, reason: String) -> Problem {
    tracing::warn!(dependency = what, %reason, "readiness check failed");
    Problem {
        field: what.to_owned(),
        code: "unreachable",
        message: format!("{what} is unreachable"),
    }
}
