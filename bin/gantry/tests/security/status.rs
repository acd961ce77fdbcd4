//! 4xx, not 500 (issue 10, item 6), against a real `gantry api`: NUL
//! characters in definitions and run input, duplicate JSON keys, bad queue
//! and runs cursors (on `/v1` and the dashboard), and `limit` out of range
//! on every list.

use crate::common::Env;
use serde_json::{json, Value};

/// A client that does not follow redirects (to see the login's cookie).
fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .expect("http client")
}

/// Log in to the dashboard at `base` with `token`; the `Cookie` value.
pub(crate) async fn login(base: &str, token: &str) -> (u16, String) {
    let res = no_redirects()
        .post(format!("{base}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={token}&next=%2F"))
        .send()
        .await
        .expect("login");
    let cookie = res
        .headers()
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .unwrap_or_default();
    (res.status().as_u16(), cookie)
}

/// `GET path` on the dashboard with `cookie`: (status, body).
pub(crate) async fn page(base: &str, cookie: &str, path: &str) -> (u16, String) {
    let res = no_redirects()
        .get(format!("{base}{path}"))
        .header("cookie", cookie)
        .send()
        .await
        .expect("page");
    (res.status().as_u16(), res.text().await.unwrap_or_default())
}

fn error_of(body: &Value) -> (&str, &str) {
    (
        body["error"]["code"].as_str().unwrap_or_default(),
        body["error"]["details"][0]["field"]
            .as_str()
            .unwrap_or_default(),
    )
}

#[tokio::test]
async fn bad_input_gets_4xx_naming_the_field_never_500() {
    let mut env = Env::new().await;
    let _api = env.serve("api", &[]).await;
    env.builtin_agents().await;
    env.workflow(json!({"name": "w", "nodes": [{"id": "n", "agent": "echo"}]}))
        .await;

    let bodies: [(&str, &[u8], u16, &str, &str); 8] = [
        (
            "/v1/agents",
            br#"{"name":"b","runtime":"builtin","builtin":"noop","queue":"q\u0000"}"#,
            422,
            "validation_failed",
            "queue",
        ),
        (
            "/v1/workflows",
            br#"{"name":"v","nodes":[{"id":"n","agent":"echo","input":{"k\u0000":1}}]}"#,
            422,
            "validation_failed",
            "nodes[0].input.k\\u0000",
        ),
        (
            "/v1/workflows/w/runs",
            br#"{"input":{"a":["ok","x\u0000"]}}"#,
            422,
            "validation_failed",
            "input.a[1]",
        ),
        (
            "/v1/workflows/w/runs",
            b"{\"input\":{\"a\":\"x\x00\"}}",
            400,
            "bad_json",
            "",
        ),
        (
            "/v1/agents",
            br#"{"name":"b","name":"c","runtime":"builtin","builtin":"noop"}"#,
            422,
            "duplicate_key",
            "name",
        ),
        (
            "/v1/workflows",
            br#"{"name":"v","nodes":[{"id":"n","agent":"echo","id":"m"}]}"#,
            422,
            "duplicate_key",
            "nodes[0].id",
        ),
        (
            "/v1/workflows/w/runs",
            br#"{"input":{"a":{"b":1,"b":2}}}"#,
            422,
            "duplicate_key",
            "input.a.b",
        ),
        (
            "/v1/workflows/w/runs",
            br#"{"input":{},"input":{}}"#,
            422,
            "duplicate_key",
            "input",
        ),
    ];
    for (path, body, status, code, field) in bodies {
        let (got, answer) = env.post_raw(path, body.to_vec(), &[]).await;
        assert_eq!(
            (got, error_of(&answer)),
            (status, (code, field)),
            "{}: {answer}",
            String::from_utf8_lossy(body)
        );
    }
    let (_, runs) = env.get("/v1/runs").await;
    assert_eq!(runs["runs"], json!([]), "no run started: {runs}");

    // A runs cursor (hex of `MICROS:UUID`) 250,000 years back: beyond
    // what Postgres can compare with.
    let far_past: String = format!("-8000000000000000000:{}", uuid::Uuid::nil())
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect();
    let queries = [
        "/v1/queues/default/jobs?state=dead&cursor=zzz".to_owned(),
        "/v1/queues/default/jobs?state=in_flight&cursor=zzz".to_owned(),
        "/v1/queues/default/jobs?state=ready&cursor=18446744073709551615-18446744073709551615"
            .to_owned(),
        "/v1/queues/default/jobs?state=delayed&cursor=zzz".to_owned(),
        "/v1/runs?cursor=zzz".to_owned(),
        format!("/v1/runs?cursor={far_past}"),
    ];
    for q in &queries {
        let (status, answer) = env.get(q).await;
        assert_eq!(
            (status, error_of(&answer)),
            (422, ("bad_cursor", "cursor")),
            "{q}: {answer}"
        );
    }
    for q in [
        "/v1/runs?limit=0",
        "/v1/runs?limit=501",
        "/v1/queues/default/jobs?limit=0",
        "/v1/queues/default/jobs?state=dead&limit=9999",
    ] {
        let (status, answer) = env.get(q).await;
        assert_eq!(
            (status, error_of(&answer)),
            (422, ("validation_failed", "limit")),
            "{q}: {answer}"
        );
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains("1 to 500"),
            "{answer}"
        );
    }

    // The dashboard answers a 4xx page for the same cursors.
    let (status, cookie) = login(&env.base, "anything").await;
    assert_eq!(status, 303, "open mode: any input logs in");
    for path in [
        format!("/runs?cursor={far_past}"),
        "/runs?cursor=zzz".to_owned(),
        "/queues/default?state=ready&cursor=18446744073709551615-18446744073709551615".to_owned(),
        "/queues/default?state=dead&cursor=zzz".to_owned(),
        "/queues/default?state=in_flight&cursor=99999999999999999999-0".to_owned(),
    ] {
        let (status, body) = page(&env.base, &cookie, &path).await;
        assert!((400..500).contains(&status), "{path}: {status} {body}");
    }
    let (status, _) = page(&env.base, &cookie, "/runs").await;
    assert_eq!(status, 200);
}
