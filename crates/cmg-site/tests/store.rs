//! The store on both databases: lifecycle round trips, restart, concurrent changes,
//! secrets at rest, delete protection, bundles, key roll and tokens.

#[macro_use]
mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use cmg_site::model::{
    BoundaryGroup, ClientSettings, ConnectionPointAdd, ExportRequest, GatewayModify,
    GatewayRedeploy, RoleCreate, RoleModify,
};
use cmg_site::store::ExportListen;
use cmg_site::{MasterKey, Store, StoreError};
use cmg_token::BundleVerifier;
use support::{admin, gateway_pki, gateway_request, master_key, test_site, Kind};

const MP: &str = "72057594037927939";

fn mp_role(allow: bool) -> RoleCreate {
    serde_json::from_value(serde_json::json!({
        "role_id": MP, "kind": "management_point", "internal_url": "https://mp01.corp.example",
        "mode": "https", "allow_gateway_traffic": allow,
    }))
    .expect("role")
}

both!(lifecycle_round_trip_survives_restart);
async fn lifecycle_round_trip_survives_restart(kind: Kind) {
    let (store, db) = test_site(kind).await;
    let pki = gateway_pki("cmg.contoso.test");
    let gw = store
        .create_gateway(gateway_request("gw1", &pki), &admin())
        .await
        .expect("create");
    assert_eq!(gw.service_name, "cmg.contoso.test");
    assert_eq!(gw.settings_version, 1);
    assert_eq!(gw.instances, 2);
    assert_eq!(gw.trusted_roots.len(), 1);
    assert!(gw.verify_revocation && gw.content_enabled);
    assert_eq!(gw.alert.threshold_gb, 10_000);
    assert_eq!(gw.alert.critical_pct, 90);

    store
        .create_role(mp_role(true), &admin())
        .await
        .expect("role");
    let v = store.settings_version("gw1").await.expect("version");
    assert_eq!(v, 2, "a role allowing gateway traffic bumps every gateway");
    let changed = store
        .modify_gateway(
            "gw1",
            GatewayModify {
                instances: Some(4),
                verify_revocation: Some(false),
                content_enabled: Some(false),
                ..Default::default()
            },
            &admin(),
        )
        .await
        .expect("modify");
    assert_eq!(changed.settings_version, 3);
    let cp = store
        .add_connection_point(
            ConnectionPointAdd {
                gateway: "gw1".into(),
                id: Some("cp1".into()),
            },
            &admin(),
        )
        .await
        .expect("cp");
    assert!(cp.key_pem.contains("PRIVATE KEY"));
    assert_eq!(
        cp.mappings.len(),
        12,
        "six endpoints, certificate and token"
    );
    store
        .put_boundary_group(
            &BoundaryGroup {
                name: "internet".into(),
                boundaries: vec!["10.1.0.0/16".into()],
                management_points: vec![],
                gateways: vec!["gw1".into()],
                neighbours: vec![],
                prefer_cloud: false,
            },
            &admin(),
        )
        .await
        .expect("boundary group");
    store
        .set_client_settings(
            &ClientSettings {
                enable_clients_to_use_cmg: false,
                allow_cloud_distribution_point: true,
                policy_interval_minutes: 60,
            },
            &admin(),
        )
        .await
        .expect("client settings");
    let token = store.new_token(None, &admin()).await.expect("token");
    assert!(token.expires_at - cmg_site::now() > 3 * 24 * 3600 - 60);
    store
        .set_token_blocked(&token.tracking_id, true, &admin())
        .await
        .expect("block");
    store
        .redeploy_gateway(
            "gw1",
            GatewayRedeploy {
                region: Some("eu-west".into()),
                service_name: None,
            },
            &admin(),
        )
        .await
        .expect("redeploy");
    let before = store.gateway("gw1").await.expect("gw");
    assert!(before.redeploy_required);
    let audit_before = store.audit(1000, None).await.expect("audit");
    store.close().await;
    drop(store);

    // Restart: everything is still there.
    let store = Store::open(&db.url, master_key()).await.expect("reopen");
    let after = store.gateway("gw1").await.expect("gw");
    assert_eq!(after.settings_version, before.settings_version);
    assert_eq!(after.instances, 4);
    assert!(!after.verify_revocation && !after.content_enabled);
    assert_eq!(after.region, "eu-west");
    assert!(after.redeploy_required);
    assert_eq!(after.connection_points, vec!["cp1".to_string()]);
    assert_eq!(
        after.internet_mps,
        vec![
            format!("cmg.contoso.test/CCM_Proxy_MutualAuth/{MP}"),
            format!("cmg.contoso.test/CCM_Proxy_ServerAuth/{MP}")
        ]
    );
    assert_eq!(store.roles().await.expect("roles").len(), 1);
    assert_eq!(store.boundary_groups().await.expect("bg").len(), 1);
    assert!(
        !store
            .client_settings()
            .await
            .expect("cs")
            .enable_clients_to_use_cmg
    );
    let tokens = store.tokens().await.expect("tokens");
    assert_eq!(tokens.len(), 1);
    assert!(tokens[0].blocked);
    let audit = store.audit(1000, None).await.expect("audit");
    assert_eq!(audit.len(), audit_before.len());
    let actions: Vec<&str> = audit.iter().rev().map(|a| a.action.as_str()).collect();
    assert_eq!(
        actions,
        vec![
            "site.init",
            "gateway.create",
            "role.create",
            "gateway.modify",
            "connection_point.add",
            "boundary_group.put",
            "client_settings.set",
            "token.new",
            "token.block",
            "gateway.redeploy"
        ]
    );
    assert!(audit.iter().all(|a| a.actor == "test-admin"));
    // The token itself is nowhere in the audit log.
    assert!(!serde_json::to_string(&audit)
        .expect("json")
        .contains(&token.token));

    // Remove what was added.
    store
        .remove_connection_point("cp1", &admin())
        .await
        .expect("remove cp");
    store.delete_role(MP, &admin()).await.expect("delete role");
    store
        .delete_boundary_group("internet", &admin())
        .await
        .expect("delete bg");
    assert!(matches!(
        store.remove_connection_point("cp1", &admin()).await,
        Err(StoreError::NotFound { .. })
    ));
}

