//! A minimal HTTP/1.1 POST over `std::net::TcpStream`, enough for a JSON webhook. Errors never
//! contain the URL: webhook URLs carry credentials in their path.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

pub(crate) const TIMEOUT: Duration = Duration::from_secs(5);
/// Most response bytes read; only the status line matters.
const MAX_RESPONSE_BYTES: u64 = 16 * 1024;

/// A parsed `http://host[:port]/path` URL.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Url {
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) path: String,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum UrlError {
    Https,
    Invalid,
}

pub(crate) fn parse_url(url: &str) -> Result<Url, UrlError> {
    let url = url.trim();
    if url.len() >= 8 && url[..8].eq_ignore_ascii_case("https://") {
        return Err(UrlError::Https);
    }
    let rest = match url.get(..7) {
        Some(s) if s.eq_ignore_ascii_case("http://") => &url[7..],
        _ => return Err(UrlError::Invalid),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.contains('@') || path.chars().any(|c| c.is_control() || c == ' ') {
        return Err(UrlError::Invalid);
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(bracketed) => {
            let (h, after) = bracketed.split_once(']').ok_or(UrlError::Invalid)?;
            match after {
                "" => (h, None),
                _ => (h, Some(after.strip_prefix(':').ok_or(UrlError::Invalid)?)),
            }
        }
        None => match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        },
    };
    let port = match port {
        Some(p) => p.parse().map_err(|_| UrlError::Invalid)?,
        None => 80,
    };
    if host.is_empty() {
        return Err(UrlError::Invalid);
    }
    Ok(Url {
        host: host.to_owned(),
        port,
        path: path.to_owned(),
    })
}

/// The addresses `url` resolves to; empty when it does not resolve.
pub(crate) fn resolve(url: &Url) -> Vec<SocketAddr> {
    (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map(|a| a.collect())
        .unwrap_or_default()
}

/// Why a POST failed; `retryable` says whether another attempt may succeed.
#[derive(Debug)]
pub(crate) struct PostError {
    pub(crate) message: String,
    pub(crate) retryable: bool,
}

fn transient(message: String) -> PostError {
    PostError {
        message,
        retryable: true,
    }
}

/// POSTs `body` as JSON and returns the response status code (any status; the caller decides).
pub(crate) fn post_json(
    url: &Url,
    addrs: &[SocketAddr],
    body: &[u8],
    idempotency_key: &str,
) -> Result<u16, PostError> {
    let addr = addrs
        .first()
        .ok_or_else(|| transient("webhook host has no address".into()))?;
    let mut stream = TcpStream::connect_timeout(addr, TIMEOUT)
        .map_err(|e| transient(format!("cannot connect to webhook: {e}")))?;
    stream
        .set_read_timeout(Some(TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(TIMEOUT)))
        .map_err(|e| transient(format!("cannot set socket timeouts: {e}")))?;
    let host = if url.port == 80 {
        url.host.clone()
    } else {
        format!("{}:{}", url.host, url.port)
    };
    let mut request = format!(
        "POST {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: gantry-notifier/0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        url.path,
        body.len()
    );
    if !idempotency_key.is_empty() && idempotency_key.bytes().all(|b| b.is_ascii_graphic()) {
        request.push_str(&format!("Idempotency-Key: {idempotency_key}\r\n"));
    }
    request.push_str("\r\n");
    stream
        .write_all(request.as_bytes())
        .and_then(|()| stream.write_all(body))
        .and_then(|()| stream.flush())
        .map_err(|e| transient(format!("cannot send to webhook: {e}")))?;
    let mut response = Vec::new();
    let read = stream.take(MAX_RESPONSE_BYTES).read_to_end(&mut response);
    // A server may reset the connection after answering; the status line is what counts.
    if response.is_empty() {
        return Err(transient(match read {
            Err(e) => format!("no response from webhook: {e}"),
            Ok(_) => "webhook closed the connection without a response".into(),
        }));
    }
    parse_status(&response).ok_or_else(|| PostError {
        message: "webhook sent a malformed HTTP response".into(),
        retryable: true,
    })
}

fn parse_status(response: &[u8]) -> Option<u16> {
    let line_end = response.iter().position(|&b| b == b'\n')?;
    let line = std::str::from_utf8(&response[..line_end]).ok()?;
    let mut parts = line.split_whitespace();
    parts.next().filter(|v| v.starts_with("HTTP/1."))?;
    parts.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_http_urls() {
        let u = parse_url("http://127.0.0.1:8080/hooks/T1/abc").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("127.0.0.1", 8080, "/hooks/T1/abc")
        );
        let u = parse_url("HTTP://hooks.local").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("hooks.local", 80, "/")
        );
        let u = parse_url("http://[::1]:9000/x").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 9000));
        assert_eq!(parse_url("http://[::1]/").unwrap().port, 80);
    }

    #[test]
    fn rejects_https_and_junk() {
        assert_eq!(
            parse_url("https://hooks.slack.com/services/x"),
            Err(UrlError::Https)
        );
        for bad in [
            "ftp://x",
            "http://",
            "http://:80/",
            "http://u:p@h/",
            "http://h:99999/",
            "http://h/a b",
        ] {
            assert_eq!(parse_url(bad), Err(UrlError::Invalid), "{bad}");
        }
    }

    #[test]
    fn status_line() {
        assert_eq!(parse_status(b"HTTP/1.1 204 No Content\r\n\r\n"), Some(204));
        assert_eq!(parse_status(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(parse_status(b"HTTP/1.1 200"), None);
    }
}
