//! `POST /v1/events` and `GET /v1/events` (SPEC section 9) through the real
//! router with Postgres and Redis behind it: bounds named by field, the
//! event committed before the 202, idempotency by `id`, and paged listing.

mod common;

use common::{expect_error, get, post, post_raw, problems, test_app};
use serde_json::json;
use sqlx::PgPool;

#[sqlx::test(migrations = "../gantry-store/migrations")]
async fn an_event_is_stored_before_its_202_and_listed_newest_first(pool: PgPool) {
    let app = test_app(pool.clone()).await;
    let r = post(
        &app,
        "/v1/events",
        &json!({"name": "ci.finished", "key": "run-1", "data": {"ok": true}}),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.json);
    let id = r.json["id"].as_str().expect("a generated id").to_owned();
    assert_eq!(r.json["waits_matched"], 0, "{}", r.json);
    assert_eq!(r.json["runs_started"], 0, "{}", r.json);
    // Committed: another connection sees it.
    let (name, key, data): (String, String, serde_json::Value) =
        sqlx::query_as("SELECT name, key, data FROM events WHERE id = $1")
            .bind(&id)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        (name.as_str(), key.as_str(), data),
        ("ci.finished", "run-1", json!({"ok": true}))
    );

    // A key and data are optional.
    let r = post(&app, "/v1/events", &json!({"name": "repo.pushed"})).await;
    assert_eq!(r.status, 202, "{}", r.json);

    let r = get(&app, "/v1/events").await;
    assert_eq!(r.status, 200, "{}", r.json);
    let events = r.json["events"].as_array().unwrap();
    let names: Vec<&str> = events.iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["repo.pushed", "ci.finished"], "{}", r.json);
    assert_eq!(events[0]["key"], "", "{}", r.json);
    assert_eq!(events[0]["data"], serde_json::Value::Null, "{}", r.json);
    assert_eq!(events[1]["id"], id.as_str(), "{}", r.json);
    assert!(events[1]["received_at"].is_string(), "{}", r.json);

    let r = get(&app, "/v1/events?name=ci.finished&key=run-1").await;
    assert_eq!(r.json["events"].as_array().unwrap().len(), 1, "{}", r.json);
    let r = get(&app, "/v1/events?name=ci.finished&key=other").await;
    assert_eq!(r.json["events"].as_array().unwrap().len(), 0, "{}", r.json);
}

#[sqlx::test(migrations = "../gantry-store/migrations")]
async fn the_same_id_has_its_effect_once_and_another_body_under_it_is_409(pool: PgPool) {
    let app = test_app(pool.clone()).await;
    let ev = json!({"name": "ci.finished", "key": "k", "data": {"n": 1}, "id": "evt-7"});
    let first = post(&app, "/v1/events", &ev).await;
    assert_eq!(first.status, 202, "{}", first.json);
    assert_eq!(first.json["id"], "evt-7");
    for _ in 0..2 {
        let again = post(&app, "/v1/events", &ev).await;
        assert_eq!(again.status, 200, "{}", again.json);
        assert_eq!(again.json, first.json);
    }
    // Key order in the body does not make it another event.
    let reordered = post_raw(
        &app,
        "/v1/events",
        r#"{"id": "evt-7", "data": {"n": 1}, "key": "k", "name": "ci.finished"}"#,
    )
    .await;
    assert_eq!(reordered.status, 200, "{}", reordered.json);
    for other in [
        json!({"name": "ci.finished", "key": "k", "data": {"n": 2}, "id": "evt-7"}),
        json!({"name": "ci.finished", "key": "j", "data": {"n": 1}, "id": "evt-7"}),
        json!({"name": "ci.started", "key": "k", "data": {"n": 1}, "id": "evt-7"}),
    ] {
        let r = post(&app, "/v1/events", &other).await;
        expect_error(&r, 409, "conflict");
    }
    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 1, "one event stored");
}

#[sqlx::test(migrations = "../gantry-store/migrations")]
async fn every_bad_field_is_a_422_naming_it_and_nothing_is_stored(pool: PgPool) {
    let app = test_app(pool.clone()).await;
    let r = post(
        &app,
        "/v1/events",
        &json!({"name": "Not A Name", "key": "k".repeat(257),
                "data": {"blob": "x".repeat(256 * 1024)}, "id": ""}),
    )
    .await;
    let p = problems(&expect_error(&r, 422, "validation_failed"));
    let fields: Vec<&str> = p.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(fields, ["name", "key", "data", "id"], "{}", r.json);

    let r = post(&app, "/v1/events", &json!({"key": "k"})).await;
    assert_eq!(r.status, 422, "a missing name: {}", r.json);
    let r = post(&app, "/v1/events", &json!({"name": "a", "dta": {}})).await;
    assert_eq!(r.status, 422, "an unknown field: {}", r.json);
    let r = post(&app, "/v1/events", &json!({"name": "a", "key": 7})).await;
    assert_eq!(r.status, 422, "a key that is not a string: {}", r.json);
    let r = post_raw(&app, "/v1/events", r#"{"name": "a""#).await;
    expect_error(&r, 400, "bad_json");

    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 0, "no bad event stored");

    let r = get(&app, "/v1/events?name=BAD").await;
    expect_error(&r, 422, "validation_failed");
    let r = get(&app, "/v1/events?cursor=abc").await;
    assert_eq!(r.status, 422, "{}", r.json);
    let r = get(&app, "/v1/events?limit=0").await;
    assert_eq!(r.status, 422, "{}", r.json);
}

#[sqlx::test(migrations = "../gantry-store/migrations")]
async fn events_page_by_cursor_without_gaps_or_repeats(pool: PgPool) {
    let app = test_app(pool).await;
    for i in 0..7 {
        let r = post(
            &app,
            "/v1/events",
            &json!({"name": "tick", "data": i, "id": format!("t{i}")}),
        )
        .await;
        assert_eq!(r.status, 202, "{}", r.json);
    }
    let mut seen = Vec::new();
    let mut uri = "/v1/events?name=tick&limit=3".to_owned();
    for _ in 0..10 {
        let r = get(&app, &uri).await;
        assert_eq!(r.status, 200, "{}", r.json);
        for e in r.json["events"].as_array().unwrap() {
            seen.push(e["data"].as_i64().unwrap());
        }
        match r.json["next_cursor"].as_str() {
            Some(c) => uri = format!("/v1/events?name=tick&limit=3&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, [6, 5, 4, 3, 2, 1, 0]);
}
