//! No secret readable outside the site and the gateway instances (issue 17): a cluster
//! with a site (the demo's topology: exports, connection points from the site), its
//! storage account set, then every file the site, the exports and the roles wrote is read
//! back. Secret files are owner-only; the storage key is in clear in none of them (the
//! database and the bundles hold it sealed); each instance opens the copy sealed to it
//! and builds its content source; the connection points hold no instance key.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use cmg_e2e::{tag, tagged, Cert, TestCluster};
use cmg_site::model::StorageSet;
use http::{Method, StatusCode};

/// A base64 account key that appears nowhere unless someone wrote it in clear.
const KEY1: &str = "c3RvcmFnZS1rZXktb25lLWNsZWFyLXRleHQtc2VudGluZWw=";
const KEY2: &str = "c3RvcmFnZS1rZXktdHdvLWNsZWFyLXRleHQtc2VudGluZWw=";

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Whether `path` (with `bytes`) holds a secret: private keys, instance keys, tokens,
/// the master key, bundles (sealed secrets), the demo contract (a device token).
fn is_secret(path: &Path, bytes: &[u8]) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let text = String::from_utf8_lossy(bytes);
    text.contains("PRIVATE KEY")
        || text.contains("cmg-instance-key-v1:")
        || name.ends_with(".jws")
        || name.ends_with(".key")
        || name.ends_with(".token")
        || name == "demo.json"
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).expect("meta").permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_sealed_to_the_instances_and_files_owner_only() -> anyhow::Result<()> {
    let tc = TestCluster::start_with(|s| s.site = true).await?;
    tc.write_contract()?;
    // A storage endpoint that refuses connections: an instance that opened the key
    // builds its content source and answers 502 (storage failed), one that could not
    // would answer 403 content_serving_disabled.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let req: StorageSet = serde_json::from_value(serde_json::json!({
        "account": "cmgcontent", "container": "content",
        "endpoint": format!("http://{dead}/cmgcontent"),
        "key1": KEY1, "key2": KEY2,
    }))?;
    let site = tc.site()?;
    let _: serde_json::Value = site
        .admin_send(Method::PUT, "/api/v1/gateways/cmg1/storage", &req)
        .await?;
    let version = tc.site_settings_version().await?;
    tc.wait_settings(version, Duration::from_secs(30)).await?;

    for gw in 0..tc.gateways.len() {
        let req = tagged(
            Method::GET,
            "/CCM_Proxy_MutualAuth/CMG_Content/a.txt",
            &tag("content"),
            Bytes::new(),
        );
        let resp = tc.client(gw, Cert::Valid, true)?.request(req).await?;
        assert_eq!(
            resp.status(),
            StatusCode::BAD_GATEWAY,
            "gw{gw}: the instance did not open its storage key"
        );
    }

    // The site's answer to an admin carries the sealed copies only.
    let bundle = site
        .admin(Method::GET, "/api/v1/gateways/cmg1/bundle", None)
        .await?
        .to_string();
    assert!(!bundle.contains(KEY1) && !bundle.contains(KEY2), "{bundle}");
    assert_eq!(
        bundle.matches("\"ciphertext\"").count(),
        tc.gateways.len(),
        "one sealed copy per instance: {bundle}"
    );

    let all = files(tc.dir());
    let mut secrets = 0;
    for path in &all {
        let bytes = std::fs::read(path)?;
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(KEY1) && !text.contains(KEY2),
            "{} holds the storage key in clear",
            path.display()
        );
        if is_secret(path, &bytes) {
            secrets += 1;
            #[cfg(unix)]
            assert_eq!(mode(path), 0o600, "{} is a secret file", path.display());
        }
        // Connection points relay what they cannot read: no instance key there.
        let in_cp = path
            .strip_prefix(tc.dir())
            .ok()
            .and_then(|p| p.iter().next())
            .and_then(|c| c.to_str())
            .is_some_and(|c| c.starts_with("cp"));
        if in_cp {
            assert!(
                !text.contains("cmg-instance-key-v1:"),
                "{} gives a connection point an instance key",
                path.display()
            );
        }
    }
    // The master key, the admin token, each instance's server key, instance key and
    // bundle, each connection point's key, the demo PKI's keys, demo.json.
    assert!(secrets >= 12, "only {secrets} secret files among {all:?}");
    for name in [
        "site/master.key",
        "site/admin.token",
        "gw1/instance.key",
        "gw1/bundle.jws",
    ] {
        assert!(tc.dir().join(name).exists(), "{name} missing");
    }
    tc.shutdown().await;
    Ok(())
}
