//! Slow bodies against a real `gantry api` (issue 10, item 5): 300
//! connections that each send a byte of body every 3 s do not shut out a
//! normal client, even with `GANTRY_MAX_IN_FLIGHT` far below 300 (the
//! permit is taken only once a body is read); a body slower than the read
//! timeout gets 408; and connections past the per-address cap are closed
//! at once.

use crate::common::Env;
use crate::driveby::addr;
use serde_json::json;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SLOW: usize = 300;
/// Longest a normal request may take while the slow ones drip.
const QUICK: Duration = Duration::from_secs(2);

/// A connection that announced a large JSON body and sends one byte of it
/// every 3 s until dropped; returns it once the first byte went out.
async fn drip(addr: String) -> tokio::task::JoinHandle<()> {
    let mut conn = TcpStream::connect(&addr).await.expect("connect");
    let head = format!(
        "POST /v1/workflows HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: 100000\r\n\r\n{{"
    );
    conn.write_all(head.as_bytes()).await.expect("send head");
    tokio::spawn(async move {
        for _ in 0..40 {
            tokio::time::sleep(Duration::from_secs(3)).await;
            if conn.write_all(b" ").await.is_err() {
                return;
            }
        }
    })
}

#[tokio::test]
async fn slow_bodies_do_not_shut_out_a_normal_client() {
    let mut env = Env::new().await;
    // Far fewer permits than slow connections: holding a permit while a
    // body drips in would shut everyone out.
    let _api = env.serve("api", &[("GANTRY_MAX_IN_FLIGHT", "32")]).await;
    let a = addr(&env);
    let mut slow = Vec::with_capacity(SLOW);
    for _ in 0..SLOW {
        slow.push(drip(a.clone()).await);
    }
    // Over more than two rounds of drips, a normal client keeps working.
    let until = Instant::now() + Duration::from_secs(7);
    let mut answered = 0;
    let mut worst = Duration::ZERO;
    let mut i = 0;
    while Instant::now() < until && i < 200 {
        i += 1;
        let started = Instant::now();
        let agent = json!({"name": format!("a{i}"), "runtime": "builtin", "builtin": "noop"});
        let post = tokio::time::timeout(QUICK, env.post("/v1/agents", &agent)).await;
        let (status, body) = post.unwrap_or_else(|_| panic!("POST took over {QUICK:?}"));
        assert_eq!(status, 201, "{body}");
        let get = tokio::time::timeout(QUICK, env.get("/v1/agents")).await;
        let (status, body) = get.unwrap_or_else(|_| panic!("GET took over {QUICK:?}"));
        assert_eq!(status, 200, "{body}");
        worst = worst.max(started.elapsed());
        answered += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(answered >= 10, "only {answered} rounds in 7 s");
    println!("{answered} POST+GET rounds beside {SLOW} slow bodies; slowest round {worst:?}");
    for s in slow {
        s.abort();
    }
}

#[tokio::test]
async fn a_body_slower_than_the_read_timeout_gets_408() {
    let mut env = Env::new().await;
    let _api = env.serve("api", &[]).await;
    let a = addr(&env);
    let mut conn = TcpStream::connect(&a).await.expect("connect");
    let head = format!(
        "POST /v1/agents HTTP/1.1\r\nHost: {a}\r\nContent-Type: application/json\r\n\
         Content-Length: 50\r\n\r\n{{\"name\""
    );
    conn.write_all(head.as_bytes()).await.expect("send");
    let started = Instant::now();
    let mut buf = vec![0u8; 4096];
    // The read timeout is 10 s; the answer must come soon after.
    let n = tokio::time::timeout(Duration::from_secs(15), conn.read(&mut buf))
        .await
        .expect("an answer within 15 s")
        .expect("read");
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout"), "{answer}");
    assert!(
        started.elapsed() >= Duration::from_secs(9),
        "{:?}",
        started.elapsed()
    );
}

/// The client address of the cap test: not 127.0.0.1, where the harness's
/// own pooled connections (which hold a slot until they idle out) come from.
const CLIENT_IP: &str = "127.0.0.2";

/// A connection to `addr` from [`CLIENT_IP`].
async fn connect(addr: &str) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(format!("{CLIENT_IP}:0").parse().expect("client address"))
        .expect("bind the client address");
    socket
        .connect(addr.parse().expect("server address"))
        .await
        .expect("connect")
}

/// A kept-alive connection that the server accepted: it sent a health
/// check and read the whole answer, so it holds one of the address's
/// slots until dropped. `None` when the server closed it instead.
async fn held(addr: &str) -> Option<TcpStream> {
    let mut conn = connect(addr).await;
    let ask = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    conn.write_all(ask.as_bytes()).await.ok()?;
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let answered = async {
        // The health answer is short; its end is the end of its JSON body.
        while !got.ends_with(b"}") {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        true
    };
    let answered = tokio::time::timeout(Duration::from_secs(10), answered)
        .await
        .expect("a held connection is answered or closed within 10 s");
    answered.then_some(conn)
}

#[tokio::test]
async fn connections_past_the_per_address_cap_are_closed_at_once() {
    let mut env = Env::new().await;
    let _api = env
        .serve("api", &[("GANTRY_MAX_CONNECTIONS_PER_IP", "4")])
        .await;
    let a = addr(&env);
    let health = format!("GET /healthz HTTP/1.1\r\nHost: {a}\r\nConnection: close\r\n\r\n");
    // Hold four connections the server answered; retried in case one is
    // refused while an earlier test connection is still being closed.
    let mut held_conns = Vec::new();
    for _ in 0..100 {
        if held_conns.len() == 4 {
            break;
        }
        match held(&a).await {
            Some(conn) => held_conns.push(conn),
            None => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    assert_eq!(held_conns.len(), 4, "four connections were never accepted");
    let mut fifth = connect(&a).await;
    let _ = fifth.write_all(health.as_bytes()).await;
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(2), fifth.read(&mut buf))
        .await
        .expect("the fifth connection is closed at once, not left hanging");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "the fifth got an answer: {read:?}"
    );
    // Freed slots are usable again.
    held_conns.clear();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if held(&a).await.is_some() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no connection accepted after one closed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn headers_slower_than_the_header_timeout_are_cut_off() {
    let mut env = Env::new().await;
    let _api = env.serve("api", &[]).await;
    let a = addr(&env);
    let mut conn = TcpStream::connect(&a).await.expect("connect");
    conn.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {a}\r\n").as_bytes())
        .await
        .expect("send");
    let started = Instant::now();
    let limit = gantry_api::HEADER_READ_TIMEOUT;
    let mut buf = [0u8; 256];
    let read = tokio::time::timeout(limit + Duration::from_secs(5), conn.read(&mut buf))
        .await
        .expect("the connection is closed soon after the header timeout");
    let text = match &read {
        Ok(n) => String::from_utf8_lossy(&buf[..*n]).into_owned(),
        Err(_) => String::new(),
    };
    assert!(
        matches!(read, Ok(0) | Err(_)) || text.starts_with("HTTP/1.1 408"),
        "unexpected answer {text:?}"
    );
    assert!(
        started.elapsed() + Duration::from_secs(1) >= limit,
        "{:?}",
        started.elapsed()
    );
}
