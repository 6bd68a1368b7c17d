//! The master key ring: `POST /api/v1/keys/master/rewrap` moves every sealed value to a
//! newly added key while the site serves, audited with its actor; afterwards the old key
//! can leave the ring file and the site still starts and opens everything; a ring that
//! lacks a key a value names is refused with that key's id.

#[macro_use]
mod support;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use cmg_proto::SiteCode;
use cmg_site::model::{ExportRequest, MasterKeyRewrap, MasterKeyStatus, StorageSet};
use cmg_site::store::{ExportListen, InitParams};
use cmg_site::{KeySource, MasterKey, Store};
use http::Method;
use support::{admin, gateway_pki, gateway_request, master_key_text, serve_store, test_db, Kind};
use tokio::sync::Notify;

const STORAGE_KEY1: &str = "cmV3cmFwLWtleS1vbmUtY2xlYXItdGV4dC0xMTExMTE=";
const STORAGE_KEY2: &str = "cmV3cmFwLWtleS10d28tY2xlYXItdGV4dC0yMjIyMjI=";
const WEBHOOK: &str = "https://hooks.contoso.test/alerts?token=rewrap-sentinel";
/// Sealed values of the site below: key check, CA key, API key, webhook, two signing
/// keys, the gateway's server key, two storage account keys.
const SEALED: u64 = 9;

fn id_of(text: &str) -> String {
    MasterKey::parse(text).expect("key").id().to_owned()
}

fn write_ring(path: &Path, keys: &[&str]) {
    cmg_core::private_file::write(path, format!("{}\n", keys.join("\n")).as_bytes())
        .expect("write the ring");
}

/// A site whose ring is the file `ring` (the test key), with one of every sealed value.
async fn site_with_secrets(url: &str, ring: &Path) -> Store {
    write_ring(ring, &[&master_key_text()]);
    let store = Store::open_from(url, KeySource::File(ring.to_owned()))
        .await
        .expect("open");
    store
        .init(
            &InitParams {
                site_code: SiteCode::new("PS1").expect("code"),
                api_names: vec!["127.0.0.1".into()],
            },
            &admin(),
        )
        .await
        .expect("init");
    let pki = gateway_pki("cmg.contoso.test");
    store
        .create_gateway(gateway_request("gw1", &pki), &admin())
        .await
        .expect("gateway");
    let storage: StorageSet = serde_json::from_value(serde_json::json!({
        "account": "cmgcontent", "container": "content",
        "key1": STORAGE_KEY1, "key2": STORAGE_KEY2,
    }))
    .expect("storage");
    store
        .set_storage("gw1", storage, &admin())
        .await
        .expect("storage");
    store
        .set_alert_webhook(Some(WEBHOOK), &admin())
        .await
        .expect("webhook");
    store
        .roll_key(std::time::Duration::from_secs(3600), &admin())
        .await
        .expect("roll");
    store
}

/// Opens every secret the site uses: signing, API TLS, the webhook, the gateway key
/// (export) and both storage keys (bundle, rotation, bundle).
async fn use_every_secret(store: &Store) {
    store.signer().await.expect("signing key");
    store.api_tls().await.expect("API key");
    assert_eq!(
        store.alert_webhook().await.expect("webhook").as_deref(),
        Some(WEBHOOK)
    );
    let req = ExportRequest {
        instance: 1,
        client_listen: None,
        channel_listen: None,
        admin_listen: None,
    };
    let listen = ExportListen {
        client: "127.0.0.1:0".into(),
        channel: "127.0.0.1:0".into(),
        admin: None,
    };
    store
        .export("gw1", &req, &listen, &admin())
        .await
        .expect("export opens the gateway key");
    store
        .bundle("gw1")
        .await
        .expect("bundle with storage key 1");
    store
        .rotate_storage_key("gw1", "test", &admin())
        .await
        .expect("rotate");
    store
        .bundle("gw1")
        .await
        .expect("bundle with storage key 2");
}

