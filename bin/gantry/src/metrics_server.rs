//! `/metrics`, `/healthz` and `/readyz` for the roles that do not serve the
//! API (worker and coordinator), on `GANTRY_METRICS_LISTEN`, so Prometheus
//! scrapes every replica and Kubernetes probes it. `/healthz` is liveness
//! (the process answers); `/readyz` is 503 while Postgres or Redis does not
//! answer, or while this process's writes have failed for longer than
//! `GANTRY_WRITE_FAILURE_S` in a row, and 200 again after a write succeeds.

use anyhow::Context;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Json;
use gantry_engine::Engine;
use serde_json::json;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long `/readyz` waits for each dependency.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

async fn metrics() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        gantry_telemetry::install().render(),
    )
}

#[derive(Clone)]
struct Ready {
    engine: Engine,
    /// Writes failing in a row for longer than this make the process unready.
    write_failure: Duration,
}

async fn readyz(State(ready): State<Ready>) -> impl IntoResponse {
    let engine = &ready.engine;
    let (pg, redis) = tokio::join!(
        tokio::time::timeout(PING_TIMEOUT, engine.reads().ping()),
        tokio::time::timeout(PING_TIMEOUT, engine.queue_ping()),
    );
    let mut down = Vec::new();
    if !matches!(pg, Ok(Ok(()))) {
        down.push(json!({"field": "postgres", "code": "unreachable",
                         "message": "postgres is unreachable"}));
    }
    if !matches!(redis, Ok(Ok(()))) {
        down.push(json!({"field": "redis", "code": "unreachable",
                         "message": "redis is unreachable"}));
    }
    if let Some(failing) = engine.health.failing_for() {
        // An idle process makes no write that could end the streak: try a
        // harmless one before calling it unready.
        let probe = tokio::time::timeout(PING_TIMEOUT, engine.probe_write()).await;
        if matches!(probe, Ok(Ok(()))) {
            engine.health.ok();
        } else if failing > ready.write_failure {
            down.push(json!({"field": "writes", "code": "writes_failing",
                "message": format!("writes to postgres have failed for {}s in a row",
                                   failing.as_secs())}));
        }
    }
    if down.is_empty() {
        return (StatusCode::OK, Json(json!({"status": "ok"})));
    }
    tracing::warn!(problems = ?down, "not ready");
    let message = "not ready: ".to_owned()
        + &down
            .iter()
            .filter_map(|d| d["message"].as_str())
            .collect::<Vec<_>>()
            .join("; ");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"error": {"code": "unavailable", "message": message, "details": down}})),
    )
}

/// Serve until `shutdown` fires; nothing when `listen` is `None`.
pub(crate) async fn spawn(
    listen: Option<&str>,
    engine: Engine,
    write_failure: Duration,
    shutdown: CancellationToken,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    let Some(listen) = listen else {
        return Ok(None);
    };
    gantry_telemetry::install();
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen for /metrics on {listen}"))?;
    tracing::info!(addr = %listener.local_addr()?, "metrics listening");
    let app = axum::Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(Ready {
            engine,
            write_failure,
        });
    Ok(Some(tokio::spawn(async move {
        let stop = async move { shutdown.cancelled().await };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::error!(error = %e, "metrics server failed");
        }
    })))
}
