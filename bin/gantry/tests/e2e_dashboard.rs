//! The dashboard in a real headless Chromium against a real `gantry dev`
//! (and, for dead jobs, real api, coordinator and worker processes) on real
//! Redis and Postgres: logging in, every page, a node turning green live,
//! approving, replaying a dead job, cancelling, a map's paged instances and
//! child runs linked both ways, a workflow's triggers paused and resumed,
//! and refusing visitors without a session and cross-site form posts.
//! Assertions read what the page shows; the API is read only to check what
//! a click did (or that nothing happened). Screenshots land in
//! docs/dashboard/.

#[path = "common/browser.rs"]
mod browser;
mod common;

use browser::Browser;
use common::{node_of, Env, Proc};
use serde_json::{json, Value};
use std::time::Duration;

/// Bound on any wait for a page to show a state.
const WAIT: Duration = Duration::from_secs(30);

/// A fresh API token for one test; its SHA-256 configures the API, and the
/// harness's HTTP client sends it to `/v1`.
fn token() -> String {
    format!("dash-{}", uuid::Uuid::new_v4().simple())
}

fn with_bearer(env: &mut Env, token: &str) {
    let mut headers = reqwest::header::HeaderMap::new();
    let value = format!("Bearer {token}").parse().expect("header value");
    headers.insert(reqwest::header::AUTHORIZATION, value);
    env.http = reqwest::Client::builder()
        .default_headers(headers)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client");
}

/// `gantry dev` requiring `token`, the builtin agents registered.
async fn dev_with_token(env: &mut Env, token: &str, extra: &[(&str, &str)]) -> Proc {
    with_bearer(env, token);
    let hash = gantry_api::token_hash(token);
    let mut vars = vec![("GANTRY_API_TOKEN_SHA256", hash.as_str())];
    vars.extend_from_slice(extra);
    let dev = env.dev(&vars).await;
    env.builtin_agents().await;
    dev
}

/// A browser on the dashboard, logged in; `None` when the browser is not
/// installed and nothing requires it (the test then ends, saying so).
async fn logged_in(env: &Env, token: &str) -> Option<Browser> {
    let b = Browser::start(&env.base).await?;
    b.login(token).await;
    Some(b)
}

/// The `rgb(r, g, b)` fill (or stroke, when unfilled) of the first shape of
/// node `node` in the run page's SVG.
async fn node_colour(b: &Browser, node: &str) -> Option<(u8, u8, u8)> {
    let script = format!(
        "const g = document.querySelector('g.node[data-node=\"{node}\"]');\n\
         const s = g && g.querySelector('rect, circle, ellipse, polygon, path');\n\
         if (!s) return null; const st = getComputedStyle(s);\n\
         return (st.fill && st.fill !== 'none') ? st.fill : st.stroke;"
    );
    let v = b.js(&script).await;
    let nums: Vec<u8> = v
        .as_str()?
        .trim_start_matches("rgba(")
        .trim_start_matches("rgb(")
        .trim_end_matches(')')
        .split(',')
        .filter_map(|p| p.trim().parse::<f64>().ok().map(|f| f as u8))
        .collect();
    (nums.len() >= 3).then(|| (nums[0], nums[1], nums[2]))
}