both!(concurrent_changes_give_strictly_increasing_versions);
async fn concurrent_changes_give_strictly_increasing_versions(kind: Kind) {
    let (store, _db) = test_site(kind).await;
    let pki = gateway_pki("cmg.contoso.test");
    store
        .create_gateway(gateway_request("gw1", &pki), &admin())
        .await
        .expect("create");
    store
        .create_gateway(gateway_request("gw2", &pki), &admin())
        .await
        .expect("create");
    store
        .create_role(mp_role(true), &admin())
        .await
        .expect("role");
    let start1 = store.settings_version("gw1").await.expect("v");
    let start2 = store.settings_version("gw2").await.expect("v");
    const TASKS: u64 = 6;
    const EACH: u64 = 5;
    let mut handles = Vec::new();
    for t in 0..TASKS {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let mut versions = Vec::new();
            for i in 0..EACH {
                if (t + i) % 3 == 0 {
                    // A site-wide change: bumps both gateways.
                    store
                        .modify_role(
                            MP,
                            RoleModify {
                                internal_url: Some(format!("https://mp{t}{i}.corp.example")),
                                ..Default::default()
                            },
                            &admin(),
                        )
                        .await
                        .expect("modify role");
                } else {
                    let c = store
                        .modify_gateway(
                            "gw1",
                            GatewayModify {
                                instances: Some(((t + i) % 16 + 1) as u32),
                                ..Default::default()
                            },
                            &admin(),
                        )
                        .await
                        .expect("modify gateway");
                    versions.push(c.settings_version);
                }
            }
            versions
        }));
    }
    let mut gw1_versions = Vec::new();
    for h in handles {
        gw1_versions.extend(h.await.expect("task"));
    }
    let role_changes = (0..TASKS)
        .flat_map(|t| (0..EACH).map(move |i| (t + i) % 3 == 0))
        .filter(|x| *x)
        .count() as u64;
    let gw_changes = TASKS * EACH - role_changes;
    let unique: BTreeSet<u64> = gw1_versions.iter().copied().collect();
    assert_eq!(
        unique.len() as u64,
        gw_changes,
        "every change got its own version"
    );
    let end1 = store.settings_version("gw1").await.expect("v");
    let end2 = store.settings_version("gw2").await.expect("v");
    assert_eq!(end1, start1 + TASKS * EACH);
    assert_eq!(end2, start2 + role_changes);
    assert!(unique.iter().all(|v| *v > start1 && *v <= end1));
    // One audit entry per change, ids strictly increasing without gaps.
    let audit = store.audit(1000, None).await.expect("audit");
    let ids: Vec<i64> = audit.iter().map(|a| a.id).collect();
    assert!(ids.windows(2).all(|w| w[0] == w[1] + 1));
    // site.init, two gateways, one role, then the concurrent changes.
    assert_eq!(audit.len() as u64, 4 + TASKS * EACH);
}

