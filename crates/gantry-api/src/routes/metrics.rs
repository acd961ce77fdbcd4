//! `/metrics`: Prometheus text of this process's recorder, with the gauges
//! that are read at scrape time (queue depths, live workers, active runs)
//! refreshed first, and the HTTP request metrics middleware.

use crate::Ctx;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use gantry_telemetry as t;
use std::time::Instant;

pub(crate) fn routes() -> Router<Ctx> {
    Router::new().route("/metrics", get(metrics))
}

/// Prometheus text format. Gauges read from Redis and Postgres are skipped
/// (and logged) when those are down: a scrape must not fail for it.
pub(crate) async fn metrics(State(ctx): State<Ctx>) -> Response {
    refresh_queue_gauges(&ctx).await;
    refresh_worker_gauges(&ctx).await;
    match ctx.store().running_runs().await {
        Ok(n) => metrics::gauge!(t::RUNS_ACTIVE).set(n as f64),
        Err(e) => tracing::warn!(error = %e, "metrics: cannot count running runs"),
    }
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4")],
        t::install().render(),
    )
        .into_response()
}

async fn refresh_queue_gauges(ctx: &Ctx) {
    let all = match ctx.engine().all_queue_stats().await {
        Ok(all) => all,
        Err(e) => {
            tracing::warn!(error = %e, "metrics: cannot read queues");
            return;
        }
    };
    for (name, s) in all {
        for (state, n) in [
            ("ready", s.ready),
            ("delayed", s.delayed),
            ("in_flight", s.in_flight),
            ("dead", s.dead),
        ] {
            metrics::gauge!(t::QUEUE_JOBS, "queue" => name.clone(), "state" => state).set(n as f64);
        }
    }
}

/// Live workers and their slots, from their heartbeats in Redis.
async fn refresh_worker_gauges(ctx: &Ctx) {
    let workers = match ctx.engine().workers().await {
        Ok(w) => w,
        Err(e) => {
            tracing::warn!(error = %e, "metrics: cannot read workers");
            return;
        }
    };
    let total: usize = workers.iter().map(|w| w.concurrency).sum();
    let busy: usize = workers.iter().map(|w| w.running.len()).sum();
    metrics::gauge!(t::WORKERS_LIVE).set(workers.len() as f64);
    metrics::gauge!(t::WORKER_SLOTS, "state" => "total").set(total as f64);
    metrics::gauge!(t::WORKER_SLOTS, "state" => "busy").set(busy as f64);
}

/// Count and time every request by method, route template (never the raw
/// path, which holds ids) and status.
pub(crate) async fn track(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().as_str().to_owned();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    metrics::counter!(t::HTTP_REQUESTS, "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!(t::HTTP_DURATION, "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    res
}