/// A sleep node between two others: the run stays `running` a few seconds.
fn napping(name: &str, ms: u64) -> Value {
    json!({"name": name, "nodes": [
        {"id": "prep", "agent": "echo", "input": {"step": "prep"}},
        {"id": "nap", "agent": "sleep", "depends_on": ["prep"], "input": {"ms": ms}},
        {"id": "side", "agent": "noop", "depends_on": ["prep"]},
        {"id": "report", "agent": "echo", "depends_on": ["nap", "side"],
         "input": {"slept": "{{nap.output.slept_ms}}"}}
    ]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logging_in_and_every_page() {
    let mut env = Env::new().await;
    let token = token();
    let _dev = dev_with_token(&mut env, &token, &[]).await;
    env.workflow(napping("nightly", 200)).await;
    env.workflow(json!({"name": "broken", "nodes": [
        {"id": "boom", "agent": "fail", "input": {"exit_code": 78}}
    ]}))
    .await;
    let ok = [
        env.start("nightly", json!({})).await,
        env.start("nightly", json!({})).await,
    ];
    let bad = env.start("broken", json!({})).await;
    for id in ok.iter().chain([&bad]) {
        env.wait_run(id, WAIT).await;
    }
    let Some(b) = Browser::start(&env.base).await else {
        return;
    };

    // No session: every page sends the visitor to the login page.
    b.goto("/runs").await;
    b.wait("a redirect to the login page", WAIT, || async {
        let p = b.path().await;
        if p.starts_with("/login") {
            Ok(p)
        } else {
            Err(p)
        }
    })
    .await;
    assert_eq!(b.count("input#token[type=password]").await, 1);
    b.shot("login").await;

    // A wrong token: 401, the form again with an error.
    b.type_into("input#token", "not-the-token").await;
    b.click("button#login-submit").await;
    b.wait("the login error", WAIT, || async {
        b.try_text("#login-error")
            .await
            .ok_or_else(|| "no #login-error".to_owned())
    })
    .await;
    assert_eq!(b.page_status().await, 401);
    assert_eq!(b.count("input#token").await, 1, "the form is shown again");

    // The right token: the overview, and a session cookie scripts cannot
    // read and other sites cannot make the browser send.
    assert_eq!(b.session_cookie().await, None);
    b.login(&token).await;
    let cookie = b.session_cookie().await.expect("a session cookie");
    assert_eq!(
        cookie,
        (true, true, "Strict".to_owned(), "/".to_owned()),
        "gantry_session (HttpOnly, Secure, SameSite, Path)"
    );
    let visible = b.js("return document.cookie;").await;
    assert!(
        !visible.to_string().contains("gantry_session"),
        "scripts see the session: {visible}"
    );
    for link in [
        "/",
        "/queues",
        "/runs",
        "/workers",
        "/workflows",
        "/agents",
        "/events",
    ] {
        let css = format!("nav a[href=\"{link}\"], a[href=\"{link}\"]");
        assert!(b.count(&css).await >= 1, "no nav link to {link}");
    }
    let overview = b.text("body").await;
    for word in ["succeeded", "failed", "default"] {
        assert!(
            overview.contains(word),
            "overview lacks {word:?}:\n{overview}"
        );
    }
    b.shot("overview").await;

    // Events: the page opens from the nav (no event was sent here).
    b.click("nav a[href=\"/events\"]").await;
    b.wait_path("/events", WAIT).await;
    assert_eq!(b.count("#no-events").await, 1, "an empty events page");

    // Runs: every run listed, linked, and the filters narrow the list.
    b.click("nav a[href=\"/runs\"], a[href=\"/runs\"]").await;
    b.wait_path("/runs", WAIT).await;
    assert_eq!(b.count("tr.run").await, 3);
    for id in ok.iter().chain([&bad]) {
        let link = format!("tr.run[data-run=\"{id}\"] a[href=\"/runs/{id}\"]");
        assert_eq!(b.count(&link).await, 1, "run {id} is not linked");
    }
    b.shot("runs").await;
    b.goto("/runs?status=failed").await;
    assert_eq!(b.count("tr.run").await, 1);
    assert_eq!(b.count(&format!("tr.run[data-run=\"{bad}\"]")).await, 1);
    b.goto("/runs?workflow=nightly").await;
    assert_eq!(b.count("tr.run").await, 2);

    // The failed run's page says why.
    b.goto(&format!("/runs/{bad}")).await;
    assert_eq!(b.text("#run-status").await.trim(), "failed");
    b.wait_attr("g.node[data-node=\"boom\"]", "data-status", "failed", WAIT)
        .await;
    let detail = b.text_opened("div.node-detail[data-node=\"boom\"]").await;
    assert!(detail.contains("78"), "the exit code is shown:\n{detail}");

    b.goto("/workers").await;
    assert!(b.count("tr.worker").await >= 1, "the dev worker is listed");

    b.goto("/workflows").await;
    let text = b.text("body").await;
    assert!(
        text.contains("nightly") && text.contains("broken"),
        "{text}"
    );
    b.shot("workflows").await;
    b.goto("/workflows/nightly").await;
    let text = b.text("body").await;
    for node in ["prep", "nap", "report"] {
        assert!(text.contains(node), "workflow page lacks {node}:\n{text}");
    }

    b.goto("/agents").await;
    let text = b.text("body").await;
    for agent in ["echo", "sleep", "noop", "fail"] {
        assert!(text.contains(agent), "agents page lacks {agent}:\n{text}");
    }
    b.shot("agents").await;
    b.goto("/agents/sleep").await;
    assert_eq!(b.page_status().await, 200);
    assert!(b.text("body").await.contains("builtin"));

    b.goto("/queues").await;
    assert_eq!(b.count("tr.queue[data-queue=\"default\"]").await, 1);

    // Logging out ends the session.
    b.click("form[action=\"/logout\"] button").await;
    b.goto("/workers").await;
    assert!(b.path().await.starts_with("/login"), "{}", b.path().await);
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_node_turns_green_live_without_a_reload() {
    let mut env = Env::new().await;
    let token = token();
    let _dev = dev_with_token(&mut env, &token, &[]).await;
    env.workflow(napping("live", 5000)).await;
    let Some(b) = logged_in(&env, &token).await else {
        return;
    };
    let id = env.start("live", json!({})).await;
    b.goto(&format!("/runs/{id}")).await;
    let nap = "g.node[data-node=\"nap\"]";
    let first = b.try_attr(nap, "data-status").await;
    assert!(
        matches!(first.as_deref(), Some("pending" | "queued" | "running")),
        "nap should still be on its way when the page opens: {first:?}"
    );
    assert_eq!(b.text("#run-status").await.trim(), "running");
    b.js("window.__gantryNoReload = 'same page'; return null;")
        .await;

    b.wait_attr(nap, "data-status", "running", WAIT).await;
    b.wait_text(&format!("{nap} text.node-status"), "running", WAIT)
        .await;
    b.wait_attr(nap, "data-status", "succeeded", WAIT).await;
    let status = b.text(&format!("{nap} text.node-status")).await;
    assert_eq!(status.trim(), "succeeded");
    let (r, g, bl) = node_colour(&b, "nap").await.expect("nap is drawn");
    assert!(
        g > r && g > bl,
        "succeeded is green, got rgb({r}, {g}, {bl})"
    );
    b.wait_text("#run-status", "succeeded", WAIT).await;
    let marker = b.js("return window.__gantryNoReload || null;").await;
    assert_eq!(marker, json!("same page"), "the page was reloaded");
    for node in ["prep", "side", "report"] {
        let css = format!("g.node[data-node=\"{node}\"]");
        b.wait_attr(&css, "data-status", "succeeded", WAIT).await;
    }
    b.goto(&format!("/runs/{id}")).await;
    let report = b.text_opened("div.node-detail[data-node=\"report\"]").await;
    assert!(report.contains("5000"), "report output shown:\n{report}");
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approving_a_waiting_node_runs_it() {
    let mut env = Env::new().await;
    let token = token();
    let _dev = dev_with_token(&mut env, &token, &[]).await;
    env.agent(
        json!({"name": "gate", "runtime": "builtin", "builtin": "echo",
                     "approval": "required", "timeout_s": 30}),
    )
    .await;
    env.workflow(json!({"name": "gated", "nodes": [
        {"id": "build", "agent": "noop"},
        {"id": "ship", "agent": "gate", "depends_on": ["build"], "input": {"to": "prod"}}
    ]}))
    .await;
    let Some(b) = logged_in(&env, &token).await else {
        return;
    };
    let id = env.start("gated", json!({})).await;
    let page = format!("/runs/{id}");
    let ship = "g.node[data-node=\"ship\"]";
    b.goto(&page).await;
    b.wait_attr(ship, "data-status", "waiting_approval", WAIT)
        .await;
    // The approve button comes with the page: load it once parked.
    b.goto(&page).await;
    b.click("button.approve[data-node=\"ship\"]").await;
    b.wait_path(&page, WAIT).await;
    b.wait_attr(ship, "data-status", "succeeded", WAIT).await;
    b.wait_text(&format!("{ship} text.node-status"), "succeeded", WAIT)
        .await;
    b.wait_text("#run-status", "succeeded", WAIT).await;
    b.goto(&page).await;
    assert_eq!(
        b.count("button.approve").await,
        0,
        "nothing left to approve"
    );
    let detail = b.text_opened("div.node-detail[data-node=\"ship\"]").await;
    assert!(detail.contains("prod"), "ship's output is shown:\n{detail}");
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_running_run() {
    let mut env = Env::new().await;
    let token = token();
    let _dev = dev_with_token(&mut env, &token, &[]).await;
    env.workflow(napping("long", 20_000)).await;
    let Some(b) = logged_in(&env, &token).await else {
        return;
    };
    let id = env.start("long", json!({})).await;
    let page = format!("/runs/{id}");
    b.goto(&page).await;
    b.wait_attr("g.node[data-node=\"nap\"]", "data-status", "running", WAIT)
        .await;
    assert_eq!(b.text("#run-status").await.trim(), "running");

    // The worker running nap lists its job, linked to the run.
    b.goto("/workers").await;
    let job = format!("tr.worker a[href=\"/runs/{id}\"]");
    b.wait("the workers page to list the running job", WAIT, || async {
        if b.count(&job).await == 1 {
            Ok(())
        } else {
            b.goto("/workers").await;
            Err("not listed".to_owned())
        }
    })
    .await;
    b.shot("workers").await;

    // A page rendered while nap runs (the screenshot of a run).
    b.goto(&page).await;
    let nap = b.try_attr("g.node[data-node=\"nap\"]", "data-status").await;
    assert_eq!(nap.as_deref(), Some("running"));
    b.shot("run-detail").await;
    b.click("button#cancel").await;
    b.wait_text("#run-status", "cancelled", Duration::from_secs(15))
        .await;
    b.goto(&page).await;
    assert_eq!(b.text("#run-status").await.trim(), "cancelled");
    let nap = b.try_attr("g.node[data-node=\"nap\"]", "data-status").await;
    assert_eq!(nap.as_deref(), Some("cancelled"));
    let report = b
        .try_attr("g.node[data-node=\"report\"]", "data-status")
        .await;
    assert!(
        matches!(report.as_deref(), Some("cancelled" | "skipped" | "pending")),
        "report never ran: {report:?}"
    );
    b.close().await;
}

/// Follow the pager's next link and wait until the page shown has a cursor.
async fn next_page(b: &Browser) {
    b.click("a#next-page").await;
    b.wait("the next page", WAIT, || async {
        let p = b.path().await;
        if p.contains("cursor=") {
            Ok(())
        } else {
            Err(p)
        }
    })
    .await;
}

/// The ids of the runs listed on the page shown.
async fn listed_runs(b: &Browser) -> Vec<String> {
    let v = b
        .js("return [...document.querySelectorAll('tr.run')].map(r => r.dataset.run);")
        .await;
    serde_json::from_value(v).expect("a list of run ids")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runs_list_pages_by_cursor() {
    let mut env = Env::new().await;
    let token = token();
    let _dev = dev_with_token(&mut env, &token, &[]).await;
    env.workflow(json!({"name": "tick", "nodes": [{"id": "t", "agent": "noop"}]}))
        .await;
    // One page (50 rows) and three more.
    let mut ids = Vec::new();
    for _ in 0..53 {
        ids.push(env.start("tick", json!({})).await);
    }
    for id in &ids {
        env.wait_run(id, WAIT).await;
    }
    let Some(b) = logged_in(&env, &token).await else {
        return;
    };
    b.goto("/runs?workflow=tick").await;
    let first = listed_runs(&b).await;
    assert_eq!(first.len(), 50, "one full page");
    assert_eq!(first[0], ids[52], "newest first");
    next_page(&b).await;
    let second = listed_runs(&b).await;
    assert_eq!(second.len(), 3, "the rest: {second:?}");
    let mut all: Vec<String> = first.into_iter().chain(second).collect();
    all.sort();
    all.dedup();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(all, want, "every run once across the pages");
    assert_eq!(b.count("a#next-page").await, 0, "no page after the last");
    b.close().await;
}

/// The item indices of the instance rows the page shows, top to bottom.
async fn indices(b: &Browser) -> Vec<u32> {
    let v = b
        .js("return [...document.querySelectorAll('tr.instance')].map(r => Number(r.dataset.index));")
        .await;
    serde_json::from_value(v).expect("instance indices")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_page_by_cursor_and_child_runs_link_both_ways() {
    let mut env = Env::new().await;
    let token = token();
    let _dev = dev_with_token(&mut env, &token, &[]).await;
    env.workflow(json!({"name": "leaf", "nodes": [{"id": "l", "agent": "echo"}]}))
        .await;
    env.workflow(json!({"name": "tree", "nodes": [
        {"id": "many", "agent": "echo", "for_each": "{{run.input.items}}",
         "input": {"n": "{{item}}"}},
        {"id": "kids", "workflow": "leaf", "for_each": "{{run.input.kids}}",
         "input": {"k": "{{item}}"}}
    ]}))
    .await;
    let items: Vec<u32> = (0..53).collect();
    let id = env
        .start("tree", json!({"items": items, "kids": ["a", "b", "c"]}))
        .await;
    let run = env.wait_run(&id, WAIT).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let Some(b) = logged_in(&env, &token).await else {
        return;
    };

    // The map node's box links to its instances, 50 to a page.
    b.goto(&format!("/runs/{id}")).await;
    b.click("div.node-detail[data-node=\"many\"] a.instances-link")
        .await;
    b.wait_path(&format!("/runs/{id}/nodes/many/instances"), WAIT)
        .await;
    assert_eq!(
        indices(&b).await,
        (0..50).collect::<Vec<_>>(),
        "the first page in item order"
    );
    b.shot("instances").await;
    next_page(&b).await;
    assert_eq!(indices(&b).await, vec![50, 51, 52], "the rest");
    assert_eq!(b.count("a#next-page").await, 0, "no page after the last");
    b.goto(&format!("/runs/{id}/nodes/many/instances?status=failed"))
        .await;
    assert_eq!(b.count("tr.instance").await, 0, "no instance failed");
    assert_eq!(b.count("#no-instances").await, 1);
    b.goto(&format!("/runs/{id}/nodes/kids/instances?status=bogus"))
        .await;
    assert_eq!(b.page_status().await, 400, "a bad status filter is refused");

    // The workflow node lists its three children; each links back.
    b.goto(&format!("/runs/{id}")).await;
    let kids = "div.node-detail[data-node=\"kids\"] a.child-run";
    assert_eq!(b.count(kids).await, 3, "one child run per item");
    let detail = b.text("div.node-detail[data-node=\"kids\"]").await;
    assert!(
        detail.contains("workflow leaf"),
        "the node names its workflow:\n{detail}"
    );
    assert!(
        detail.contains("[2]"),
        "children are labelled by instance:\n{detail}"
    );
    b.click(kids).await;
    b.wait("the child's page", WAIT, || async {
        match b.try_text("#parent").await {
            Some(t) => Ok(t),
            None => Err(b.path().await),
        }
    })
    .await;
    let parent = b.text("#parent").await;
    assert!(
        parent.contains(&id) && parent.contains("kids") && parent.contains("instance 0"),
        "the child names its parent run, node and instance: {parent}"
    );
    b.click("#parent a").await;
    b.wait_path(&format!("/runs/{id}"), WAIT).await;
    b.close().await;
}

#[path = "e2e_dashboard/dead.rs"]
mod dead;
#[path = "e2e_dashboard/security.rs"]
mod security;
#[path = "e2e_dashboard/triggers.rs"]
mod triggers;

/// The node statuses of run `id`, as the API has them.
async fn node_statuses(env: &Env, id: &str) -> Vec<(String, String)> {
    let run = env.run(id).await;
    ["prep", "nap", "side", "report"]
        .iter()
        .map(|n| (n.to_string(), node_of(&run, n)["status"].to_string()))
        .collect()
}
