//! `/metrics` and `/healthz` for the roles that do not serve the API (worker
//! and coordinator), on `GANTRY_METRICS_LISTEN`, so Prometheus scrapes every
//! replica and Kubernetes probes it.

use anyhow::Context;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use tokio_util::sync::CancellationToken;

async fn metrics() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        gantry_telemetry::install().render(),
    )
}

/// Serve until `shutdown` fires; nothing when `listen` is `None`.
pub(crate) async fn spawn(
    listen: Option<&str>,
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
        .route("/healthz", get(|| async { "ok" }));
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
