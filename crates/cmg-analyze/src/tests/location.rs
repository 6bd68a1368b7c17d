//! The location step's decisions: where the request goes (or why the service is not
//! published) and what a signed answer, or a refusal, says.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cmg_proto::device::{
    CandidateList, ClientAuth, ClientSettingsInForce, LocationAnswer, LocationCandidate, Via,
    LOCATION_FORMAT,
};
use cmg_proto::location::{CandidateKind, Locality};
use cmg_proto::settings::SettingsBundle;
use cmg_proto::SiteCode;
use cmg_token::{SiteGuid, SiteSigner};

use super::answer;
use crate::*;

const MP: &str = "72057594037927939";

fn signer() -> SiteSigner {
    let guid: SiteGuid = "6f1c3a7e-0b5d-4c2a-9e8f-1a2b3c4d5e6f"
        .parse()
        .expect("guid");
    let key = cmg_token::site::generate_key_pem().expect("key");
    SiteSigner::from_pem(key.as_bytes(), &guid).expect("signer")
}

/// A bundle for site TST, service cmg.test, with the site keys `keys` and these
/// published prefixes.
fn bundle(keys: Vec<String>, published: &[&str]) -> SettingsBundle {
    let published: Vec<serde_json::Value> = published
        .iter()
        .map(|p| serde_json::json!({"prefix": p, "auth": "mutual_auth", "max_body": 16384}))
        .collect();
    serde_json::from_value(serde_json::json!({
        "format": 1, "site": "TST", "site_guid": "6f1c3a7e-0b5d-4c2a-9e8f-1a2b3c4d5e6f",
        "gateway": "g", "version": 1, "issued_at": 1, "service_name": "cmg.test",
        "published": published,
        "client_auth": {"trusted_roots_pem": [], "intermediates_pem": [], "verify_revocation": false},
        "tls": {"min_version": "1.2"},
        "tokens": {"oidc": [], "site_keys_pem": keys, "blocked_token_ids": []},
        "content": {"enabled": false}
    }))
    .expect("bundle")
}

fn mp(serves_tokens: bool) -> Role {
    Role {
        id: MP.into(),
        kind: RoleKind::ManagementPoint,
        serves_tokens,
    }
}

fn mutual() -> String {
    format!("/CCM_Proxy_MutualAuth/{MP}/CCM_Location")
}

#[test]
fn where_the_location_request_goes() {
    let b = bundle(Vec::new(), &[&mutual()]);
    assert_eq!(
        location_route(&b, &[mp(false)], false),
        Ok(LocationRoute { path: mutual() })
    );
    // No management point allows gateway traffic: a warning, nothing sent.
    let sup = Role {
        id: "1".into(),
        kind: RoleKind::SoftwareUpdatePoint,
        serves_tokens: true,
    };
    let none = location_route(&b, &[sup], false).expect_err("no management point");
    assert_eq!(none.status, Status::Warn, "{none:?}");
    assert!(none.detail.contains("not published"), "{none:?}");
    assert!(none.remedy.contains("allow-gateway-traffic"), "{none:?}");
    // A token client and only an HTTP management point.
    let http = location_route(&b, &[mp(false)], true).expect_err("HTTP only");
    assert_eq!(http.status, Status::Warn, "{http:?}");
    assert!(http.remedy.contains("Enhanced HTTP"), "{http:?}");
    // Settings that publish no CCM_Location (from an older site).
    let old = bundle(Vec::new(), &[&format!("/CCM_Proxy_MutualAuth/{MP}/SMS_MP")]);
    let unpublished = location_route(&old, &[mp(true)], false).expect_err("not published");
    assert_eq!(unpublished.status, Status::Warn, "{unpublished:?}");
    assert!(
        unpublished.detail.contains("CCM_Location"),
        "{unpublished:?}"
    );
    // A token client's own prefix.
    let token = format!("/CCM_Proxy_ServerAuth/{MP}/CCM_Location");
    let both = bundle(Vec::new(), &[&mutual(), &token]);
    assert_eq!(
        location_route(&both, &[mp(true)], true),
        Ok(LocationRoute { path: token })
    );
    assert_eq!(location_request(&b).site.as_str(), "TST");
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("time")
        .as_secs()
}

fn located(site: &str, enable_cmg: bool, via: Via, internet: &[&str]) -> LocationAnswer {
    LocationAnswer {
        format: LOCATION_FORMAT,
        site: SiteCode::new(site).expect("site"),
        issued_at: now(),
        expires_at: now() + 3600,
        client: "CN=client.contoso.test; sha256=ab".into(),
        auth: ClientAuth::Certificate,
        via,
        boundary_groups: Vec::new(),
        candidates: internet
            .iter()
            .map(|u| LocationCandidate {
                list: Some(CandidateList::Internet),
                kind: CandidateKind::Internet,
                name: "g".into(),
                url: (*u).into(),
                locality: Locality::SiteDefault,
                auth: ClientAuth::Certificate,
            })
            .collect(),
        client_settings: ClientSettingsInForce {
            enable_cmg,
            allow_cloud_dp: false,
            policy_interval_secs: 3600,
        },
        content: None,
        site_keys_pem: Vec::new(),
    }
}

