//! Failed logins (issue 10, item 7) against a real `gantry api` with a
//! token and `GANTRY_RATE_LIMIT_PER_S=2`: the scheme `bearer` is accepted
//! in any case, and 50 bad tokens from one address reach 429 with
//! `Retry-After` (before, each got a 401), on `/v1` and then on the
//! dashboard login too, even for the right token.

use crate::common::Env;
use crate::status::login;

#[tokio::test]
async fn failed_tokens_reach_429() {
    let mut env = Env::new().await;
    let token = format!("login-{}", uuid::Uuid::new_v4().simple());
    let hash = gantry_api::token_hash(&token);
    let _api = env
        .serve(
            "api",
            &[
                ("GANTRY_API_TOKEN_SHA256", hash.as_str()),
                ("GANTRY_RATE_LIMIT_PER_S", "2"),
            ],
        )
        .await;
    let url = format!("{}/v1/agents", env.base);
    for scheme in ["bearer", "BEARER", "Bearer  "] {
        let res = env
            .http
            .get(&url)
            .header("authorization", format!("{scheme} {token}"))
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), 200, "scheme {scheme:?}");
    }
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for i in 0..50 {
        let res = env
            .http
            .get(&url)
            .header("authorization", format!("Bearer wrong-{i}"))
            .send()
            .await
            .expect("request");
        statuses.push(res.status().as_u16());
        if res.status() == 429 {
            retry_after = res
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
        }
    }
    assert_eq!(statuses[0], 401, "{statuses:?}");
    let first_429 = statuses
        .iter()
        .position(|s| *s == 429)
        .expect("50 bad tokens reach 429");
    assert!(
        statuses[first_429..].iter().all(|s| *s == 429),
        "{statuses:?}"
    );
    assert!(
        first_429 <= 10,
        "429 after at most 10 failures: {statuses:?}"
    );
    let wait: u64 = retry_after.expect("Retry-After").parse().expect("seconds");
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    println!("statuses of 50 bad tokens: {statuses:?}; Retry-After {wait} s");

    // The address is now refused before its token is looked at, on the
    // dashboard login as well.
    let res = env
        .http
        .get(&url)
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 429);
    let (status, cookie) = login(&env.base, &token).await;
    assert_eq!(status, 429, "dashboard login");
    assert!(cookie.is_empty());
}
