//! Each instance's channel addresses, set at the site, reach the signed bundle the
//! connection points follow; the list's length is the instance count, and counts that
//! disagree with it are refused.

#[macro_use]
mod support;

use cmg_site::model::GatewayModify;
use cmg_site::StoreError;
use support::{admin, gateway_pki, gateway_request, test_site, Kind};

fn lists(v: &[&[&str]]) -> Vec<Vec<String>> {
    v.iter()
        .map(|l| l.iter().map(|s| (*s).to_owned()).collect())
        .collect()
}

both!(instance_channels_reach_the_bundle);
async fn instance_channels_reach_the_bundle(kind: Kind) {
    let (store, _db) = test_site(kind).await;
    let pki = gateway_pki("cmg.contoso.test");
    store
        .create_gateway(gateway_request("gw1", &pki), &admin())
        .await
        .expect("create");
    assert!(store
        .bundle("gw1")
        .await
        .expect("bundle")
        .instances
        .is_empty());

    let three = lists(&[
        &["GW-1.corp.test:10140", "gw-1.corp.test:443"],
        &["gw-2.corp.test:10141"],
        &["10.0.0.3:10142"],
    ]);
    let changed = store
        .modify_gateway(
            "gw1",
            GatewayModify {
                instance_channels: Some(three),
                ..Default::default()
            },
            &admin(),
        )
        .await
        .expect("set the instances");
    let view = store.gateway("gw1").await.expect("view");
    assert_eq!(view.instances, 3, "the list sets the count");
    assert_eq!(
        view.instance_channels[0],
        ["gw-1.corp.test:10140", "gw-1.corp.test:443"]
    );
    let bundle = store.bundle("gw1").await.expect("bundle");
    assert_eq!(bundle.version, changed.settings_version);
    let names: Vec<&str> = bundle.instances.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["gw1-1", "gw1-2", "gw1-3"]);
    assert_eq!(bundle.instances[2].channel, ["10.0.0.3:10142"]);

    // A count that disagrees with the list is refused, alone or together with it.
    for req in [
        GatewayModify {
            instances: Some(2),
            ..Default::default()
        },
        GatewayModify {
            instances: Some(2),
            instance_channels: Some(lists(&[&["a:1"]])),
            ..Default::default()
        },
        GatewayModify {
            instance_channels: Some(lists(&[&["no-port"]])),
            ..Default::default()
        },
    ] {
        let err = store
            .modify_gateway("gw1", req, &admin())
            .await
            .expect_err("refused");
        assert!(matches!(err, StoreError::Invalid { .. }), "{err:?}");
    }
    assert_eq!(
        store.bundle("gw1").await.expect("bundle").instances.len(),
        3
    );

    // Cleared: the bundle lists none, the count stays.
    store
        .modify_gateway(
            "gw1",
            GatewayModify {
                instance_channels: Some(Vec::new()),
                ..Default::default()
            },
            &admin(),
        )
        .await
        .expect("clear");
    assert!(store
        .bundle("gw1")
        .await
        .expect("bundle")
        .instances
        .is_empty());
    assert_eq!(store.gateway("gw1").await.expect("view").instances, 3);
}