#[test]
fn a_signed_answer_is_verified_and_read() {
    let s = signer();
    let b = bundle(vec![s.public_key_pem()], &[&mutual()]);
    let ours = format!("https://cmg.test/CCM_Proxy_MutualAuth/{MP}");
    let judge = |a: &LocationAnswer, b: &SettingsBundle| {
        let signed = s.sign_location(a).expect("sign");
        location_step("l", answer(200, &[], &signed), b, false, SystemTime::now())
    };
    let ok = judge(&located("TST", true, Via::Gateway, &[&ours]), &b);
    assert_eq!(ok.status, Status::Pass, "{ok:?}");
    assert!(ok.detail.contains("use CMG: yes"), "{ok:?}");
    assert!(ok.detail.contains(&ours), "{ok:?}");
    assert!(ok.detail.contains("via gateway"), "{ok:?}");

    // Clients kept off the gateway (an answer that still came through).
    let off = judge(&located("TST", false, Via::Gateway, &[]), &b);
    assert_eq!(off.status, Status::Fail, "{off:?}");
    assert!(off.detail.contains("use CMG: no"), "{off:?}");
    assert!(off.remedy.contains("--enable-cmg true"), "{off:?}");

    // No management point on this gateway in the answer.
    let elsewhere = judge(
        &located("TST", true, Via::Gateway, &["https://other.test/x/1"]),
        &b,
    );
    assert_eq!(elsewhere.status, Status::Warn, "{elsewhere:?}");

    // Another site's answer, and one signed with a key the gateway does not hold.
    let other = judge(&located("OTH", true, Via::Gateway, &[&ours]), &b);
    assert_eq!(other.status, Status::Fail, "{other:?}");
    assert!(other.detail.contains("other_site"), "{other:?}");
    let stranger = bundle(vec![signer().public_key_pem()], &[&mutual()]);
    let forged = judge(&located("TST", true, Via::Gateway, &[&ours]), &stranger);
    assert_eq!(forged.status, Status::Fail, "{forged:?}");
    assert!(forged.detail.contains("does not verify"), "{forged:?}");
    assert!(forged.remedy.contains("[site_api]"), "{forged:?}");

    // An expired answer.
    let signed = s
        .sign_location(&located("TST", true, Via::Gateway, &[&ours]))
        .expect("sign");
    let later = SystemTime::now() + Duration::from_secs(30 * 86_400);
    let expired = location_step("l", answer(200, &[], &signed), &b, false, later);
    assert_eq!(expired.status, Status::Fail, "{expired:?}");
    assert!(expired.detail.contains("expired"), "{expired:?}");

    // Something that is not a signed answer.
    let junk = location_step(
        "l",
        answer(200, &[], "<html/>"),
        &b,
        false,
        SystemTime::now(),
    );
    assert_eq!(junk.status, Status::Fail, "{junk:?}");
}

#[test]
fn refusals_name_who_refused() {
    let b = bundle(vec![signer().public_key_pem()], &[&mutual()]);
    let step = |got| location_step("l", got, &b, false, SystemTime::now());
    let disabled = step(answer(
        403,
        &[],
        r#"{"error":"cmg_disabled","message":"clients may not use a cloud management gateway"}"#,
    ));
    assert_eq!(disabled.status, Status::Fail, "{disabled:?}");
    assert!(disabled.detail.contains("off the gateway"), "{disabled:?}");
    assert!(
        disabled.remedy.contains("--enable-cmg true"),
        "{disabled:?}"
    );
    let unpublished = step(answer(404, &[], "404 Not Found: url_not_published\n"));
    assert_eq!(unpublished.status, Status::Warn, "{unpublished:?}");
    let cp = step(answer(
        502,
        &[("cmg-error", "CMGConnector_RoleUnreachable")],
        "",
    ));
    assert_eq!(cp.status, Status::Fail, "{cp:?}");
    assert!(cp.detail.contains("connection point refused"), "{cp:?}");
    let bulk = step(answer(
        401,
        &[],
        r#"{"error":"wrong_token_type","message":"a bulk token"}"#,
    ));
    assert_eq!(bulk.status, Status::Fail, "{bulk:?}");
    assert!(bulk.remedy.contains("device token"), "{bulk:?}");
    let gone = step(Err(NetError::Timeout(Duration::from_secs(10))));
    assert_eq!(gone.status, Status::Fail, "{gone:?}");
    assert!(gone.remedy.contains("client port is open"), "{gone:?}");
    // A revoked certificate: the handshake is refused, the remedy points at the
    // certificate steps, not at the network.
    let revoked = step(Err(NetError::Http(
        "connection error: received fatal alert: CertificateRevoked".into(),
    )));
    assert_eq!(revoked.status, Status::Fail, "{revoked:?}");
    assert!(
        revoked.remedy.contains("client certificate steps"),
        "{revoked:?}"
    );
    // Without a site key in the settings nothing can be verified.
    let keyless = bundle(Vec::new(), &[&mutual()]);
    let s = location_step(
        "l",
        answer(200, &[], "a.b.c"),
        &keyless,
        false,
        SystemTime::now(),
    );
    assert_eq!(s.status, Status::Fail, "{s:?}");
    assert!(s.detail.contains("no site key"), "{s:?}");
}
