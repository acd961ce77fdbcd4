//! No way in without a session, and no action from another site: pages
//! answer visitors without a session (even with a valid bearer token) with
//! the login page, and a form on another origin or site that posts to the
//! dashboard's cancel route while the browser holds a session is refused.

use super::{dev_with_token, napping, node_statuses, token, WAIT};
use crate::browser::{Browser, OtherSite};
use crate::common::Env;
use serde_json::json;
use std::time::Duration;

/// A page that posts a form to `action` as soon as it loads.
fn auto_post(action: &str, csrf: Option<&str>) -> String {
    let field = csrf.map_or(String::new(), |c| {
        format!("<input type=\"hidden\" name=\"csrf\" value=\"{c}\">")
    });
    format!(
        "<!doctype html><html><body><h1>Win a prize</h1>\
         <form id=\"f\" method=\"POST\" action=\"{action}\">{field}</form>\
         <script>document.getElementById('f').submit();</script></body></html>"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_session_no_entry_and_cross_site_posts_are_refused() {
    let mut env = Env::new().await;
    let token = token();
    let _dev = dev_with_token(&mut env, &token, &[]).await;
    env.workflow(napping("held", 25_000)).await;
    let id = env.start("held", json!({})).await;
    env.wait_node(&id, "nap", "running", WAIT).await;
    let page = format!("/runs/{id}");

    // Without a session cookie, a bearer token opens no page and no action.
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("http client");
    let bearer = format!("Bearer {token}");
    for path in [
        "/",
        "/queues",
        "/runs",
        page.as_str(),
        "/workers",
        "/workflows",
        "/agents",
    ] {
        let resp = plain
            .get(format!("{}{path}", env.base))
            .header("authorization", &bearer)
            .send()
            .await
            .expect("GET a page");
        let location = resp
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert_eq!(resp.status(), 303, "{path} without a session");
        assert!(location.starts_with("/login"), "{path} sends to {location}");
    }
    // Nor the live events of a run.
    let resp = plain
        .get(format!("{}{page}/events", env.base))
        .header("authorization", &bearer)
        .send()
        .await
        .expect("GET the events");
    let code = resp.status().as_u16();
    assert!(
        code == 303 || code == 401 || code == 403,
        "events without a session: {code}"
    );
    let resp = plain
        .post(format!("{}{page}/cancel", env.base))
        .header("authorization", &bearer)
        .header("origin", &env.base)
        .send()
        .await
        .expect("POST cancel");
    let code = resp.status().as_u16();
    assert!(
        code == 401 || code == 403 || code == 303,
        "cancel without a session: {code}"
    );
    assert_eq!(
        env.run(&id).await["status"],
        "running",
        "nothing was cancelled"
    );

    // The browser without a session is sent to the login page, and back
    // to the run once logged in.
    let Some(b) = Browser::start(&env.base).await else {
        return;
    };
    b.goto(&page).await;
    let at = b.path().await;
    assert!(at.starts_with("/login"), "sent to {at}");
    b.type_into("input#token", &token).await;
    b.click("button#login-submit").await;
    b.wait_path(&page, WAIT).await;
    let csrf = b
        .try_attr("form input[name=\"csrf\"]", "value")
        .await
        .expect("forms carry a csrf field");

    // Another origin of the same site (another port): the session cookie
    // goes along, so only the server's checks stop the post — without the
    // csrf field, and even with it (the Origin gives the page away).
    // Then another site (localhost): the SameSite cookie stays home.
    let action = format!("{}{page}/cancel", env.base);
    let cases = [
        ("127.0.0.1", None, "another origin, no csrf"),
        (
            "127.0.0.1",
            Some(csrf.as_str()),
            "another origin, a stolen csrf",
        ),
        ("localhost", Some(csrf.as_str()), "another site"),
    ];
    for (host, field, what) in cases {
        let site = OtherSite::serve(host, auto_post(&action, field)).await;
        bounded_goto(&b, &site.url).await;
        let url = b
            .wait(&format!("{what}: the post to land"), WAIT, || async {
                let url = b.url().await;
                if url.starts_with(&env.base) {
                    Ok(url)
                } else {
                    Err(url)
                }
            })
            .await;
        assert_refused(&b, &env, &id, what, &url).await;
    }

    // On the dashboard's own origin, a form without the csrf field or with
    // a wrong one (what a script injected into the page could send).
    let forged = ["", "AAAA", &csrf[..csrf.len() - 1]];
    for value in forged {
        b.goto(&page).await;
        let what = format!("same origin, csrf {value:?}");
        let script = format!(
            "const f = document.createElement('form'); f.method = 'POST';\n\
             f.action = '{page}/cancel';\n\
             if ('{value}' !== '') {{ const i = document.createElement('input');\n\
               i.type = 'hidden'; i.name = 'csrf'; i.value = '{value}'; f.appendChild(i); }}\n\
             document.body.appendChild(f); f.submit(); return null;"
        );
        b.js(&script).await;
        let cancel = format!("{}{page}/cancel", env.base);
        let url = b
            .wait(&format!("{what}: the post to land"), WAIT, || async {
                let url = b.url().await;
                if url == cancel {
                    Ok(url)
                } else {
                    Err(url)
                }
            })
            .await;
        assert_refused(&b, &env, &id, &what, &url).await;
    }

    // The session itself still works: the page's own button cancels.
    b.goto(&page).await;
    b.click("button#cancel").await;
    b.wait_text("#run-status", "cancelled", WAIT).await;
    b.close().await;
}

/// The browser shows the dashboard's 403 for the forged post, and the run
/// still runs (read from the API: nothing happened).
async fn assert_refused(b: &Browser, env: &Env, id: &str, what: &str, url: &str) {
    let status = b.page_status().await;
    assert_eq!(status, 403, "{what}: answered {status} at {url}");
    let run = env.run(id).await;
    assert_eq!(
        run["status"],
        "running",
        "{what}: the run was cancelled: {:?}",
        node_statuses(env, id).await
    );
}

/// Open an absolute URL (another site).
async fn bounded_goto(b: &Browser, url: &str) {
    crate::browser::bounded(&format!("open {url}"), b.client.goto(url)).await;
}

/// With no token configured (a laptop's `gantry dev`), the login page
/// takes any input, but pages still need the session it sets; `next`
/// never leads off the dashboard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_mode_logs_in_with_any_token_and_next_stays_home() {
    let mut env = Env::new().await;
    let _dev = env.dev(&[]).await;
    let Some(b) = Browser::start(&env.base).await else {
        return;
    };
    b.goto("/queues").await;
    let at = b.path().await;
    assert!(
        at.starts_with("/login"),
        "open mode still needs a session: {at}"
    );
    b.goto("/login?next=//localhost:9/steal").await;
    b.type_into("input#token", "anything").await;
    b.click("button#login-submit").await;
    b.wait_path("/", WAIT).await;
    let url = b.url().await;
    assert!(url.starts_with(&env.base), "left the dashboard for {url}");
    assert_eq!(b.count("form[action=\"/logout\"]").await, 1, "logged in");
    b.goto("/queues").await;
    assert_eq!(b.path().await, "/queues");
    b.close().await;
}
