//! The content storage account of a gateway: both keys sealed at rest, never in API
//! output or the audit log; rotation (by hand and when due) switches the key in force,
//! publishes a new settings version and is audited.

#[macro_use]
mod support;

use cmg_proto::settings::SettingsBundle;
use cmg_site::model::{ExportRequest, StorageSet};
use cmg_site::store::{ExportListen, Store};
use cmg_token::InstanceKey;
use support::{admin, gateway_pki, gateway_request, test_site, Kind, TestDb};

const KEY1: &str = "a2V5LW9uZS1jbGVhci10ZXh0LXNlbnRpbmVsLTExMTE=";
const KEY2: &str = "a2V5LXR3by1jbGVhci10ZXh0LXNlbnRpbmVsLTIyMjI=";

/// A test site with gateway `gw1`.
async fn site_with_gateway(kind: Kind) -> (Store, TestDb) {
    let (store, db) = test_site(kind).await;
    let pki = gateway_pki("cmg.contoso.test");
    store
        .create_gateway(gateway_request("gw1", &pki), &admin())
        .await
        .expect("create");
    (store, db)
}

/// Exports instance `n` of gw1 and returns its instance key (from the package).
async fn export(store: &Store, n: u32) -> InstanceKey {
    let req = ExportRequest {
        instance: n,
        client_listen: None,
        channel_listen: None,
        admin_listen: None,
    };
    let listen = ExportListen {
        client: "127.0.0.1:0".into(),
        channel: "127.0.0.1:0".into(),
        admin: None,
    };
    let pkg = store
        .export("gw1", &req, &listen, &admin())
        .await
        .expect("export");
    let file = pkg
        .files
        .iter()
        .find(|f| f.name == "instance.key")
        .expect("instance.key in the package");
    assert!(file.secret, "instance.key is written 0600");
    InstanceKey::parse(&file.content, "package").expect("instance key")
}

/// The storage key as instance `n` opens it from `b`.
fn opened(b: &SettingsBundle, key: &InstanceKey, n: u32) -> String {
    let acct = b.content.storage.as_ref().expect("storage in the bundle");
    let plain = key
        .open(
            &format!("gw1-{n}"),
            &acct.seal_purpose("gw1"),
            &acct.sealed_keys,
        )
        .expect("the instance opens its copy");
    String::from_utf8(plain.to_vec()).expect("text")
}

fn storage_request(rotation_days: Option<u32>) -> StorageSet {
    serde_json::from_value(serde_json::json!({
        "account": "cmgcontent", "container": "content",
        "endpoint": "http://127.0.0.1:10000/cmgcontent",
        "key1": KEY1, "key2": KEY2, "rotation_days": rotation_days,
    }))
    .expect("storage request")
}

