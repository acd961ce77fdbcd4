//! `GET /`: runs by status, runs finished and failed over the last hour (in
//! five-minute bars), queue depths by state and the live workers.

use super::error::UiResult;
use super::layout::{self, enc, page, status, Nav};
use super::session::Session;
use crate::Ctx;
use axum::extract::State;
use axum::response::Html;
use axum::Extension;
use gantry_store::Activity;
use maud::{html, Markup};

const BUCKETS: u32 = 12;
const BUCKET_S: u32 = 300;

pub(crate) async fn page_handler(
    State(ctx): State<Ctx>,
    Extension(session): Extension<Session>,
) -> UiResult<Html<String>> {
    let store = ctx.store();
    let engine = ctx.engine();
    let (counts, activity, queues, workers) = tokio::try_join!(
        async { store.run_counts().await.map_err(crate::Error::from) },
        async {
            store
                .run_activity(BUCKETS, BUCKET_S)
                .await
                .map_err(crate::Error::from)
        },
        async { engine.all_queue_stats().await.map_err(crate::Error::from) },
        async { engine.workers().await.map_err(crate::Error::from) },
    )?;
    let total: i64 = counts.iter().map(|(_, n)| n).sum();
    let body = html! {
        h1 { "Overview" }
        section #runs-by-status {
            h2 { "Runs by status" }
            div.cards {
                div.card { span.label { "all" } span.count #runs-total { (total) } }
                @for s in ["running", "succeeded", "failed", "cancelled"] {
                    @let n = counts.iter().find(|(st, _)| st.as_str() == s).map_or(0, |(_, n)| *n);
                    a.card href={ "/runs?status=" (s) } data-status=(s) {
                        span.label { (status(s)) }
                        span.count { (n) }
                    }
                }
            }
        }
        (last_hour(&activity))
        section #queue-depths {
            h2 { "Queue depths" }
            @if queues.is_empty() {
                p.empty { "No queue has had a job yet." }
            } @else {
                table.data {
                    thead { tr { th { "queue" } th.num { "ready" } th.num { "delayed" } th.num { "in flight" } th.num { "dead" } } }
                    tbody {
                        @for (name, s) in &queues {
                            tr.queue data-queue=(name) {
                                td { a href={ "/queues/" (enc(name)) } { (name) } }
                                td.num.ready { (s.ready) }
                                td.num.delayed { (s.delayed) }
                                td.num.in_flight { (s.in_flight) }
                                td.num.dead { (s.dead) }
                            }
                        }
                    }
                }
            }
        }
        section #live-workers {
            h2 { "Live workers " span.count { (workers.len()) } }
            @if workers.is_empty() {
                p.empty { "No worker has sent a heartbeat in the last few seconds." }
            } @else {
                table.data {
                    thead { tr { th { "worker" } th { "queues" } th.num { "running" } th.num { "concurrency" } } }
                    tbody {
                        @for w in &workers {
                            tr.worker data-worker=(w.id) {
                                td { (w.id) }
                                td { (w.queues.join(", ")) }
                                td.num { (w.running.len()) }
                                td.num { (w.concurrency) }
                            }
                        }
                    }
                }
                p { a href="/workers" { "Worker details →" } }
            }
        }
    };
    Ok(page("Overview", Nav::Overview, &session, body))
}

/// Totals and a bar per five minutes: succeeded stacked on failed and
/// cancelled.
fn last_hour(a: &Activity) -> Markup {
    let finished: i64 = a
        .finished
        .iter()
        .map(|b| b.succeeded + b.failed + b.cancelled)
        .sum();
    let failed: i64 = a.finished.iter().map(|b| b.failed).sum();
    let max = a
        .finished
        .iter()
        .map(|b| b.succeeded + b.failed + b.cancelled)
        .max()
        .unwrap_or(0)
        .max(1);
    let (bar_w, gap, h) = (28i64, 6i64, 90i64);
    let width = a.finished.len() as i64 * (bar_w + gap);
    html! {
        section #last-hour {
            h2 { "Last hour" }
            p.hint { "Runs finished per five minutes: succeeded in green, failed and cancelled in red." }
            div.cards {
                div.card { span.label { "started" } span.count #started-last-hour { (a.started) } }
                div.card { span.label { "finished" } span.count #finished-last-hour { (finished) } }
                div.card { span.label { "per minute" } span.count #throughput { (format!("{:.1}", finished as f64 / 60.0)) } }
                div.card { span.label { (status("failed")) } span.count #failed-last-hour { (failed) } }
            }
            svg.bars xmlns="http://www.w3.org/2000/svg" width=(width) height=(h + 16)
                viewBox={ "0 0 " (width) " " (h + 16) } role="img"
                aria-label="runs finished per five minutes over the last hour" {
                @for (i, b) in a.finished.iter().enumerate() {
                    @let x = i as i64 * (bar_w + gap);
                    @let ok_h = b.succeeded * h / max;
                    @let bad_h = (b.failed + b.cancelled) * h / max;
                    @let at = a.since + chrono::Duration::seconds(i as i64 * a.bucket_s);
                    g.bar {
                        title { (layout::time(&at)) ": " (b.succeeded) " succeeded, " (b.failed) " failed, " (b.cancelled) " cancelled" }
                        rect.bar-ok x=(x) y=(h - ok_h - bad_h) width=(bar_w) height=(ok_h) {}
                        rect.bar-bad x=(x) y=(h - bad_h) width=(bar_w) height=(bad_h) {}
                    }
                }
                line.base x1="0" y1=(h) x2=(width) y2=(h) {}
                text x="0" y=(h + 13) { "−60 min" }
                text x=(width) y=(h + 13) text-anchor="end" { "now" }
            }
        }
    }
}
