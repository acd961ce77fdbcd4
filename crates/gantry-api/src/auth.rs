//! Bearer tokens and per-client rate limits on `/v1`. Only SHA-256 hashes
//! of tokens are configured, so a leaked configuration leaks no token. With
//! no hashes configured the API is open (a laptop's `gantry dev`), and the
//! binary warns about it at start-up. Failed authentications are counted
//! per client address ([`crate::failures`]).

use crate::error::Error;
use crate::failures::FailureLimit;
use crate::Ctx;
use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::{DefaultKeyedRateLimiter, Quota};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Instant;

/// Failed authentications per minute per client address by default.
pub const DEFAULT_AUTH_FAILURES_PER_MIN: u32 = 10;

/// Who may call `/v1`, and how often.
#[derive(Clone)]
pub struct Access {
    /// Hex SHA-256 of each accepted token; empty: no token needed.
    hashes: Arc<HashSet<String>>,
    /// Requests per second per token (per client address when open).
    limiter: Option<Arc<DefaultKeyedRateLimiter<String>>>,
    /// Key dashboard sessions are signed with when every API replica must
    /// accept them; `None`: a random key per process.
    session_key: Option<[u8; 32]>,
    /// Failed authentications per client address; `None`: not limited.
    failures: Option<Arc<FailureLimit>>,
}

impl Default for Access {
    /// Open, unlimited (failed logins still counted, by default).
    fn default() -> Self {
        Self::new(Vec::new(), 0)
    }
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("tokens", &self.hashes.len())
            .field("rate_limited", &self.limiter.is_some())
            .finish()
    }
}

/// Hex SHA-256 of a token, as configured in `GANTRY_API_TOKEN_SHA256`.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Access {
    /// `hashes`: hex SHA-256 of accepted tokens (case-insensitive);
    /// `per_second`: 0 for no rate limit, else the sustained rate, with
    /// bursts of twice that.
    pub fn new(hashes: impl IntoIterator<Item = String>, per_second: u32) -> Self {
        let limiter = NonZeroU32::new(per_second).map(|rate| {
            let burst = rate.saturating_mul(NonZeroU32::new(2).expect("2 > 0"));
            Arc::new(DefaultKeyedRateLimiter::keyed(
                Quota::per_second(rate).allow_burst(burst),
            ))
        });
        Self {
            hashes: Arc::new(
                hashes
                    .into_iter()
                    .map(|h| h.trim().to_ascii_lowercase())
                    .filter(|h| !h.is_empty())
                    .collect(),
            ),
            limiter,
            session_key: None,
            failures: FailureLimit::new(DEFAULT_AUTH_FAILURES_PER_MIN).map(Arc::new),
        }
    }

    /// Allow `per_min` failed authentications a minute per client address
    /// (bursts of as many) before answering 429; 0 turns the count off.
    pub fn with_auth_failures_per_min(mut self, per_min: u32) -> Self {
        self.failures = FailureLimit::new(per_min).map(Arc::new);
        self
    }

    /// `Err(429)` when `peer` has failed to authenticate too often.
    pub(crate) fn check_failures(&self, peer: IpAddr) -> Result<(), Error> {
        match self
            .failures
            .as_ref()
            .and_then(|f| f.blocked(peer, Instant::now()))
        {
            None => Ok(()),
            Some(retry_after_s) => Err(Error::TooManyRequests {
                message: "too many failed authentications from this address; retry later"
                    .to_owned(),
                retry_after_s,
            }),
        }
    }

    /// Count a failed authentication of `peer`.
    pub(crate) fn record_failure(&self, peer: IpAddr) {
        if let Some(f) = &self.failures {
            f.record(peer, Instant::now());
        }
    }

    /// Sign dashboard sessions with a key derived from `secret`, so that
    /// every API replica given the same secret accepts the same sessions
    /// (and a restart keeps them).
    pub fn with_session_secret(mut self, secret: &str) -> Self {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(b"gantry dashboard session\n");
        h.update(secret.as_bytes());
        self.session_key = Some(h.finalize().into());
        self
    }

    pub(crate) fn session_key(&self) -> Option<[u8; 32]> {
        self.session_key
    }

    /// Whether a token is required.
    pub fn is_open(&self) -> bool {
        self.hashes.is_empty()
    }

    /// The dashboard's name for an accepted token: the first 16 hex digits
    /// of its hash (`open` when no token is needed); `None` when refused.
    pub(crate) fn token_id(&self, token: &str) -> Option<String> {
        if self.is_open() {
            return Some("open".to_owned());
        }
        let hash = token_hash(token);
        (!token.is_empty() && self.hashes.contains(&hash)).then(|| hash[..16].to_owned())
    }

    /// Whether a session's token id still names an accepted token.
    pub(crate) fn knows_token_id(&self, id: &str) -> bool {
        if self.is_open() {
            return id == "open";
        }
        id.len() == 16 && self.hashes.iter().any(|h| h.starts_with(id))
    }

    /// Count one request of `key` against the rate limit (when one is
    /// configured); `Some(seconds)` to wait when over it.
    pub(crate) fn throttle(&self, key: &str) -> Option<u64> {
        let limiter = self.limiter.as_ref()?;
        let not_until = limiter.check_key(&key.to_owned()).err()?;
        let clock = governor::clock::DefaultClock::default();
        Some(
            not_until
                .wait_time_from(governor::clock::Clock::now(&clock))
                .as_secs()
                .max(1),
        )
    }

    /// The client's rate-limit key: its token's hash, or its address when
    /// the API is open. `Err` when the request may not pass.
    fn admit(&self, req: &Request) -> Result<String, Error> {
        let peer = peer_ip(req.extensions());
        if self.is_open() {
            return Ok(peer.to_string());
        }
        self.check_failures(peer)?;
        let token = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer_token);
        // Comparing hashes, not tokens: timing reveals nothing usable.
        match token.map(token_hash) {
            Some(hash) if self.hashes.contains(&hash) => Ok(hash),
            _ => {
                self.record_failure(peer);
                Err(Error::Unauthorized)
            }
        }
    }
}

/// The token of an `Authorization` value: scheme `Bearer` in any case
/// (RFC 7235), then any amount of spaces.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, rest) = value.trim_start().split_once([' ', '\t'])?;
    let token = rest.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The client's address (`0.0.0.0` when there is no connection, as in
/// in-process tests).
pub(crate) fn peer_ip(ext: &axum::http::Extensions) -> IpAddr {
    ext.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), |c| c.0.ip())
}

/// Middleware on `/v1`: 401 without a valid token, 429 with `Retry-After`
/// over the client's rate or after too many failed tokens.
pub(crate) async fn guard(State(ctx): State<Ctx>, req: Request, next: Next) -> Response {
    let access = &ctx.state.access;
    let key = match access.admit(&req) {
        Ok(key) => key,
        Err(e) => return e.into_response(),
    };
    if let Some(limiter) = &access.limiter {
        if let Err(not_until) = limiter.check_key(&key) {
            let clock = governor::clock::DefaultClock::default();
            let wait = not_until.wait_time_from(governor::clock::Clock::now(&clock));
            return Error::TooManyRequests {
                message: "rate limit exceeded; retry later".to_owned(),
                retry_after_s: wait.as_secs().max(1),
            }
            .into_response();
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::bearer_token;

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer   abc "), Some("abc"));
        assert_eq!(bearer_token("BEARER\tabc"), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("Bearerabc"), None);
    }
}
