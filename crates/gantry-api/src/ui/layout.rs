//! The page shell every dashboard page shares (head, nav, logout form) and
//! small formatting helpers. maud escapes every interpolated string.

use super::session::Session;
use axum::response::Html;
use chrono::{DateTime, Utc};
use maud::{html, Markup, DOCTYPE};

/// Which nav entry is current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    Overview,
    Queues,
    Runs,
    Workers,
    Workflows,
    Agents,
    Events,
}

const NAV: [(Nav, &str, &str); 7] = [
    (Nav::Overview, "/", "Overview"),
    (Nav::Queues, "/queues", "Queues"),
    (Nav::Runs, "/runs", "Runs"),
    (Nav::Workers, "/workers", "Workers"),
    (Nav::Workflows, "/workflows", "Workflows"),
    (Nav::Agents, "/agents", "Agents"),
    (Nav::Events, "/events", "Events"),
];

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · Gantry" }
            link rel="stylesheet" href="/ui/app.css";
            script src="/ui/app.js" defer {}
        }
    }
}

/// A page with the nav, for a logged-in session.
pub(crate) fn page(title: &str, current: Nav, session: &Session, body: Markup) -> Html<String> {
    let doc = html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                (nav(Some(current), Some(session)))
                main #content { (body) }
            }
        }
    };
    Html(doc.into_string())
}

/// The nav bar; the logout button only with a session.
pub(crate) fn nav(current: Option<Nav>, session: Option<&Session>) -> Markup {
    html! {
        nav #nav {
            span.brand { "Gantry" }
            @for (which, href, label) in NAV {
                a href=(href) class=[(current == Some(which)).then_some("current")] { (label) }
            }
            @if let Some(s) = session {
                form.logout method="post" action="/logout" {
                    input type="hidden" name="csrf" value=(s.csrf);
                    button #logout type="submit" { "Log out" }
                }
            }
        }
    }
}

/// A page without a session (login, errors).
pub(crate) fn bare(title: &str, body: Markup) -> Html<String> {
    let doc = html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                (nav(None, None))
                (body)
            }
        }
    };
    Html(doc.into_string())
}

/// A hidden CSRF field for a form.
pub(crate) fn csrf(session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

/// Percent-encode a query or path component (everything but unreserved).
pub(crate) fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `2026-11-30 17:05:09Z`.
pub(crate) fn time(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%SZ").to_string()
}

pub(crate) fn time_opt(t: Option<&DateTime<Utc>>) -> String {
    t.map_or_else(|| "–".to_owned(), time)
}

/// Unix milliseconds as a time.
pub(crate) fn time_ms(ms: u64) -> String {
    i64::try_from(ms)
        .ok()
        .and_then(DateTime::from_timestamp_millis)
        .map_or_else(|| "–".to_owned(), |t| time(&t))
}

/// A duration in milliseconds, short: `850 ms`, `12.3 s`, `4 min`, `2.5 h`.
pub(crate) fn span_ms(ms: i64) -> String {
    match ms {
        ..=999 => format!("{ms} ms"),
        1000..=59_999 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..=5_399_999 => format!("{} min", ms / 60_000),
        _ => format!("{:.1} h", ms as f64 / 3_600_000.0),
    }
}

/// A status badge; the class carries the colour.
pub(crate) fn status(s: &str) -> Markup {
    html! { span class={ "status status-" (s) } { (s) } }
}

/// JSON pretty-printed, cut to `max` bytes with a marker.
pub(crate) fn json_pre(v: &serde_json::Value, max: usize) -> Markup {
    let text = serde_json::to_string_pretty(v).unwrap_or_default();
    html! { pre.json { (cut(&text, max)) } }
}

/// The first `max` bytes of `s` (on a char boundary), marked when cut.
pub(crate) fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}\n… ({} bytes in all)", &s[..end], s.len())
}

/// The last `max` bytes of `s`, marked when cut.
pub(crate) fn tail(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    format!("… (last {max} of {} bytes)\n{}", s.len(), &s[start..])
}

/// Pager links: `a#first-page` when past the first page, `a#next-page`
/// when there is a next one.
pub(crate) fn pager(first: Option<String>, next: Option<String>) -> Markup {
    html! {
        @if first.is_some() || next.is_some() {
            p.pager {
                @if let Some(h) = first { a #first-page href=(h) { "← First page" } " " }
                @if let Some(h) = next { a #next-page href=(h) { "Next page →" } }
            }
        }
    }
}
