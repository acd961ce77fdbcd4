//! `serve` over a real socket: requests work, and shutdown completes even
//! with an event stream open (the stream is ended, not waited for).

mod common;

use axum::http::StatusCode;
use common::*;
use serde_json::json;
use sqlx::PgPool;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn read_until(conn: &mut TcpStream, text: &mut String, until: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 4096];
    while !text.contains(until) {
        let n = tokio::time::timeout_at(deadline, conn.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("no {until:?} within 10 s; got {text}"))
            .unwrap();
        assert!(n > 0, "connection closed before {until:?}; got {text}");
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
}

#[sqlx::test(migrations = "../gantry-store/migrations")]
async fn serve_answers_and_shuts_down_with_an_open_stream(pool: PgPool) {
    let state = state(pool).await;
    let app = gantry_api::app(state.clone());
    let mut agent = builtin_agent("gate");
    agent["approval"] = json!("required");
    assert_eq!(
        post(&app, "/v1/agents", &agent).await.status,
        StatusCode::CREATED
    );
    let def = json!({"name": "gated", "nodes": [{"id": "a", "agent": "gate"}]});
    assert_eq!(
        post(&app, "/v1/workflows", &def).await.status,
        StatusCode::CREATED
    );
    let r = post(&app, "/v1/workflows/gated/runs", &json!({})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json);
    let id = r.json["id"].as_str().unwrap().to_owned();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(gantry_api::serve(listener, state, async move {
        let _ = stop_rx.await;
    }));

    let mut plain = TcpStream::connect(addr).await.unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: t\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut text = String::new();
    read_until(&mut plain, &mut text, "{\"status\":\"ok\"}").await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");

    let mut stream = TcpStream::connect(addr).await.unwrap();
    let req = format!("GET /v1/runs/{id}/events HTTP/1.1\r\nhost: localhost\r\n\r\n");
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut text = String::new();
    read_until(&mut stream, &mut text, "event: snapshot").await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");

    stop_tx.send(()).unwrap();
    let done = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("serve returns promptly with a stream open");
    done.unwrap().unwrap();
    let mut rest = Vec::new();
    let eof = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await;
    assert!(eof.is_ok(), "the event stream was closed by the shutdown");
}
