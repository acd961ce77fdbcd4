//! Who may talk to the API from a browser: the checks against drive-by
//! requests that `/v1` and the dashboard share. A page on another site must
//! not be able to post to `/v1` (cross-site `Origin` or `Sec-Fetch-Site`, or
//! a body that is not `application/json`, which a form or a "simple" fetch
//! could send without a CORS preflight), and in open mode a DNS-rebinding
//! page must not reach it under a foreign `Host`.

use crate::error::Error;
use crate::Ctx;
use axum::extract::{Request, State};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST, ORIGIN, TRANSFER_ENCODING};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, SocketAddr};

/// Whether a request comes from a page of this very site, or from no page
/// at all. Browsers send `Sec-Fetch-Site` and/or `Origin`; `same-site` is
/// refused too, since another port on localhost is another origin. A client
/// that sends neither (curl, the SDKs) passes.
pub(crate) fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        if !matches!(site.to_str(), Ok("same-origin") | Ok("none")) {
            return false;
        }
    }
    match headers.get(ORIGIN) {
        None => true,
        Some(origin) => {
            let host = headers.get(HOST).and_then(|h| h.to_str().ok());
            match (origin.to_str(), host) {
                (Ok(origin), Some(host)) => origin_is_host(origin, host),
                _ => false,
            }
        }
    }
}

/// Whether `origin` (`scheme://host[:port]`) names the same host and port as
/// the `Host` header, a default port written or not.
fn origin_is_host(origin: &str, host: &str) -> bool {
    let (scheme, rest) = match origin.split_once("://") {
        Some((s, r)) if s.eq_ignore_ascii_case("http") => ("http", r),
        Some((s, r)) if s.eq_ignore_ascii_case("https") => ("https", r),
        _ => return false,
    };
    let default = if scheme == "http" { ":80" } else { ":443" };
    let norm = |s: &str| {
        let s = s.to_ascii_lowercase();
        match s.strip_suffix(default) {
            Some(bare) => bare.to_owned(),
            None => s,
        }
    };
    !rest.contains('/') && norm(rest) == norm(host)
}

/// The host name of a `Host` header, without its port (`[::1]:80` is
/// `::1`).
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default();
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// Whether an open API (no token) may answer a request with this `Host`:
/// a loopback name or address, the address it listens on, or, when it
/// listens on every interface, one of `allowed` (`GANTRY_ALLOWED_HOSTS`).
/// A request without `Host` (HTTP/1.0, in-process tests) passes: browsers
/// always send one.
pub(crate) fn host_allowed(
    host: Option<&str>,
    listen: Option<SocketAddr>,
    allowed: &[String],
) -> bool {
    let Some(host) = host else {
        return true;
    };
    let name = host_name(host.trim())
        .trim_end_matches('.')
        .to_ascii_lowercase();
    if name == "localhost" || name.ends_with(".localhost") {
        return true;
    }
    if let Ok(ip) = name.parse::<IpAddr>() {
        if ip.is_loopback() || listen.is_some_and(|l| l.ip() == ip && !ip.is_unspecified()) {
            return true;
        }
    }
    listen.is_some_and(|l| l.ip().is_unspecified())
        && allowed.iter().any(|a| {
            host_name(a.trim())
                .trim_end_matches('.')
                .eq_ignore_ascii_case(&name)
        })
}

/// 403 `bad_host` unless [`host_allowed`] (checked in open mode only: with
/// a token, a rebinding page has nothing to send).
pub(crate) fn check_host(ctx: &Ctx, headers: &HeaderMap) -> Result<(), Error> {
    if !ctx.state.access.is_open() {
        return Ok(());
    }
    let host = headers.get(HOST).map(|h| h.to_str().unwrap_or("\u{fffd}"));
    if host_allowed(host, ctx.listen, &ctx.state.config.allowed_hosts) {
        return Ok(());
    }
    Err(Error::refused(
        StatusCode::FORBIDDEN,
        "bad_host",
        "host",
        "the Host header names neither this server's listen address nor localhost; \
         an open API (no token) answers only those (add names to GANTRY_ALLOWED_HOSTS \
         when listening on every interface)",
    ))
}

/// Whether the headers announce a body: a non-zero length, or chunks.
pub(crate) fn announces_body(headers: &HeaderMap) -> bool {
    if headers.contains_key(TRANSFER_ENCODING) {
        return true;
    }
    match headers.get(CONTENT_LENGTH) {
        None => false,
        Some(v) => v.to_str().ok().map(str::trim) != Some("0"),
    }
}

