//! Dashboard sessions: the login page trades an API token (checked by
//! [`crate::Access`] exactly as `/v1` checks it) for a signed cookie, and a
//! guard on every other page lets only that cookie in. POSTs must also be
//! same-origin (Origin, Sec-Fetch-Site) and carry a CSRF token derived from
//! the session, so a cross-site form can never act.

use super::error::UiError;
use super::layout;
use crate::Ctx;
use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::header::{COOKIE, HOST, LOCATION, ORIGIN, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use maud::html;
use serde::Deserialize;
use sha2::Sha256;
use std::sync::Arc;

/// Name of the session cookie.
pub(crate) const COOKIE_NAME: &str = "gantry_session";
/// How long a session lasts.
const SESSION_S: u64 = 12 * 3600;
/// Largest form body a dashboard POST may send.
const MAX_FORM_BYTES: usize = 16 * 1024;

/// The key sessions and CSRF tokens are signed with: derived from
/// `GANTRY_SESSION_SECRET` when set (every replica accepts the session),
/// else random per process, so a restart logs everybody out.
#[derive(Clone)]
pub(crate) struct SessionKey(Arc<[u8; 32]>);

impl SessionKey {
    pub(crate) fn random() -> Self {
        use rand::RngCore;
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        Self(Arc::new(key))
    }

    /// A key shared by every replica (`GANTRY_SESSION_SECRET`).
    pub(crate) fn from_key(key: [u8; 32]) -> Self {
        Self(Arc::new(key))
    }

    fn mac(&self, parts: &[&str]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0[..]).expect("any key length");
        for p in parts {
            mac.update(p.as_bytes());
            mac.update(b"\n");
        }
        mac
    }

    fn sign(&self, parts: &[&str]) -> String {
        hex::encode(self.mac(parts).finalize().into_bytes())
    }

    /// Constant-time check of a hex signature.
    fn verify(&self, parts: &[&str], sig: &str) -> bool {
        match hex::decode(sig) {
            Ok(bytes) => self.mac(parts).verify_slice(&bytes).is_ok(),
            Err(_) => false,
        }
    }
}

/// A logged-in request, as the pages see it.
#[derive(Clone, Debug)]
pub(crate) struct Session {
    /// The hidden `csrf` field every form must carry.
    pub(crate) csrf: String,
}

fn now_s() -> u64 {
    gantry_queue::unix_ms() / 1000
}

/// Cookie value `EXPIRES.TOKEN_ID.SIGNATURE`; `TOKEN_ID` is the first 16
/// hex digits of the token's hash (`open` when no token is configured), so
/// removing a token from the configuration ends its sessions.
fn new_session(key: &SessionKey, token_id: &str) -> String {
    let expires = (now_s() + SESSION_S).to_string();
    let sig = key.sign(&["session", &expires, token_id]);
    format!("{expires}.{token_id}.{sig}")
}

fn check_session(ctx: &Ctx, value: &str) -> Option<Session> {
    let mut parts = value.splitn(3, '.');
    let (expires, token_id, sig) = (parts.next()?, parts.next()?, parts.next()?);
    if !ctx.ui_key.verify(&["session", expires, token_id], sig) {
        return None;
    }
    if expires.parse::<u64>().ok()? <= now_s() {
        return None;
    }
    if !ctx.state.access.knows_token_id(token_id) {
        return None;
    }
    Some(Session {
        csrf: ctx.ui_key.sign(&["csrf", value])[..32].to_owned(),
    })
}

fn cookie_value(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE_NAME)
        .map(|(_, v)| v)
}

