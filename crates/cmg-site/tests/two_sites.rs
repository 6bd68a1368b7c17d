//! Two site servers on one PostgreSQL database: started at the same moment on an empty
//! database they migrate it once (sqlx's `Migrator` holds `pg_advisory_lock` while it
//! runs), and afterwards either one serves the admin API and publishing: a gateway
//! created through one is read, and its bundle built, through the other; the CLI's
//! client given several URLs moves past one that cannot be connected to.

// `both!` (sqlite and postgres) is not used here: this is PostgreSQL's story.
#[allow(unused_macros)]
mod support;

use std::time::Duration;

use cmg_core::Shutdown;
use cmg_proto::SiteCode;
use cmg_site::store::InitParams;
use cmg_site::{server, Secret, Store};
use http::{Method, StatusCode};
use sqlx::any::AnyPoolOptions;
use support::{admin, gateway_body, gateway_pki, master_key, test_db, Kind, Site, ADMIN_TOKEN};

/// Serves `store` on loopback, as `spawn_site_with` does for a store of its own.
async fn serve(store: Store, db: support::TestDb) -> Site {
    let mut config = server::Config::new(
        "127.0.0.1:0".parse().expect("addr"),
        Secret::new(ADMIN_TOKEN),
    );
    config.long_poll = Duration::from_secs(10);
    let bound = server::bind(store.clone(), config).await.expect("bind");
    let addr = bound.local_addr().expect("addr");
    let admin_addr = bound.admin_addr();
    let shutdown = Shutdown::new();
    tokio::spawn(bound.run(shutdown.clone()));
    let ca = store.site().await.expect("site").ca_pem;
    Site {
        url: format!("https://127.0.0.1:{}", addr.port()),
        ca,
        store,
        shutdown,
        db,
        admin_addr,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sites_start_together_on_one_postgres_and_both_serve() {
    let db = test_db(Kind::Postgres).await;
    // Both open (and migrate) at the same moment, on two runtime threads.
    let (a, b) = tokio::join!(
        tokio::spawn({
            let url = db.url.clone();
            async move { Store::open(&url, master_key()).await }
        }),
        tokio::spawn({
            let url = db.url.clone();
            async move { Store::open(&url, master_key()).await }
        }),
    );
    let a = a.expect("join").expect("first site opens");
    let b = b.expect("join").expect("second site opens");

    // Each migration ran once.
    sqlx::any::install_default_drivers();
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .connect(&db.url)
        .await
        .expect("pool");
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&pool)
            .await
            .expect("applied migrations");
    let expected: Vec<i64> = (1..=versions.len() as i64).collect();
    assert!(!versions.is_empty());
    assert_eq!(versions, expected, "a migration applied twice or skipped");
    pool.close().await;

    a.init(
        &InitParams {
            site_code: SiteCode::new("PS1").expect("site code"),
            api_names: vec!["localhost".into(), "127.0.0.1".into()],
        },
        &admin(),
    )
    .await
    .expect("init through the first");
    let dir = tempfile::tempdir().expect("temp dir");
    let site_a = serve(a, test_db_alias(&db, &dir)).await;
    let site_b = serve(b, test_db_alias(&db, &dir)).await;
    assert_eq!(site_a.ca, site_b.ca, "one site, one CA");

    let pki = gateway_pki("cmg.contoso.test");
    let created = site_a
        .admin()
        .call(
            Method::POST,
            "/api/v1/gateways",
            Some(&gateway_body("gw1", &pki)),
        )
        .await
        .expect("create through the first");
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let shown = site_b
        .admin()
        .call(Method::GET, "/api/v1/gateways/gw1", None)
        .await
        .expect("read through the second");
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.text());
    assert_eq!(shown.json()["name"], "gw1");
    let bundle = site_b
        .admin()
        .call(Method::GET, "/api/v1/gateways/gw1/bundle", None)
        .await
        .expect("bundle through the second");
    assert_eq!(bundle.status, StatusCode::OK, "{}", bundle.text());
    assert_eq!(bundle.json()["version"], shown.json()["settings_version"]);

    // The CLI's client with several site URLs: the first one down, the next answers.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr");
    let both = format!("https://{dead},{}", site_b.url);
    let client =
        cmg_site::client::SiteClient::new(&both, &site_b.ca, Some(Secret::new(ADMIN_TOKEN)), None)
            .expect("client");
    let listed = client
        .call(Method::GET, "/api/v1/gateways", None)
        .await
        .expect("fails over to the second URL");
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text());
    assert_eq!(listed.json()[0]["name"], "gw1");
}

/// A `TestDb` naming the same database (the `Site` handle owns one).
fn test_db_alias(db: &support::TestDb, dir: &tempfile::TempDir) -> support::TestDb {
    support::TestDb {
        url: db.url.clone(),
        kind: db.kind,
        dir: tempfile::tempdir_in(dir.path()).expect("temp dir"),
    }
}