both!(rotation_switches_the_key_and_publishes);
async fn rotation_switches_the_key_and_publishes(kind: Kind) {
    let (store, _db) = site_with_gateway(kind).await;
    let k1 = export(&store, 1).await;
    let k2 = export(&store, 2).await;
    let v0 = store.settings_version("gw1").await.expect("version");
    let view = store
        .set_storage("gw1", storage_request(Some(30)), &admin())
        .await
        .expect("set");
    assert_eq!(view.active_key, "key1");
    assert_eq!(view.next_rotation_at, view.rotated_at + 30 * 86_400);
    let shown = serde_json::to_string(&view).expect("json");
    assert!(!shown.contains(KEY1) && !shown.contains(KEY2), "{shown}");

    let b1 = store.bundle("gw1").await.expect("bundle");
    assert_eq!(b1.version, v0 + 1);
    let acct = b1.content.storage.as_ref().expect("storage in the bundle");
    assert_eq!(acct.key_name, "key1");
    // Sealed to each instance: in clear nowhere in the bundle, opened by both, and not
    // by a key the site did not export (what a connection point or anyone else holds).
    let json = serde_json::to_string(&b1).expect("json");
    assert!(
        !json.contains(KEY1) && !json.contains(KEY2),
        "key in clear: {json}"
    );
    assert_eq!(acct.sealed_keys.len(), 2);
    assert_eq!(opened(&b1, &k1, 1), KEY1);
    assert_eq!(opened(&b1, &k2, 2), KEY1);
    let (stranger, _) = InstanceKey::generate();
    assert!(stranger
        .open("gw1-1", &acct.seal_purpose("gw1"), &acct.sealed_keys)
        .is_err());
    assert!(k1
        .open("gw1-2", &acct.seal_purpose("gw1"), &acct.sealed_keys)
        .is_err());

    let (view, changed) = store
        .rotate_storage_key("gw1", "manual", &admin())
        .await
        .expect("rotate");
    assert_eq!(view.active_key, "key2");
    assert_eq!(changed.settings_version, v0 + 2);
    let b2 = store.bundle("gw1").await.expect("bundle");
    assert_eq!(b2.version, v0 + 2);
    assert_eq!(
        b2.content.storage.as_ref().expect("storage").key_name,
        "key2"
    );
    assert_eq!(opened(&b2, &k1, 1), KEY2);

    // Exporting an instance again replaces its key and publishes: the old key no
    // longer opens, the new one does.
    let k1_new = export(&store, 1).await;
    let b3 = store.bundle("gw1").await.expect("bundle");
    assert_eq!(b3.version, v0 + 3);
    assert_eq!(opened(&b3, &k1_new, 1), KEY2);
    let acct = b3.content.storage.as_ref().expect("storage");
    assert!(k1
        .open("gw1-1", &acct.seal_purpose("gw1"), &acct.sealed_keys)
        .is_err());

    // Not due yet: nothing; 30 days on: back to key1, as a scheduled rotation.
    let now = view.rotated_at;
    let none = store
        .rotate_due_storage_keys(now + 86_400, &admin())
        .await
        .expect("not due");
    assert!(none.is_empty());
    let due = store
        .rotate_due_storage_keys(now + 30 * 86_400, &admin())
        .await
        .expect("due");
    assert_eq!(due, vec!["gw1".to_string()]);
    assert_eq!(store.storage("gw1").await.expect("view").active_key, "key1");
    assert_eq!(store.settings_version("gw1").await.expect("v"), v0 + 4);

    let audit = store.audit(100, None).await.expect("audit");
    let rotations: Vec<_> = audit
        .iter()
        .filter(|a| a.action == "storage.rotate")
        .map(|a| a.detail["reason"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(rotations, vec!["scheduled", "manual"]);
    let all = serde_json::to_string(&audit).expect("json");
    assert!(
        !all.contains(KEY1) && !all.contains(KEY2),
        "a key in the audit log"
    );
}

both!(bad_storage_settings_are_refused);
async fn bad_storage_settings_are_refused(kind: Kind) {
    let (store, _db) = site_with_gateway(kind).await;
    let mut bad = storage_request(None);
    bad.account = "Not_Valid".into();
    assert!(store.set_storage("gw1", bad, &admin()).await.is_err());
    let mut bad = storage_request(Some(0));
    bad.container = "c".into();
    assert!(store.set_storage("gw1", bad, &admin()).await.is_err());
    assert!(store
        .set_storage("nope", storage_request(None), &admin())
        .await
        .is_err());
    assert!(store
        .rotate_storage_key("gw1", "manual", &admin())
        .await
        .is_err());
}

#[tokio::test]
async fn storage_keys_are_not_in_clear_in_the_sqlite_file() {
    let (store, db) = site_with_gateway(Kind::Sqlite).await;
    store
        .set_storage("gw1", storage_request(None), &admin())
        .await
        .expect("set");
    store
        .rotate_storage_key("gw1", "manual", &admin())
        .await
        .expect("rotate");
    store.close().await;
    let text = db.sqlite_text();
    assert!(text.contains("cmgcontent"), "the file holds the account");
    assert!(!text.contains(KEY1), "key1 is in clear");
    assert!(!text.contains(KEY2), "key2 is in clear");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_never_shows_a_storage_key() {
    use http::{Method, StatusCode};
    let site = support::spawn_site(Kind::Sqlite).await;
    let client = site.admin();
    let pki = gateway_pki("cmg.contoso.test");
    let reply = client
        .call(
            Method::POST,
            "/api/v1/gateways",
            Some(&support::gateway_body("gw1", &pki)),
        )
        .await
        .expect("create");
    assert!(reply.status.is_success(), "{}", reply.text());
    let body = serde_json::json!({
        "account": "cmgcontent", "container": "content", "key1": KEY1, "key2": KEY2,
    });
    let reply = client
        .call(Method::PUT, "/api/v1/gateways/gw1/storage", Some(&body))
        .await
        .expect("set");
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let reply = client
        .call(Method::POST, "/api/v1/gateways/gw1/storage/rotate", None)
        .await
        .expect("rotate");
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(reply.json()["storage"]["active_key"], "key2");
    for path in [
        "/api/v1/gateways/gw1/storage",
        "/api/v1/gateways/gw1/bundle",
        "/api/v1/audit",
    ] {
        let reply = client.call(Method::GET, path, None).await.expect("get");
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        let text = reply.text();
        assert!(
            !text.contains(KEY1) && !text.contains(KEY2),
            "{path}: {text}"
        );
    }
    let reply = client
        .call(Method::GET, "/api/v1/gateways/gw1/bundle", None)
        .await
        .expect("bundle");
    assert_eq!(reply.json()["content"]["storage"]["key_name"], "key2");
}

/// The request that sets the keys is the one body that carries them in clear: what the
/// CLI serialises reads back as the same keys, and its `Debug` still masks them.
#[test]
fn the_storage_request_alone_serialises_its_keys() {
    let req = storage_request(Some(30));
    let sent = serde_json::to_string(&req).expect("serialise");
    assert!(sent.contains(KEY1) && sent.contains(KEY2), "{sent}");
    let read: StorageSet = serde_json::from_str(&sent).expect("the site reads it");
    assert_eq!((&read.key1, &read.key2), (&req.key1, &req.key2));
    assert_eq!(read.rotation_days, Some(30));
    let debug = format!("{req:?}");
    assert!(!debug.contains(KEY1) && !debug.contains(KEY2), "{debug}");
}
