//! Drive-by requests against a real `gantry dev` in open mode (no token):
//! a web page's `text/plain` cross-site POST, a cross-site `Origin`,
//! `Sec-Fetch-Site: cross-site` and a DNS-rebinding `Host` are all refused,
//! and nothing was registered or started. Also: `process` agents are
//! refused unless the operator allows them.

use crate::common::Env;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `host:port` of the API under test.
pub(crate) fn addr(env: &Env) -> String {
    env.base.trim_start_matches("http://").to_owned()
}

/// Send `request` (raw HTTP/1.1, which must say `Connection: close`) and
/// return the whole answer as text, bounded at 10 s.
pub(crate) async fn raw(addr: &str, request: &str) -> String {
    let exchange = async {
        let mut conn = tokio::net::TcpStream::connect(addr).await.expect("connect");
        conn.write_all(request.as_bytes()).await.expect("send");
        let mut out = Vec::new();
        let _ = conn.read_to_end(&mut out).await;
        String::from_utf8_lossy(&out).into_owned()
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .unwrap_or_else(|_| panic!("no answer within 10 s to {request}"))
}

/// A POST of `body` with `headers` (each `Name: value`), answered as
/// (status, JSON body).
async fn post(addr: &str, path: &str, body: &str, headers: &[&str]) -> (u16, Value) {
    let mut req = format!("POST {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers
        .iter()
        .any(|h| h.to_ascii_lowercase().starts_with("host:"))
    {
        req.push_str(&format!("Host: {addr}\r\n"));
    }
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    let answer = raw(addr, &req).await;
    let status = answer
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"));
    let json = answer
        .split_once("\r\n\r\n")
        .and_then(|(_, b)| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    (status, json)
}

#[tokio::test]
async fn drive_by_requests_are_refused_in_open_mode() {
    let mut env = Env::new().await;
    let _dev = env.dev(&[]).await;
    let a = addr(&env);
    let port = a.rsplit(':').next().unwrap().to_owned();
    let agent = json!({"name": "evil", "runtime": "builtin", "builtin": "echo"}).to_string();
    let run = json!({"input": {}}).to_string();
    let evil_host = format!("Host: evil.example:{port}");
    let cases: Vec<(&str, &str, Vec<&str>, u16, &str)> = vec![
        // What a form or a "simple" fetch on any page sends: no preflight.
        (
            "/v1/agents",
            &agent,
            vec![
                "Content-Type: text/plain",
                "Origin: http://evil.example",
                "Sec-Fetch-Site: cross-site",
            ],
            403,
            "cross_site",
        ),
        (
            "/v1/agents",
            &agent,
            vec!["Content-Type: text/plain"],
            415,
            "unsupported_media_type",
        ),
        (
            "/v1/agents",
            &agent,
            vec![
                "Content-Type: application/json",
                "Origin: http://evil.example",
            ],
            403,
            "cross_site",
        ),
        (
            "/v1/agents",
            &agent,
            vec![
                "Content-Type: application/json",
                "Sec-Fetch-Site: cross-site",
            ],
            403,
            "cross_site",
        ),
        (
            "/v1/agents",
            &agent,
            vec![
                "Content-Type: application/json",
                "Origin: http://localhost:3000",
                "Sec-Fetch-Site: same-site",
            ],
            403,
            "cross_site",
        ),
        // A DNS-rebinding page: same origin as far as the browser knows.
        (
            "/v1/agents",
            &agent,
            vec!["Content-Type: application/json", &evil_host],
            403,
            "bad_host",
        ),
        (
            "/v1/workflows/w/runs",
            &run,
            vec!["Content-Type: text/plain", "Origin: http://evil.example"],
            403,
            "cross_site",
        ),
        (
            "/v1/workflows/w/runs",
            &run,
            vec!["Content-Type: application/json", &evil_host],
            403,
            "bad_host",
        ),
    ];
    for (path, body, headers, status, code) in &cases {
        let (got, json) = post(&a, path, body, headers).await;
        assert_eq!(
            (got, json["error"]["code"].as_str()),
            (*status, Some(*code)),
            "{headers:?}: {json}"
        );
        assert!(json["error"]["details"][0]["field"].is_string(), "{json}");
    }
    // Reading through a rebound name is refused too, on /v1 and the dashboard.
    for path in ["/v1/runs", "/login"] {
        let answer = raw(
            &a,
            &format!("GET {path} HTTP/1.1\r\n{evil_host}\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 403"), "{path}: {answer}");
    }
    // Nothing was registered or started.
    let (status, agents) = env.get("/v1/agents").await;
    assert_eq!((status, &agents["agents"]), (200, &json!([])), "{agents}");
    let (_, runs) = env.get("/v1/runs").await;
    assert_eq!(runs["runs"], json!([]), "{runs}");
    // The same request from a script (JSON, no Origin) is fine.
    let (status, body) = post(
        &a,
        "/v1/agents",
        &agent,
        &["Content-Type: application/json"],
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let localhost = format!("Host: localhost:{port}");
    let (status, body) = post(
        &a,
        "/v1/agents",
        &agent,
        &[
            "Content-Type: application/json",
            &localhost,
            "Sec-Fetch-Site: same-origin",
        ],
    )
    .await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn process_agents_are_refused_by_default_and_accepted_with_the_option() {
    let mut env = Env::new().await;
    let def = json!({"name": "sh", "runtime": "process", "command": ["/bin/sh", "-c", "cat"]});
    // The harness allows process agents for the other suites; unset here.
    let _api = env
        .serve("api", &[("GANTRY_ALLOW_PROCESS_AGENTS", "0")])
        .await;
    let (status, body) = env.post("/v1/agents", &def).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "process_agents_disabled");
    assert_eq!(body["error"]["details"][0]["field"], "runtime");
    let (status, _) = env.get("/v1/agents/sh").await;
    assert_eq!(status, 404, "nothing was registered");

    let _allowed = env
        .serve("api", &[("GANTRY_ALLOW_PROCESS_AGENTS", "1")])
        .await;
    let (status, body) = env.post("/v1/agents", &def).await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn on_every_interface_an_open_api_answers_the_allowed_hosts_only() {
    let env = Env::new().await;
    let port = crate::common::free_port();
    let listen = format!("0.0.0.0:{port}");
    let mut api = env.spawn(
        "api-any",
        &["api"],
        &[
            ("GANTRY_LISTEN", &listen),
            ("GANTRY_ALLOWED_HOSTS", "gantry.test, Other.Test"),
        ],
    );
    let a = format!("127.0.0.1:{port}");
    let get = |host: String| {
        let a = a.clone();
        async move {
            let req =
                format!("GET /v1/agents HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
            raw(&a, &req).await
        }
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let up = tokio::net::TcpStream::connect(&a).await.is_ok()
            && get(format!("localhost:{port}"))
                .await
                .starts_with("HTTP/1.1 200");
        if up {
            break;
        }
        assert!(api.try_exit().is_none(), "api exited:\n{}", api.log_text());
        assert!(
            std::time::Instant::now() < deadline,
            "api not up:\n{}",
            api.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for host in [
        format!("gantry.test:{port}"),
        "other.test".to_owned(),
        a.clone(),
    ] {
        let answer = get(host.clone()).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{host}: {answer}");
    }
    for host in [
        format!("evil.example:{port}"),
        "gantry.test.evil.example".to_owned(),
    ] {
        let answer = get(host.clone()).await;
        assert!(
            answer.starts_with("HTTP/1.1 403") && answer.contains("bad_host"),
            "{host}: {answer}"
        );
    }
}