both!(rewrap_while_serving_then_restart_without_the_old_key);
async fn rewrap_while_serving_then_restart_without_the_old_key(kind: Kind) {
    let db = test_db(kind).await;
    let keys = tempfile::tempdir().expect("dir");
    let ring: PathBuf = keys.path().join("master.key");
    let store = site_with_secrets(&db.url, &ring).await;
    let old = id_of(&master_key_text());
    let url = db.url.clone();
    let site = serve_store(store, db, |_| {}).await;
    let api = site.admin();

    let status: MasterKeyStatus = api
        .call(Method::GET, "/api/v1/keys/master", None)
        .await
        .expect("status")
        .parse()
        .expect("status body");
    assert_eq!(status.sealing_key, old);
    assert_eq!(status.values.get(&old), Some(&SEALED), "{status:?}");

    // The administrator adds a key to the ring's file; the site does not see it yet.
    let (_, new_text) = MasterKey::generate().expect("key");
    let new = id_of(new_text.expose());
    write_ring(&ring, &[&master_key_text(), new_text.expose()]);

    // Requests that open secrets go on before, during and after the rewrap.
    let stop = Arc::new(AtomicBool::new(false));
    let served = Arc::new(AtomicU64::new(0));
    let progress = Arc::new(Notify::new());
    let load = {
        let (store, stop, served, progress) = (
            site.store.clone(),
            stop.clone(),
            served.clone(),
            progress.clone(),
        );
        let client = site.admin();
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                store.signer().await.expect("signing key during the rewrap");
                store.bundle("gw1").await.expect("bundle during the rewrap");
                let r = client
                    .call(Method::GET, "/api/v1/gateways/gw1/storage", None)
                    .await
                    .expect("API during the rewrap");
                assert!(r.status.is_success(), "{}", r.text());
                served.fetch_add(1, Ordering::SeqCst);
                progress.notify_one();
            }
        })
    };
    progress.notified().await;
    let before = served.load(Ordering::SeqCst);

    let reply = api
        .call(Method::POST, "/api/v1/keys/master/rewrap", None)
        .await
        .expect("rewrap");
    assert!(reply.status.is_success(), "{}", reply.text());
    let report: MasterKeyRewrap = reply.parse().expect("rewrap body");
    assert_eq!(report.sealing_key, new);
    assert_eq!(report.ring, vec![old.clone(), new.clone()]);
    assert_eq!(report.resealed, SEALED, "{report:?}");
    assert_eq!(report.from.get(&old), Some(&SEALED), "{report:?}");
    assert_eq!(report.left, 0);

    // The load kept going through it.
    while served.load(Ordering::SeqCst) < before + 2 {
        progress.notified().await;
    }
    stop.store(true, Ordering::SeqCst);
    load.await.expect("no request failed during the rewrap");

    // Audited, with who asked.
    let audit = api
        .call(Method::GET, "/api/v1/audit?limit=20", None)
        .await
        .expect("audit")
        .json();
    let entry = audit
        .as_array()
        .expect("list")
        .iter()
        .find(|e| e["action"] == "master_key.rewrap")
        .unwrap_or_else(|| panic!("no rewrap entry: {audit}"));
    assert_eq!(entry["actor"], "admin:tester", "{entry}");
    assert_eq!(entry["target"], new.as_str(), "{entry}");
    assert_eq!(entry["detail"]["resealed"], SEALED, "{entry}");
    assert!(
        !entry.to_string().contains(new_text.expose()),
        "no key in the audit"
    );

    let status: MasterKeyStatus = api
        .call(Method::GET, "/api/v1/keys/master", None)
        .await
        .expect("status")
        .parse()
        .expect("status body");
    assert_eq!(status.values.len(), 1, "{status:?}");
    assert_eq!(status.values.get(&new), Some(&SEALED), "{status:?}");

    // Restart with the old key gone from the file: starts, opens everything.
    site.shutdown.token.cancel();
    site.store.close().await;
    write_ring(&ring, &[new_text.expose()]);
    let reopened = Store::open_from(&url, KeySource::File(ring.clone()))
        .await
        .expect("starts without the old key");
    use_every_secret(&reopened).await;
    reopened.close().await;

    // The old key alone: refused, naming the key it lacks.
    write_ring(&ring, &[&master_key_text()]);
    let err = Store::open_from(&url, KeySource::File(ring.clone()))
        .await
        .expect_err("the ring lacks the new key");
    let msg = err.to_string();
    assert!(
        msg.contains(&new) && msg.contains("not in the key ring"),
        "names the missing key: {msg}"
    );
    drop(site);
}

both!(a_value_naming_a_key_outside_the_ring_is_refused_by_id);
/// A value sealed under a key the ring never held (copied in from elsewhere) stops the
/// start, naming that key, although the key check itself opens.
async fn a_value_naming_a_key_outside_the_ring_is_refused_by_id(kind: Kind) {
    let db = test_db(kind).await;
    let keys = tempfile::tempdir().expect("dir");
    let ring = keys.path().join("master.key");
    let store = site_with_secrets(&db.url, &ring).await;
    let (stranger, _) = MasterKey::generate().expect("key");
    let foreign = stranger
        .seal("alert-webhook", WEBHOOK.as_bytes())
        .expect("seal");
    let pool = sqlx::AnyPool::connect(&db.url).await.expect("pool");
    sqlx::query("UPDATE site SET alert_webhook = $1 WHERE id = 1")
        .bind(foreign)
        .execute(&pool)
        .await
        .expect("update");
    pool.close().await;

    // The running store: the one value is refused by id, the rest still works.
    let err = store.alert_webhook().await.expect_err("foreign key");
    assert!(
        err.to_string().contains(stranger.id()) && err.to_string().contains("alert-webhook"),
        "{err}"
    );
    store.signer().await.expect("other secrets open");
    // A rewrap cannot move it and says why; nothing changes.
    let err = store.rewrap_secrets(&admin()).await.expect_err("rewrap");
    assert!(err.to_string().contains(stranger.id()), "{err}");
    store.close().await;

    let err = Store::open_from(&db.url, KeySource::File(ring))
        .await
        .expect_err("start");
    let msg = err.to_string();
    assert!(
        msg.contains(stranger.id()) && msg.contains("alert-webhook"),
        "{msg}"
    );
}
