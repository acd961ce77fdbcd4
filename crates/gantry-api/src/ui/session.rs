//! Dashboard sessions: the login page trades an API token (checked by
//! [`crate::Access`] exactly as `/v1` checks it, failed attempts counted
//! per address) for a signed cookie naming a random session id, and a
//! guard on every other page lets only a live session in. Sessions live in
//! Postgres, so logging out ends one on every API replica at once. POSTs
//! must also be same-origin (Origin, Sec-Fetch-Site) and carry a CSRF token
//! derived from the session, so a cross-site form can never act.

use super::error::UiError;
use super::layout;
use crate::site::same_origin;
use crate::Ctx;
use axum::body::Body;
use axum::extract::{Extension, Query, Request, State};
use axum::http::header::{COOKIE, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use maud::html;
use serde::Deserialize;
use sha2::{Digest, Sha256};
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
    /// The random session id (what logout revokes).
    id: String,
}

/// Bytes of a session id: 128 bits from the operating system's CSPRNG
/// (through `rand`'s thread generator, reseeded from it).
const SESSION_ID_BYTES: usize = 16;

/// A new random session id, hex.
fn new_session_id() -> String {
    use rand::RngCore;
    let mut id = [0u8; SESSION_ID_BYTES];
    rand::rng().fill_bytes(&mut id);
    hex::encode(id)
}

/// The row key of a session: the hash of its id, so the table alone
/// opens no session.
fn id_hash(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

/// Cookie value `SESSION_ID.SIGNATURE`. The id names a row of the store
/// that holds the token id and the expiry; the cookie shows nothing of the
/// token.
fn cookie_for(key: &SessionKey, id: &str) -> String {
    format!("{id}.{}", key.sign(&["session", id]))
}

/// The live session a cookie names, if any: a good signature, a row that
/// has neither expired nor been logged out, and a token still configured.
async fn check_session(ctx: &Ctx, value: &str) -> Result<Option<Session>, crate::Error> {
    let Some((id, sig)) = value.split_once('.') else {
        return Ok(None);
    };
    if id.len() != 2 * SESSION_ID_BYTES || !ctx.ui_key.verify(&["session", id], sig) {
        return Ok(None);
    }
    let Some(token_id) = ctx.store().session_token(&id_hash(id)).await? else {
        return Ok(None);
    };
    if !ctx.state.access.knows_token_id(&token_id) {
        return Ok(None);
    }
    Ok(Some(Session {
        csrf: ctx.ui_key.sign(&["csrf", id])[..32].to_owned(),
        id: id.to_owned(),
    }))
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
    let session = match cookie_value(req.headers()) {
        Some(v) => match check_session(&ctx, v).await {
            Ok(s) => s,
            Err(e) => return UiError::Api(e).into_response(),
        },
        None => None,
    };
    let Some(session) = session else {
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
    // (per client address), like any `/v1` call; and failed attempts are
    // counted per address like bad `/v1` tokens.
    let peer = crate::auth::peer_ip(&parts.extensions);
    if let Err(e) = ctx.state.access.check_failures(peer) {
        return UiError::Api(e).into_response();
    }
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
        ctx.state.access.record_failure(peer);
        let page = layout::bare(
            "Log in",
            login_form(&ctx, &next, Some("That token is not accepted.")),
        );
        return (StatusCode::UNAUTHORIZED, page).into_response();
    };
    let id = new_session_id();
    let expires = chrono::Utc::now() + chrono::Duration::seconds(SESSION_S as i64);
    if let Err(e) = ctx
        .engine()
        .create_session(&id_hash(&id), &token_id, expires)
        .await
    {
        return UiError::Api(e.into()).into_response();
    }
    let value = cookie_for(&ctx.ui_key, &id);
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

/// `POST /logout`: the session is deleted from the store, so its cookie is
/// dead on every replica even if someone copied it, and the cookie is
/// cleared.
pub(crate) async fn logout(
    State(ctx): State<Ctx>,
    Extension(session): Extension<Session>,
) -> Response {
    if let Err(e) = ctx.engine().delete_session(&id_hash(&session.id)).await {
        return UiError::Api(e.into()).into_response();
    }
    let mut res = redirect("/login");
    res.headers_mut().insert(
        SET_COOKIE,
        HeaderValue::from_static(
            "gantry_session=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict",
        ),
    );
    res
}