both!(delete_last_gateway_refused_unless_forced);
async fn delete_last_gateway_refused_unless_forced(kind: Kind) {
    let (store, _db) = test_site(kind).await;
    let pki = gateway_pki("cmg.contoso.test");
    for name in ["gw1", "gw2"] {
        store
            .create_gateway(gateway_request(name, &pki), &admin())
            .await
            .expect("create");
    }
    store
        .delete_gateway("gw1", false, &admin())
        .await
        .expect("not the last");
    let refused = store.delete_gateway("gw2", false, &admin()).await;
    match refused {
        Err(StoreError::Refused { code, message }) => {
            assert_eq!(code, "last_gateway");
            assert!(message.contains("last gateway"), "{message}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(store.gateway("gw2").await.is_ok());
    store
        .delete_gateway("gw2", true, &admin())
        .await
        .expect("forced");
    assert!(store.gateways().await.expect("list").is_empty());
}

both!(bundle_signed_with_overlap_keys_and_blocked_tokens);
async fn bundle_signed_with_overlap_keys_and_blocked_tokens(kind: Kind) {
    let (store, _db) = test_site(kind).await;
    let pki = gateway_pki("cmg.contoso.test");
    store
        .create_gateway(gateway_request("gw1", &pki), &admin())
        .await
        .expect("create");
    store
        .create_role(mp_role(true), &admin())
        .await
        .expect("role");
    let first = store.signed_bundle("gw1").await.expect("bundle");
    let keys = store.keys().await.expect("keys");
    assert_eq!(keys.len(), 1);
    let verifier = BundleVerifier::from_pems(&[keys[0].public_pem.as_bytes()]).expect("verifier");
    let b = verifier.verify(&first.jws).expect("verify");
    assert_eq!(b.version, first.version);
    assert_eq!(b.gateway, "gw1");
    assert_eq!(b.site.as_str(), "PS1");
    assert_eq!(b.published.len(), 12);
    assert_eq!(b.client_auth.trusted_roots_pem.len(), 1);
    assert_eq!(b.tokens.site_keys_pem.len(), 1);

    let token = store.new_token(Some(60), &admin()).await.expect("token");
    store
        .set_token_blocked(&token.tracking_id, true, &admin())
        .await
        .expect("block");
    let rolled = store
        .roll_key(Duration::from_secs(3600), &admin())
        .await
        .expect("roll");
    assert_ne!(rolled.kid, keys[0].kid);
    let second = store.signed_bundle("gw1").await.expect("bundle");
    assert!(second.version > first.version);
    // Signed with the new key; both keys published during the overlap.
    assert!(verifier.verify(&second.jws).is_err());
    let both = BundleVerifier::from_pems(&[rolled.public_pem.as_bytes()]).expect("verifier");
    let b2 = both.verify(&second.jws).expect("verify");
    assert_eq!(b2.tokens.site_keys_pem.len(), 2);
    assert_eq!(b2.tokens.blocked_token_ids, vec![token.tracking_id.clone()]);
    assert!(b2.may_replace(&b).is_ok());
    assert!(b.may_replace(&b2).is_err());

    // A roll with no overlap: the key it replaces retires at once and leaves the bundle;
    // the first key is still in its overlap.
    let v_before = store.settings_version("gw1").await.expect("v");
    let third = store
        .roll_key(Duration::from_secs(0), &admin())
        .await
        .expect("roll again");
    assert_eq!(
        store.retire_expired_keys(&admin()).await.expect("retire"),
        1
    );
    assert_eq!(
        store.retire_expired_keys(&admin()).await.expect("retire"),
        0
    );
    let b3 = store.bundle("gw1").await.expect("bundle");
    assert_eq!(
        b3.version,
        v_before + 2,
        "the roll and the retirement each publish"
    );
    assert_eq!(b3.tokens.site_keys_pem.len(), 2);
    assert!(b3.tokens.site_keys_pem.contains(&third.public_pem));
    assert!(b3.tokens.site_keys_pem.contains(&keys[0].public_pem));
    assert!(!b3.tokens.site_keys_pem.contains(&rolled.public_pem));

    // Out-of-range token lifetimes are refused.
    assert!(matches!(
        store.new_token(Some(7 * 24 * 60 + 1), &admin()).await,
        Err(StoreError::Invalid {
            code: "bad_lifetime",
            ..
        })
    ));
}

both!(wildcard_certificate_needs_a_service_name);
async fn wildcard_certificate_needs_a_service_name(kind: Kind) {
    let (store, _db) = test_site(kind).await;
    let pki = gateway_pki("*.contoso.test");
    let refused = store
        .create_gateway(gateway_request("gw1", &pki), &admin())
        .await;
    assert!(
        matches!(
            refused,
            Err(StoreError::Invalid {
                code: "service_name_required",
                ..
            })
        ),
        "{refused:?}"
    );
    let mut req = gateway_request("gw1", &pki);
    req.service_name = Some("other.example.test".into());
    assert!(matches!(
        store.create_gateway(req, &admin()).await,
        Err(StoreError::Invalid {
            code: "service_name_mismatch",
            ..
        })
    ));
    let mut req = gateway_request("gw1", &pki);
    req.service_name = Some("CMG1.contoso.test".into());
    let gw = store.create_gateway(req, &admin()).await.expect("create");
    assert_eq!(gw.service_name, "cmg1.contoso.test");
    // A bad instance count changes nothing.
    let mut req = gateway_request("gw2", &pki);
    req.instances = 17;
    req.service_name = Some("cmg2.contoso.test".into());
    assert!(store.create_gateway(req, &admin()).await.is_err());
    assert_eq!(store.gateways().await.expect("list").len(), 1);
}

both!(export_writes_a_package_the_gateway_config_accepts);
async fn export_writes_a_package_the_gateway_config_accepts(kind: Kind) {
    let (store, _db) = test_site(kind).await;
    let pki = gateway_pki("cmg.contoso.test");
    store
        .create_gateway(gateway_request("gw1", &pki), &admin())
        .await
        .expect("create");
    store
        .create_role(mp_role(true), &admin())
        .await
        .expect("role");
    assert!(store
        .export(
            "gw1",
            &ExportRequest {
                instance: 3,
                client_listen: None,
                channel_listen: None,
                admin_listen: None
            },
            &ExportListen::default(),
            &admin()
        )
        .await
        .is_err());
    let listen = ExportListen {
        client: "127.0.0.1:0".into(),
        channel: "127.0.0.1:0".into(),
        admin: None,
    };
    let pkg = store
        .export(
            "gw1",
            &ExportRequest {
                instance: 2,
                client_listen: None,
                channel_listen: None,
                admin_listen: None,
            },
            &listen,
            &admin(),
        )
        .await
        .expect("export");
    let dir = tempfile::tempdir().expect("dir");
    cmg_site::files::write_files(dir.path(), &pkg.files).expect("write");
    let config =
        cmg_gateway::Config::from_file(&dir.path().join("gateway.toml")).expect("gateway config");
    assert_eq!(config.instance, "gw1-2");
    assert_eq!(config.service_name, "cmg.contoso.test");
    assert_eq!(config.published.len(), 6);
    let settings = config.settings.as_ref().expect("[settings] exported");
    assert_eq!(settings.gateway, "gw1");
    assert_eq!(settings.last_good, dir.path().join("bundle.jws"));
    let jws = std::fs::read_to_string(dir.path().join("bundle.jws")).expect("bundle");
    let keys = std::fs::read_to_string(dir.path().join("site-keys.pem")).expect("keys");
    let b = BundleVerifier::from_pems(&[keys.as_bytes()])
        .expect("verifier")
        .verify(&jws)
        .expect("verify");
    assert_eq!(b.version, pkg.settings_version);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.path().join("server.key"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0);
    }
}

#[tokio::test]
async fn secrets_are_not_in_clear_in_the_sqlite_file() {
    let (store, db) = test_site(Kind::Sqlite).await;
    let pki = gateway_pki("cmg.contoso.test");
    store
        .create_gateway(gateway_request("gw1", &pki), &admin())
        .await
        .expect("create");
    store
        .roll_key(Duration::from_secs(60), &admin())
        .await
        .expect("roll");
    store.close().await;
    let text = db.sqlite_text();
    assert!(
        text.contains("BEGIN CERTIFICATE"),
        "the file holds the certificates"
    );
    assert!(
        !text.contains("PRIVATE KEY"),
        "a PEM private key header is in clear"
    );
    let key_body = pki
        .server_key
        .lines()
        .find(|l| !l.starts_with("-----") && l.len() > 40)
        .expect("key line");
    assert!(!text.contains(key_body), "the gateway key is in clear");
}

#[tokio::test]
async fn another_master_key_is_refused() {
    let (store, db) = test_site(Kind::Sqlite).await;
    store.close().await;
    let (other, _) = MasterKey::generate().expect("key");
    let err = Store::open(&db.url, other).await.expect_err("wrong key");
    assert!(err.to_string().contains("not the master key"), "{err}");
}
