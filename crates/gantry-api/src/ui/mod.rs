//! The queue inspection dashboard, served at `/` by the API process: HTML
//! rendered on the server with maud (one file per page), plain forms for
//! actions and a small hand-written `app.js` that follows runs over SSE.
//! Only the session cookie from `/login` lets anyone in (see [`session`]).

mod actions;
mod dag;
mod definitions;
mod error;
mod events;
mod instances;
mod layout;
mod overview;
mod queues;
mod run_detail;
mod runs;
mod session;
mod triggers;
mod workers;

pub(crate) use session::SessionKey;

use crate::Ctx;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::middleware::from_fn_with_state;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;

const APP_JS: &str = include_str!("app.js");
const APP_CSS: &str = include_str!("app.css");

/// Every dashboard route. All but `/login` and the two assets sit behind
/// the session guard; all of them behind the `Host` check of open mode.
pub(crate) fn routes(ctx: Ctx) -> Router<Ctx> {
    let pages = Router::new()
        .route("/", get(overview::page_handler))
        .route("/queues", get(queues::list))
        .route("/queues/{queue}", get(queues::jobs))
        .route("/queues/{queue}/dead/{job}/replay", post(actions::replay))
        .route("/runs", get(runs::list))
        .route("/runs/{id}", get(run_detail::page_handler))
        .route("/runs/{id}/events", get(crate::events::run_events))
        .route("/runs/{id}/cancel", post(actions::cancel))
        .route("/runs/{id}/retry", post(actions::retry))
        .route("/runs/{id}/nodes/{node}/instances", get(instances::list))
        .route(
            "/runs/{id}/nodes/{node}/instances/{index}/approve",
            post(actions::approve_instance),
        )
        .route(
            "/runs/{id}/nodes/{node}/instances/{index}/reject",
            post(actions::reject_instance),
        )
        .route("/runs/{id}/nodes/{node}/approve", post(actions::approve))
        .route("/runs/{id}/nodes/{node}/reject", post(actions::reject))
        .route("/workers", get(workers::page_handler))
        .route("/events", get(events::list))
        .route("/workflows", get(definitions::workflows))
        .route("/workflows/{name}", get(definitions::workflow))
        .route("/workflows/{name}/pause", post(actions::pause))
        .route("/workflows/{name}/resume", post(actions::resume))
        .route("/agents", get(definitions::agents))
        .route("/agents/{name}", get(definitions::agent))
        .route("/logout", post(session::logout))
        .route_layer(from_fn_with_state(ctx.clone(), session::guard));
    Router::new()
        .route("/login", get(session::login_page).post(session::login))
        .route("/ui/app.js", get(app_js))
        .route("/ui/app.css", get(app_css))
        .merge(pages)
        .layer(axum::middleware::map_response(headers))
        .route_layer(from_fn_with_state(ctx, host_guard))
}

/// In open mode, a page under a foreign `Host` (a DNS-rebinding site) is
/// refused, as on `/v1`.
async fn host_guard(
    axum::extract::State(ctx): axum::extract::State<Ctx>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    match crate::site::check_host(&ctx, req.headers()) {
        Ok(()) => next.run(req).await,
        Err(e) => error::UiError::Api(e).into_response(),
    }
}

/// Pages are never cached and never framed; scripts and styles only come
/// from this origin (the pages have no inline script or style).
async fn headers(mut res: axum::response::Response) -> axum::response::Response {
    let h = res.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, k: &'static str, v: &'static str| {
        if !h.contains_key(k) {
            h.insert(k, axum::http::HeaderValue::from_static(v));
        }
    };
    set(h, "cache-control", "no-store");
    set(
        h,
        "content-security-policy",
        "default-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    set(h, "x-content-type-options", "nosniff");
    set(h, "x-frame-options", "DENY");
    set(h, "referrer-policy", "same-origin");
    res
}

async fn app_js() -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (CACHE_CONTROL, "no-cache"),
        ],
        APP_JS,
    )
}

async fn app_css() -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, "text/css; charset=utf-8"),
            (CACHE_CONTROL, "no-cache"),
        ],
        APP_CSS,
    )
}
