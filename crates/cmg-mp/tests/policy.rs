//! Real policy at the reference management point: the assignment list with versions and
//! hashes from `[policy] dir`, the bodies, a changed body's new version, and the
//! benchmark's `size=N` download beside them. Without `[site]` the management point
//! lists itself for MPLIST.

mod support;

use cmg_proto::device::PolicyAssignments;
use http::StatusCode;
use support::{empty, request, sha256_hex, Mp};

#[tokio::test]
async fn assignments_and_bodies_with_hashes() {
    let policy = tempfile::tempdir().expect("policy dir");
    let dir = policy.path().to_owned();
    std::fs::write(dir.join("CMG-Baseline"), b"<Policy id='baseline'/>").expect("write");
    std::fs::write(dir.join("Inventory.1"), vec![7_u8; 100_000]).expect("write");
    let mp = Mp::start_with(|c| c.policy_dir = Some(dir.clone())).await;

    let list_path = "/CCM_Proxy_MutualAuth/72057594037927939/SMS_MP/.sms_pol?assignments";
    let (head, body) = mp.send(request("GET", list_path, empty())).await;
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(head.headers[http::header::CONTENT_TYPE], "application/json");
    let list: PolicyAssignments = serde_json::from_slice(&body).expect("listing");
    let ids: Vec<(&str, u64)> = list
        .assignments
        .iter()
        .map(|a| (a.id.as_str(), a.version))
        .collect();
    assert_eq!(ids, vec![("CMG-Baseline", 1), ("Inventory.1", 1)]);
    for a in &list.assignments {
        let (head, body) = mp
            .send(request(
                "GET",
                &format!("/SMS_MP/.sms_pol?{}", a.id),
                empty(),
            ))
            .await;
        assert_eq!(head.status, StatusCode::OK, "{}", a.id);
        assert_eq!(
            sha256_hex(&body),
            a.sha256,
            "{}: the body the listing hashed",
            a.id
        );
    }

    // A changed body is a new version; an unchanged one keeps its version.
    std::fs::write(dir.join("CMG-Baseline"), b"<Policy id='baseline' v='2'/>").expect("write");
    let (_, body) = mp.send(request("GET", list_path, empty())).await;
    let list: PolicyAssignments = serde_json::from_slice(&body).expect("listing");
    assert_eq!(
        list.assignments
            .iter()
            .map(|a| a.version)
            .collect::<Vec<_>>(),
        vec![2, 1]
    );

    // Unknown and unsafe IDs; the benchmark download still works.
    for q in ["missing", "..%2Fetc", "a%20b"] {
        let (head, _) = mp
            .send(request("GET", &format!("/SMS_MP/.sms_pol?{q}"), empty()))
            .await;
        assert_eq!(head.status, StatusCode::NOT_FOUND, "{q}");
    }
    let (head, body) = mp
        .send(request("GET", "/SMS_MP/.sms_pol?size=1000", empty()))
        .await;
    assert_eq!((head.status, body.len()), (StatusCode::OK, 1000));
    mp.stop().await;
}

#[tokio::test]
async fn without_a_policy_directory_there_is_no_policy() {
    let mp = Mp::start().await;
    let (head, _) = mp
        .send(request("GET", "/SMS_MP/.sms_pol?assignments", empty()))
        .await;
    assert_eq!(head.status, StatusCode::NOT_FOUND);
    let (head, body) = mp
        .send(request("GET", "/SMS_MP/.sms_aut?MPLIST", empty()))
        .await;
    assert_eq!(head.status, StatusCode::OK);
    let xml = String::from_utf8_lossy(&body);
    assert!(
        xml.starts_with("<MPList><MP Name=") && xml.matches("<MP ").count() == 1,
        "{xml}"
    );
    mp.stop().await;
}