/// Whether a POST comes from a page of this very site. Browsers send
/// `Sec-Fetch-Site` and/or `Origin` with every form post; a client that
/// sends neither (curl, tests) still needs the CSRF token.
pub(crate) fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        if !matches!(site.to_str(), Ok("same-origin") | Ok("none")) {
            return false;
        }
    }
    match headers.get(ORIGIN) {
        None => true,
        Some(origin) => {
            let Ok(origin) = origin.to_str() else {
                return false;
            };
            let host = headers.get(HOST).and_then(|h| h.to_str().ok());
            let origin_host = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"));
            matches!((origin_host, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
        }
    }
}

/// A local path (printable ASCII, as the guard percent-encodes it) to go
/// back to after logging in; anything else is `/`.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && n.len() <= 2048
                && n.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

/// A 303 to `to`, or to `/` when `to` cannot be a header value.
fn redirect(to: &str) -> Response {
    let mut res = StatusCode::SEE_OTHER.into_response();
    let to = HeaderValue::from_str(to).unwrap_or_else(|_| HeaderValue::from_static("/"));
    res.headers_mut().insert(LOCATION, to);
    res
}

/// The guard on every dashboard route but the login page and assets: no
/// valid session, a 303 to the login page; a POST that is cross-site or
/// lacks the session's CSRF token, a 403.
pub(crate) async fn guard(State(ctx): State<Ctx>, req: Request, next: Next) -> Response {
    let Some(session) = cookie_value(req.headers()).and_then(|v| check_session(&ctx, v)) else {
        if req.method() == Method::POST {
            return UiError::Forbidden("your session has expired; log in again").into_response();
        }
        let here = req
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        return redirect(&format!("/login?next={}", layout::enc(&here)));
    };
    let mut req = req;
    if req.method() == Method::POST {
        if !same_origin(req.headers()) {
            return UiError::Forbidden("cross-site request refused").into_response();
        }
        let (parts, body) = req.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM_BYTES).await else {
            return UiError::BadRequest("form too large".to_owned()).into_response();
        };
        let token = form_urlencoded_field(&bytes, "csrf");
        let good = token.is_some_and(|t| {
            t.len() == session.csrf.len()
                && t.bytes()
                    .zip(session.csrf.bytes())
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0
        });
        if !good {
            return UiError::Forbidden("missing or wrong csrf token; reload the page")
                .into_response();
        }
        req = Request::from_parts(parts, Body::from(bytes));
    }
    req.extensions_mut().insert(session);
    next.run(req).await
}

fn form_urlencoded_field(body: &[u8], name: &str) -> Option<String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginQuery {
    next: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginForm {
    token: Option<String>,
    next: Option<String>,
}

fn login_form(ctx: &Ctx, next: &str, error: Option<&str>) -> maud::Markup {
    html! {
        main.login {
            h1 { "Gantry" }
            form method="post" action="/login" id="login-form" {
                @if let Some(e) = error {
                    p #login-error .error role="alert" { (e) }
                }
                @if ctx.state.access.is_open() {
                    p.hint { "This API has no tokens configured: any input logs in." }
                }
                label for="token" { "API token" }
                input #token name="token" type="password" autocomplete="current-password"
                    autofocus required[!ctx.state.access.is_open()];
                input type="hidden" name="next" value=(next);
                button #login-submit type="submit" { "Log in" }
            }
        }
    }
}

/// `GET /login`.
pub(crate) async fn login_page(
    State(ctx): State<Ctx>,
    q: Result<Query<LoginQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let next = safe_next(q.as_ref().ok().and_then(|q| q.0.next.as_deref()));
    layout::bare("Log in", login_form(&ctx, &next, None)).into_response()
}

/// `POST /login`: a good token sets the session cookie and goes on to
/// `next`; a bad one answers 401 with the form again.
pub(crate) async fn login(State(ctx): State<Ctx>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    if !same_origin(&parts.headers) {
        return UiError::Forbidden("cross-site request refused").into_response();
    }
    // Guessing tokens costs a request each, under the API's rate limit
    // (per client address), like any `/v1` call.
    let peer = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map_or_else(|| "local".to_owned(), |c| c.0.ip().to_string());
    if let Some(retry_after_s) = ctx.state.access.throttle(&format!("login:{peer}")) {
        return UiError::Api(crate::Error::TooManyRequests {
            message: "too many login attempts; retry later".to_owned(),
            retry_after_s,
        })
        .into_response();
    }
    let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM_BYTES).await else {
        return UiError::BadRequest("form too large".to_owned()).into_response();
    };
    let form: LoginForm = serde_urlencoded::from_bytes(&bytes).unwrap_or(LoginForm {
        token: None,
        next: None,
    });
    let next = safe_next(form.next.as_deref());
    let token = form.token.unwrap_or_default();
    let Some(token_id) = ctx.state.access.token_id(token.trim()) else {
        tracing::info!("dashboard login refused");
        let page = layout::bare(
            "Log in",
            login_form(&ctx, &next, Some("That token is not accepted.")),
        );
        return (StatusCode::UNAUTHORIZED, page).into_response();
    };
    let value = new_session(&ctx.ui_key, &token_id);
    let cookie = format!(
        "{COOKIE_NAME}={value}; Path=/; Max-Age={SESSION_S}; HttpOnly; Secure; SameSite=Strict"
    );
    let mut res = redirect(&next);
    res.headers_mut().insert(
        SET_COOKIE,
        HeaderValue::from_str(&cookie).expect("cookie is ascii"),
    );
    res
}

/// `POST /logout`: the cookie is cleared (it stays valid until it expires
/// if someone copied it; sessions are stateless).
pub(crate) async fn logout() -> Response {
    let mut res = redirect("/login");
    res.headers_mut().insert(
        SET_COOKIE,
        HeaderValue::from_static(
            "gantry_session=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict",
        ),
    );
    res
}
