//! Sessions across API replicas (issue 10, item 8): two `gantry api`
//! processes on one database sharing `GANTRY_SESSION_SECRET`. A cookie
//! from a login on replica 1 works on replica 2 until it is logged out on
//! replica 1; then replica 2 refuses it too.

use crate::common::Env;
use crate::status::{login, page};

#[tokio::test]
async fn a_cookie_is_dead_after_logout_on_a_second_replica_too() {
    let mut env = Env::new().await;
    let token = format!("sess-{}", uuid::Uuid::new_v4().simple());
    let hash = gantry_api::token_hash(&token);
    let vars = [
        ("GANTRY_API_TOKEN_SHA256", hash.as_str()),
        ("GANTRY_SESSION_SECRET", "shared-between-replicas"),
    ];
    let _one = env.serve("api", &vars).await;
    let one = env.base.clone();
    let _two = env.serve("api", &vars).await;
    let two = env.base.clone();
    assert_ne!(one, two);

    let (status, cookie) = login(&one, &token).await;
    assert_eq!(status, 303);
    let (status, again) = login(&one, &token).await;
    assert_eq!(status, 303);
    assert_ne!(cookie, again, "two logins get two sessions");
    assert!(
        !cookie.contains(&hash[..16]),
        "the cookie shows nothing of the token hash"
    );
    let (status, html) = page(&two, &cookie, "/runs").await;
    assert_eq!(status, 200, "replica 2 accepts replica 1's session");

    let at = html.find(r#"name="csrf" value=""#).expect("a csrf field") + 19;
    let csrf = &html[at..at + html[at..].find('"').unwrap()];
    let res = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{one}/logout"))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}"))
        .send()
        .await
        .expect("logout");
    assert_eq!(res.status(), 303);

    for (name, base) in [("replica 1", &one), ("replica 2", &two)] {
        let (status, _) = page(base, &cookie, "/runs").await;
        assert_eq!(status, 303, "{name} refuses the logged-out cookie");
    }
    let (status, _) = page(&two, &again, "/runs").await;
    assert_eq!(status, 200, "the other session lives on");
}
