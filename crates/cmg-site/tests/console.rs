//! The web console in memory (tower `oneshot` on the site's router): signing in and out,
//! the session cookie and where sessions live, the refusals (no session, expired
//! session, missing or wrong CSRF token, foreign or missing Origin, wrong admin token),
//! the security headers, the static files and every page.

#[macro_use]
mod support;
#[path = "console/harness.rs"]
mod harness;

use harness::{app, Browser, TOKEN};
use http::{Method, StatusCode};
use support::{gateway_pki, gateway_request, test_site, Kind};

const PAGES: &[(&str, &str)] = &[
    ("/ui/gateways", "<h1>Gateways</h1>"),
    ("/ui/gateways/gw1", "Channels"),
    ("/ui/gateways/gw1/traffic?period=24h", "Traffic of"),
    ("/ui/gateways/gw1/traffic?period=14d", "last 14 days"),
    ("/ui/gateways/gw1/traffic?period=30d", "last 30 days"),
    ("/ui/gateways/table", "Refreshed"),
    ("/ui/roles", "Roles and URL mappings"),
    ("/ui/connection-points", "Add a connection point"),
    ("/ui/tokens", "Create a bulk token"),
    ("/ui/keys", "Roll the signing key"),
    ("/ui/boundary-groups", "Client settings"),
    ("/ui/audit", "Audit log"),
];

