//! Server-side dashboard sessions (issue 10, item 8): random ids, revoked
//! on logout for every replica, expired rows deleted.

use super::common::send;
use super::helpers::*;
use axum::body::Body;
use axum::http::StatusCode;
use gantry_api::{app, token_hash, Access};
use sqlx::PgPool;

async fn logout(app: &axum::Router, cookie: &str) {
    let html = body(&page(app, cookie, "/").await);
    let r = send(
        app,
        "POST",
        "/logout",
        Some(Body::from(format!("csrf={}", csrf_of(&html)))),
        &[("cookie", cookie)],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", body(&r));
}

#[sqlx::test(migrations = "../gantry-store/migrations")]
async fn sessions_are_random_and_logout_revokes_them_on_every_replica(pool: PgPool) {
    let s = super::common::state(pool.clone()).await;
    let replica = || {
        let mut s = s.clone();
        s.access = Access::new([token_hash(TOKEN)], 0).with_session_secret("shared");
        app(s)
    };
    let (one, two) = (replica(), replica());
    let a = session(&one).await;
    let b = session(&one).await;
    assert_ne!(a, b, "two logins in the same second get different cookies");
    let hash = token_hash(TOKEN);
    for c in [&a, &b] {
        assert!(
            !c.contains(&hash[..16]),
            "the cookie shows nothing of the token: {c}"
        );
        let id = c.split('=').nth(1).unwrap().split('.').next().unwrap();
        assert_eq!(id.len(), 32, "128 random bits: {c}");
    }
    assert_eq!(page(&two, &a, "/runs").await.status, StatusCode::OK);

    logout(&one, &a).await;
    for replica in [&one, &two] {
        let r = page(replica, &a, "/runs").await;
        assert_eq!(
            r.status,
            StatusCode::SEE_OTHER,
            "the cookie is dead after logout"
        );
    }
    assert_eq!(
        page(&two, &b, "/runs").await.status,
        StatusCode::OK,
        "other sessions live on"
    );

    // Expired rows go on the next login.
    sqlx::query("UPDATE ui_sessions SET expires_at = now() - interval '1 second'")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(
        page(&two, &b, "/runs").await.status,
        StatusCode::SEE_OTHER,
        "expired"
    );
    let _fresh = session(&one).await;
    let (rows,): (i64,) = sqlx::query_as("SELECT count(*) FROM ui_sessions")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 1, "only the fresh session is left");
}
