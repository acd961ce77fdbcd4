//! Tags on the dashboard: the runs list shows each run's tags and filters
//! by one (`key:value`), keeping it across pages; a run's page shows its
//! tags, each a link to the runs carrying it.

use super::helpers::*;
use sqlx::PgPool;

#[sqlx::test(migrations = "../gantry-store/migrations")]
async fn the_runs_list_shows_tags_and_filters_by_one(pool: PgPool) {
    let (app, _) = ui_app(pool).await;
    seed(&app, "auto").await;
    let mut acme = Vec::new();
    for i in 0..53 {
        let tenant = if i % 2 == 0 { "acme" } else { "globex" };
        let start =
            serde_json::json!({"input": {}, "tags": {"tenant": tenant, "n": i.to_string()}});
        let run = create(&app, "/v1/workflows/flow/runs", Some(start)).await;
        if tenant == "acme" {
            acme.push(run["id"].as_str().unwrap().to_owned());
        }
    }
    let cookie = session(&app).await;
    let rows = |html: &str| html.matches(r#"<tr class="run" data-run=""#).count();
    let html = body(&page(&app, &cookie, "/runs?tag=tenant%3Aacme").await);
    assert_eq!(rows(&html), 27, "27 of the 53 runs are acme's");
    assert!(
        html.contains(r#"value="tenant:acme""#),
        "the filter is kept: {html}"
    );
    assert!(
        html.contains(r#"<a class="tag" href="/runs?tag=tenant%3Aacme">tenant=acme</a>"#),
        "{html}"
    );
    assert!(!html.contains("tenant=globex"), "only acme's runs: {html}");
    let html = body(&page(&app, &cookie, "/runs?tag=n%3A4").await);
    assert_eq!(rows(&html), 1);
    assert!(
        html.contains(&format!(r#"data-run="{}""#, acme[2])),
        "{html}"
    );
    let html = body(&page(&app, &cookie, "/runs?tag=nobody%3Ax").await);
    assert!(html.contains(r#"id="no-runs""#));
    let r = page(&app, &cookie, "/runs?tag=no-colon").await;
    assert_eq!(r.status.as_u16(), 400, "{}", body(&r));

    let html = body(&page(&app, &cookie, &format!("/runs/{}", acme[0])).await);
    assert!(html.contains(r#"id="run-tags""#), "{html}");
    assert!(html.contains("tenant=acme"), "{html}");
}