#[tokio::test]
async fn sign_in_sets_a_host_only_secure_cookie_and_every_page_renders() {
    let (store, db) = test_site(Kind::Sqlite).await;
    let pki = gateway_pki("gw1.example.test");
    store
        .create_gateway(gateway_request("gw1", &pki), &support::admin())
        .await
        .expect("gateway");
    let mut b = Browser::new(app(&store));

    let form = b.get("/ui/sign-in").await;
    assert_eq!(form.status, StatusCode::OK);
    assert_eq!(form.header("content-security-policy"), cmg_site::ui::CSP);
    for h in [
        "default-src 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
        "base-uri 'none'",
    ] {
        assert!(cmg_site::ui::CSP.contains(h), "{h}");
    }
    assert!(
        !form.body.contains("<script>") && !form.body.contains("style="),
        "no inline script or style"
    );
    assert!(b.cookie("__Host-cmg-sign-in").is_some());

    let signed = b
        .post("/ui/sign-in", &[("name", "alice"), ("token", TOKEN)])
        .await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
    assert_eq!(signed.header("location"), "/ui/gateways");
    let cookie = signed
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("__Host-cmg-session="))
        .expect("session cookie");
    for attr in [
        "Path=/",
        "Secure",
        "HttpOnly",
        "SameSite=Strict",
        "Max-Age=43200",
    ] {
        assert!(cookie.contains(attr), "{cookie} lacks {attr}");
    }
    assert!(!cookie.contains("Domain"), "{cookie}");
    // The database has the secret's digest, never the secret.
    let secret = b.cookie("__Host-cmg-session").expect("kept").to_owned();
    let text = db.sqlite_text();
    assert!(
        !text.contains(&secret),
        "the session secret reached the database"
    );
    assert!(text.contains(&cmg_site::ui::session_key(&secret)));

    for (path, expect) in PAGES {
        let page = b.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.body);
        assert!(page.body.contains(expect), "{path} lacks {expect:?}");
        assert_eq!(
            page.header("content-security-policy"),
            cmg_site::ui::CSP,
            "{path}"
        );
        assert_eq!(page.header("cache-control"), "no-store", "{path}");
        assert_eq!(page.header("x-frame-options"), "DENY", "{path}");
        assert!(
            !page.body.contains(" style=") && !page.body.contains("<style"),
            "{path}: inline style"
        );
        assert!(!page.body.contains("<script>"), "{path}: inline script");
        assert!(
            !page.body.contains("onclick") && !page.body.contains("onsubmit"),
            "{path}: inline handler"
        );
    }
    // The list polls its own table.
    let list = b.get("/ui/gateways").await;
    assert!(
        list.body.contains(r#"hx-get="/ui/gateways/table""#)
            && list.body.contains("hx-trigger=\"every 5s\"")
    );
    assert!(list.body.contains(r#"href="/ui/gateways/gw1""#));
    assert!(
        list.body.contains("Disconnected"),
        "no connection point reports yet"
    );
    // Times are <time datetime=ISO> with an age, never epoch seconds.
    let detail = b.get("/ui/gateways/gw1").await;
    assert!(detail.body.contains("<time datetime=\""), "{}", detail.body);

    // `/ui` goes to the list; an unknown console page is the console's 404.
    let root = b.get("/ui").await;
    assert_eq!(root.status, StatusCode::SEE_OTHER);
    assert_eq!(b.get("/ui/nope").await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        b.get("/ui/gateways/nope").await.status,
        StatusCode::NOT_FOUND
    );

    // Static files: long cache, the right type; a wrong hash is not served.
    for name in ["htmx.min.js", "console.js", "console.css", "htmx.LICENSE"] {
        let at = list.body.find(&format!("/{name}")).map(|end| {
            let start = list.body[..end].rfind("/ui/static/").expect("static url");
            &list.body[start..end + name.len() + 1]
        });
        let url = match at {
            Some(u) => u.to_owned(),
            None if name == "htmx.LICENSE" => continue,
            None => panic!("{name} is not linked"),
        };
        let file = b.get(&url).await;
        assert_eq!(file.status, StatusCode::OK, "{url}");
        assert_eq!(
            file.header("cache-control"),
            "public, max-age=31536000, immutable"
        );
    }
    let js = b.get("/ui/static/0000000000000000/htmx.min.js").await;
    assert_eq!(js.status, StatusCode::NOT_FOUND);

    // Signing out ends the session at the site, not only in the browser.
    let gone = b.post("/ui/sign-out", &[]).await;
    assert_eq!(gone.status, StatusCode::SEE_OTHER);
    assert_eq!(gone.header("location"), "/ui/sign-in");
    assert!(b.cookie("__Host-cmg-session").is_none(), "cookie cleared");
    b.cookies.push(("__Host-cmg-session".into(), secret));
    let after = b.get("/ui/gateways").await;
    assert_eq!(
        after.status,
        StatusCode::SEE_OTHER,
        "the old cookie is dead"
    );

    let audit = store.audit(10, None).await.expect("audit");
    assert!(audit
        .iter()
        .any(|e| e.action == "console.sign_in" && e.actor == "web:alice"));
    assert!(audit
        .iter()
        .any(|e| e.action == "console.sign_out" && e.actor == "web:alice"));
}

/// A session lives in the database: a new router on the same store (a restart, or a
/// second site server) honours it.
async fn sessions_survive_a_restart(kind: Kind) {
    let (store, _db) = test_site(kind).await;
    let mut b = Browser::new(app(&store));
    assert_eq!(b.sign_in("bob").await.status, StatusCode::SEE_OTHER);
    b.router = app(&store);
    let page = b.get("/ui/tokens").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("bob"));
}
both!(sessions_survive_a_restart);

#[tokio::test]
async fn refusals() {
    let (store, _db) = test_site(Kind::Sqlite).await;
    let mut b = Browser::new(app(&store));
    let changes = |s: &cmg_site::Store| {
        let s = s.clone();
        async move { s.site().await.expect("site").change_seq }
    };

    // No session: a page goes to the sign-in form, an htmx poll is told to go there,
    // an action is refused.
    let page = b.get("/ui/gateways").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.header("location"), "/ui/sign-in");
    b.htmx = true;
    let poll = b.request(Method::GET, "/ui/gateways/table", None).await;
    b.htmx = false;
    assert_eq!(poll.status, StatusCode::UNAUTHORIZED);
    assert_eq!(poll.header("hx-redirect"), "/ui/sign-in");
    let before = changes(&store).await;
    let post = b.post_raw("/ui/tokens", &[("csrf", "x".into())]).await;
    assert_eq!(post.status, StatusCode::FORBIDDEN, "no cookie, no token");

    // Wrong admin token, and no name.
    b.get("/ui/sign-in").await;
    let wrong = b
        .post("/ui/sign-in", &[("name", "eve"), ("token", "nope")])
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains("The admin token is wrong."));
    assert!(b.cookie("__Host-cmg-session").is_none());
    let nameless = b
        .post("/ui/sign-in", &[("name", "  "), ("token", TOKEN)])
        .await;
    assert_eq!(nameless.status, StatusCode::BAD_REQUEST);
    // Sign-in needs its own token and the same origin too.
    let no_csrf = b
        .post_raw(
            "/ui/sign-in",
            &[("name", "eve".into()), ("token", TOKEN.into())],
        )
        .await;
    assert_eq!(no_csrf.status, StatusCode::FORBIDDEN);
    assert_eq!(changes(&store).await, before, "nothing was changed");

    assert_eq!(b.sign_in("carol").await.status, StatusCode::SEE_OTHER);
    let page = b.get("/ui/tokens").await;
    assert_eq!(page.status, StatusCode::OK);
    let before = changes(&store).await;

    // Missing and wrong CSRF token.
    let missing = b
        .post_raw("/ui/tokens", &[("lifetime_minutes", "60".into())])
        .await;
    assert_eq!(missing.status, StatusCode::FORBIDDEN);
    assert!(missing.body.contains("missing its token"));
    let wrong = b
        .post_raw(
            "/ui/tokens",
            &[("csrf", "0".repeat(64)), ("lifetime_minutes", "60".into())],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    assert!(wrong.body.contains("token is wrong"));
    // The token of another session is wrong too.
    let mut other = Browser::new(app(&store));
    other.sign_in("dave").await;
    other.get("/ui/tokens").await;
    let theirs = other.csrf.clone();
    assert_eq!(changes(&store).await, before + 1, "only dave's sign-in");
    let before = before + 1;
    let crossed = b
        .post_raw(
            "/ui/tokens",
            &[("csrf", theirs), ("lifetime_minutes", "60".into())],
        )
        .await;
    assert_eq!(crossed.status, StatusCode::FORBIDDEN);

    // A foreign Origin, and none at all.
    b.origin = Some("https://evil.example".into());
    assert_eq!(
        b.post("/ui/tokens", &[("lifetime_minutes", "60")])
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    b.origin = Some("http://site.test:8443".into());
    assert_eq!(
        b.post("/ui/tokens", &[("lifetime_minutes", "60")])
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    b.origin = None;
    assert_eq!(
        b.post("/ui/tokens", &[("lifetime_minutes", "60")])
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    b.origin = Some(harness::ORIGIN.into());
    assert!(store.tokens().await.expect("tokens").is_empty());
    assert_eq!(
        changes(&store).await,
        before,
        "no refused request changed anything"
    );

    // Expired: idle too long, then too old whatever the use.
    let secret = b.cookie("__Host-cmg-session").expect("session").to_owned();
    let key = cmg_site::ui::session_key(&secret);
    let now = cmg_site::now();
    store
        .set_ui_session_times(&key, now - 60, now - 31 * 60)
        .await
        .expect("times");
    let idle = b.get("/ui/tokens").await;
    assert_eq!(idle.status, StatusCode::SEE_OTHER, "idle session expired");
    assert_eq!(idle.header("location"), "/ui/sign-in");

    b.sign_in("carol").await;
    b.get("/ui/tokens").await;
    let secret = b.cookie("__Host-cmg-session").expect("session").to_owned();
    let key = cmg_site::ui::session_key(&secret);
    store
        .set_ui_session_times(&key, now - 13 * 3600, now)
        .await
        .expect("times");
    let old = b.post("/ui/tokens", &[("lifetime_minutes", "60")]).await;
    assert_eq!(
        old.status,
        StatusCode::UNAUTHORIZED,
        "absolute expiry: {}",
        old.body
    );
    assert!(old.body.contains("Nothing was changed"));
    assert!(store.tokens().await.expect("tokens").is_empty());
}
