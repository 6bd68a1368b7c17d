//! Boundary groups, the location inputs and the client records in the store, on SQLite
//! and PostgreSQL: boundaries stored by their network, refusals of a bad boundary and of
//! a management point not on record, a client's first and latest location kept.

#[macro_use]
mod support;

use cmg_site::model::{BoundaryGroupSet, ClientView};
use serde_json::json;
use support::{admin, Kind};

async fn store_round_trip(kind: Kind) {
    let (store, _db) = support::test_site(kind).await;
    let set: BoundaryGroupSet = serde_json::from_value(json!({
        "boundaries": ["10.1.2.3/16", "10.9.0.10 - 10.9.0.99", "2001:db8::/48"],
    }))
    .expect("set");
    store
        .put_boundary_group(&set.named("a".into()), &admin())
        .await
        .expect("a");
    let bad: BoundaryGroupSet =
        serde_json::from_value(json!({"boundaries": ["10.0.0.0/33"]})).expect("set");
    let err = store
        .put_boundary_group(&bad.named("b".into()), &admin())
        .await
        .expect_err("bad");
    assert!(err.to_string().contains("10.0.0.0/33"), "{err}");
    let missing: BoundaryGroupSet =
        serde_json::from_value(json!({"management_points": ["1"]})).expect("set");
    assert!(store
        .put_boundary_group(&missing.named("c".into()), &admin())
        .await
        .is_err());
    let groups = store.boundary_groups().await.expect("groups");
    assert_eq!(
        groups[0].boundaries,
        vec!["10.1.0.0/16", "10.9.0.10-10.9.0.99", "2001:db8::/48"]
    );
    let inputs = store.location_inputs().await.expect("inputs");
    assert_eq!(inputs.groups.len(), 1);
    assert!(
        inputs.settings.enable_clients_to_use_cmg && inputs.settings.allow_cloud_distribution_point
    );
    let view = ClientView {
        id: "d1".into(),
        auth: "token".into(),
        via: "gateway".into(),
        addresses: vec!["10.1.0.1".into()],
        boundary_groups: vec!["a".into()],
        first_seen: 10,
        last_location_at: 10,
    };
    store.record_client(&view).await.expect("record");
    store
        .record_client(&ClientView {
            last_location_at: 20,
            via: "intranet".into(),
            ..view
        })
        .await
        .expect("again");
    let clients = store.clients(10).await.expect("clients");
    assert_eq!(
        (
            clients[0].first_seen,
            clients[0].last_location_at,
            clients[0].via.as_str()
        ),
        (10, 20, "intranet")
    );
}

both!(store_round_trip);