/// Whether `Content-Type` is `application/json` (any parameters, any case).
pub(crate) fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
}

/// 415 `unsupported_media_type` naming the header.
pub(crate) fn not_json() -> Error {
    Error::refused(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "content-type",
        "a request body must be sent with Content-Type: application/json",
    )
}

/// The first middleware of `/v1`: a foreign `Host` in open mode (403
/// `bad_host`), a cross-site request (403 `cross_site`), or a body that is
/// not declared JSON (415) never reaches a handler.
pub(crate) async fn v1_guard(State(ctx): State<Ctx>, req: Request, next: Next) -> Response {
    if let Err(e) = check_host(&ctx, req.headers()) {
        return e.into_response();
    }
    if !same_origin(req.headers()) {
        let field = if req.headers().contains_key("sec-fetch-site") {
            "sec-fetch-site"
        } else {
            "origin"
        };
        return Error::refused(
            StatusCode::FORBIDDEN,
            "cross_site",
            field,
            "cross-site requests to /v1 are refused; call the API from a server, a script or this site",
        )
        .into_response();
    }
    if announces_body(req.headers()) && !is_json(req.headers()) {
        return not_json().into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listen(s: &str) -> Option<SocketAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn loopback_and_listen_hosts_pass_in_open_mode() {
        let l = listen("127.0.0.1:8080");
        for h in [
            "localhost",
            "localhost:8080",
            "LOCALHOST.",
            "app.localhost:1",
            "127.0.0.1:8080",
            "[::1]:8080",
            "[::1]",
        ] {
            assert!(host_allowed(Some(h), l, &[]), "{h}");
        }
        for h in [
            "evil.example",
            "evil.example:8080",
            "localhost.evil.example",
            "10.0.0.1:8080",
            "",
        ] {
            assert!(!host_allowed(Some(h), l, &[]), "{h}");
        }
        assert!(host_allowed(
            Some("10.0.0.1:8080"),
            listen("10.0.0.1:8080"),
            &[]
        ));
        let names = vec!["gantry.internal".to_owned()];
        assert!(
            !host_allowed(Some("gantry.internal"), l, &names),
            "only on 0.0.0.0"
        );
        assert!(host_allowed(
            Some("Gantry.Internal:8080"),
            listen("0.0.0.0:8080"),
            &names
        ));
        assert!(host_allowed(
            Some("gantry.internal"),
            listen("[::]:8080"),
            &names
        ));
        assert!(!host_allowed(
            Some("other.internal"),
            listen("0.0.0.0:8080"),
            &names
        ));
        assert!(!host_allowed(
            Some("0.0.0.0:8080"),
            listen("0.0.0.0:8080"),
            &[]
        ));
        let v6 = vec!["[fd00::5]".to_owned(), "gantry.lan:8080".to_owned()];
        assert!(host_allowed(
            Some("[fd00::5]:8080"),
            listen("[::]:8080"),
            &v6
        ));
        assert!(host_allowed(Some("gantry.lan"), listen("[::]:8080"), &v6));
    }

    #[test]
    fn origin_must_be_the_host() {
        assert!(origin_is_host("http://localhost:8080", "localhost:8080"));
        assert!(origin_is_host("HTTP://LocalHost:8080", "localhost:8080"));
        assert!(origin_is_host("http://example.com:80", "example.com"));
        assert!(origin_is_host("https://example.com", "example.com:443"));
        assert!(!origin_is_host("http://localhost:3000", "localhost:8080"));
        assert!(!origin_is_host("null", "localhost:8080"));
        assert!(!origin_is_host("http://evil.example", "localhost"));
        assert!(!origin_is_host("ftp://localhost:8080", "localhost:8080"));
    }

    #[test]
    fn json_content_types() {
        let mut h = HeaderMap::new();
        assert!(!is_json(&h));
        h.insert(
            CONTENT_TYPE,
            "Application/JSON; charset=utf-8".parse().unwrap(),
        );
        assert!(is_json(&h));
        h.insert(CONTENT_TYPE, "text/plain".parse().unwrap());
        assert!(!is_json(&h));
        h.insert(CONTENT_TYPE, "application/jsonx".parse().unwrap());
        assert!(!is_json(&h));
    }
}
