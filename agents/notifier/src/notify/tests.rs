//! Notifier tests, delivering to a real HTTP listener on 127.0.0.1.

use super::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::thread::JoinHandle;
use std::time::Duration;

struct Secrets {
    dir: tempfile::TempDir,
}

impl Secrets {
    fn new(webhook: Option<&str>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        if let Some(url) = webhook {
            std::fs::write(dir.path().join(WEBHOOK_SECRET), format!("{url}\n")).unwrap();
        }
        Self { dir }
    }

    fn ctx(&self) -> Context {
        let path = self.dir.path().to_str().unwrap().to_owned();
        Context::from_lookup(|k| match k {
            "GANTRY_SECRETS_PATH" => Some(path.clone()),
            "GANTRY_RUN_ID" => Some("r1".into()),
            "GANTRY_NODE_ID" => Some("notify".into()),
            "GANTRY_IDEMPOTENCY_KEY" => Some("r1:notify".into()),
            _ => None,
        })
    }
}

/// A one-request HTTP server answering `status`; returns its URL and the raw request.
fn server(status: u16) -> (String, JoinHandle<(String, String)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/services/T000/SECRETPATH",
        listener.local_addr().unwrap()
    );
    let handle = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut reader = BufReader::new(stream);
        let mut head = String::new();
        let mut len = 0;
        for _ in 0..64 {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
            head.push_str(&line);
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0; len];
        reader.read_exact(&mut body).unwrap();
        let mut stream = reader.into_inner();
        write!(
            stream,
            "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        (head, String::from_utf8(body).unwrap())
    });
    (url, handle)
}

fn input(message: &str) -> Input {
    Input {
        message: message.into(),
        channel: Some("#security".into()),
    }
}

#[test]
fn posts_to_a_plain_http_webhook() {
    let (url, handle) = server(200);
    let secrets = Secrets::new(Some(&url));
    let out = notify(input("scan found 3 issues"), &secrets.ctx()).unwrap();
    assert!(out.sent);
    assert_eq!(out.status, Some(200));
    assert_eq!(out.text, "scan found 3 issues (run r1, node notify)");
    let (head, body) = handle.join().unwrap();
    assert!(
        head.starts_with("POST /services/T000/SECRETPATH HTTP/1.1\r\n"),
        "{head}"
    );
    assert!(
        head.contains("Content-Type: application/json\r\n"),
        "{head}"
    );
    assert!(head.contains("Idempotency-Key: r1:notify\r\n"), "{head}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["text"], "scan found 3 issues (run r1, node notify)");
    assert_eq!(body["channel"], "#security");
    let json = serde_json::to_string(&out).unwrap();
    assert!(!json.contains("SECRETPATH"), "{json}");
}

#[test]
fn server_errors_are_retryable_client_errors_permanent_and_never_show_the_url() {
    let (url, handle) = server(503);
    let err = notify(input("x"), &Secrets::new(Some(&url)).ctx()).unwrap_err();
    handle.join().unwrap();
    assert_eq!(err, AgentError::retryable("webhook answered 503"));

    let (url, handle) = server(404);
    let err = notify(input("x"), &Secrets::new(Some(&url)).ctx()).unwrap_err();
    handle.join().unwrap();
    assert_eq!(err, AgentError::permanent("webhook answered 404"));

    // Nothing listens on the port of a listener that was just dropped.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/services/T000/SECRETPATH");
    let err = notify(input("x"), &Secrets::new(Some(&url)).ctx()).unwrap_err();
    assert!(matches!(err, AgentError::Retryable(_)), "{err:?}");
    assert!(!err.to_string().contains("SECRETPATH"), "{err}");
    assert!(!err.to_string().contains(&port.to_string()), "{err}");
}

#[test]
fn without_a_deliverable_webhook_the_message_is_returned() {
    let out = notify(input("hello"), &Secrets::new(None).ctx()).unwrap();
    assert!(!out.sent);
    assert_eq!(out.channel.as_deref(), Some("#security"));
    assert!(out.note.unwrap().contains("no SLACK_WEBHOOK_URL"));

    let https = Secrets::new(Some("https://hooks.slack.com/services/T/B/SECRETPATH"));
    let out = notify(input("hello"), &https.ctx()).unwrap();
    assert!(!out.sent);
    assert!(out
        .note
        .as_deref()
        .unwrap()
        .starts_with("https webhooks are not supported"));
    assert!(!serde_json::to_string(&out).unwrap().contains("SECRETPATH"));

    let unresolvable = Secrets::new(Some("http://no-such-host.invalid/SECRETPATH"));
    let out = notify(input("hello"), &unresolvable.ctx()).unwrap();
    assert!(!out.sent);
    assert!(out.note.unwrap().contains("does not resolve"));

    let bad = Secrets::new(Some("gopher://x/SECRETPATH"));
    let err = notify(input("hello"), &bad.ctx()).unwrap_err();
    assert_eq!(
        err,
        AgentError::permanent("SLACK_WEBHOOK_URL is not a valid http URL")
    );
}

#[test]
fn empty_message_is_not_sent_and_long_text_is_cut() {
    let out = notify(Input::default(), &Context::from_lookup(|_| None)).unwrap();
    assert_eq!((out.text.as_str(), out.sent), ("", false));
    let out = notify(input(&"a".repeat(5000)), &Context::from_lookup(|_| None)).unwrap();
    assert_eq!(out.text.chars().count(), MAX_TEXT_CHARS + 1);
}
