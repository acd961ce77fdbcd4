//! Run tags (SPEC 4.1) through the real `gantry dev` process and the CLI:
//! tags given at start are checked (each bad one a 422 naming it), shown
//! on the run, inherited by its child runs, and filter `GET /v1/runs`
//! (`tag` may repeat) and `gantry runs list --tag`.

// Not every helper of the shared harness is used here.
#[allow(unused_imports)]
mod common;

use common::Env;
use serde_json::json;
use std::time::Duration;

const T: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_are_checked_kept_inherited_and_filter_the_run_list() {
    let mut env = Env::new().await;
    let _dev = env.dev(&[]).await;
    env.builtin_agents().await;
    env.workflow(json!({"name": "kid", "nodes": [{"id": "a", "agent": "noop"}]}))
        .await;
    env.workflow(json!({"name": "parent", "nodes": [{"id": "k", "workflow": "kid"}]}))
        .await;

    let start = |body: serde_json::Value| {
        let env = &env;
        async move { env.post("/v1/workflows/parent/runs", &body).await }
    };
    let many: serde_json::Map<String, serde_json::Value> =
        (0..17).map(|i| (format!("k{i}"), json!("v"))).collect();
    for (tags, field) in [
        (json!({"Bad Key": "x"}), "tags.Bad Key"),
        (json!({"tenant": 5}), "tags.tenant"),
        (json!({"tenant": "x".repeat(129)}), "tags.tenant"),
        (serde_json::Value::Object(many), "tags"),
    ] {
        let (status, body) = start(json!({"input": {}, "tags": tags})).await;
        assert_eq!(status, 422, "{tags}: {body}");
        let fields: Vec<&str> = body["error"]["details"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|d| d["field"].as_str())
            .collect();
        assert!(fields.contains(&field), "{field} in {body}");
    }

    let (status, run) =
        start(json!({"input": {}, "tags": {"tenant": "acme", "env": "prod"}})).await;
    assert_eq!(status, 201, "{run}");
    assert_eq!(run["tags"], json!({"tenant": "acme", "env": "prod"}));
    let id = run["id"].as_str().expect("id").to_owned();
    let done = env.wait_run(&id, T).await;
    assert_eq!(
        done["tags"],
        json!({"tenant": "acme", "env": "prod"}),
        "{done:#}"
    );
    let (_, kids) = env.get(&format!("/v1/runs?parent={id}")).await;
    assert_eq!(
        kids["runs"][0]["tags"],
        json!({"tenant": "acme", "env": "prod"}),
        "a child run inherits its parent's tags: {kids}"
    );
    let (code, out, err) = env
        .cli(
            &[
                "runs",
                "start",
                "parent",
                "--tag",
                "tenant=acme",
                "--tag",
                "env=dev",
            ],
            T,
        )
        .await;
    assert_eq!(code, 0, "{out}{err}");
    let (status, _) = start(json!({"input": {}, "tags": {"tenant": "globex"}})).await;
    assert_eq!(status, 201);

    let listed = |q: &'static str| {
        let env = &env;
        async move {
            let (status, body) = env.get(&format!("/v1/runs?workflow=parent&{q}")).await;
            assert_eq!(status, 200, "{q}: {body}");
            body["runs"].as_array().map_or(0, Vec::len)
        }
    };
    assert_eq!(listed("tag=tenant:acme").await, 2);
    assert_eq!(listed("tag=tenant:acme&tag=env:prod").await, 1);
    assert_eq!(listed("tag=tenant:globex").await, 1);
    assert_eq!(listed("tag=tenant:nobody").await, 0);
    // The child runs carry the tag too (no workflow filter).
    let (_, all) = env.get("/v1/runs?tag=tenant:acme&limit=50").await;
    assert_eq!(all["runs"].as_array().map(Vec::len), Some(4), "{all}");
    let (status, body) = env.get("/v1/runs?tag=no-colon").await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["details"][0]["field"], "tag", "{body}");

    let (code, out, err) = env
        .cli(
            &["runs", "list", "--workflow", "parent", "--tag", "env=dev"],
            T,
        )
        .await;
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.lines().count(), 2, "a header and one run: {out}");
    assert!(
        out.contains("env=dev") && out.contains("tenant=acme"),
        "{out}"
    );
}
