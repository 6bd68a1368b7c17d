//! The location service published through the gateway like any role endpoint: a
//! deployed site, gateway instance and connection point, all real on loopback. A
//! certificate client (verified by the gateway, named to the site in the gateway's
//! identity header, believed because the connection point presents its own certificate
//! to the site) and a token client (the device token verified by the gateway and again
//! by the site) get signed answers that say they came through the gateway; "Enable
//! clients to use a CMG = No" makes the site refuse both, and the token service too.

#[allow(unused_macros)]
mod support;

use std::time::Duration;

use cmg_proto::device::{ClientAuth, LocationAnswer, LocationRequest, Via};
use cmg_proto::location::CandidateKind;
use cmg_proto::SiteCode;
use cmg_site::model::{ClientSettings, ClientView, GatewayModify};
use cmg_test_support::eventually;
use cmg_token::LocationVerifier;
use http::StatusCode;
use support::admin;
use support::deploy::{deploy, wait_version, Deployed, WAIT};

const ROLE: &str = "72057594037927939";

fn client(d: &Deployed, with_cert: bool) -> cmg_client::HttpsClient {
    let p = d.pki.dir.path();
    cmg_client::HttpsClient::new(
        &cmg_client::ClientTls {
            ca: vec![p.join("root-ca.pem")],
            identity: with_cert.then(|| (p.join("client.pem"), p.join("client.key"))),
        },
        d.gw_client,
        "cmg.contoso.test",
        true,
    )
    .expect("client")
}

async fn post(
    c: &cmg_client::HttpsClient,
    url: &str,
    bearer: Option<&str>,
    body: String,
) -> (StatusCode, String) {
    let mut req = http::Request::post(url).header(http::header::CONTENT_TYPE, "application/json");
    if let Some(t) = bearer {
        req = req.header(http::header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let req = req
        .body(http_body_util::Full::new(bytes::Bytes::from(body)))
        .expect("request");
    let resp = c.request(req).await.expect("through the gateway");
    let status = resp.status();
    let body = cmg_client::collect_body(resp).await.expect("body");
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn location_body() -> String {
    serde_json::to_string(&LocationRequest {
        site: SiteCode::new("PS1").expect("site"),
        addresses: vec!["192.168.1.20".parse().expect("ip")],
        want_content: None,
    })
    .expect("json")
}

async fn verify(d: &Deployed, signed: &str) -> LocationAnswer {
    let keys = d.store.public_keys_in_force().await.expect("keys");
    LocationVerifier::from_pem_file_text(&keys.concat(), SiteCode::new("PS1").expect("site"))
        .expect("verifier")
        .verify(signed)
        .expect("a verified answer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_location_service_through_the_gateway() {
    let d = deploy("enhanced_http").await;
    // The test PKI publishes no CRL: client certificates are checked without revocation.
    let change: GatewayModify =
        serde_json::from_value(serde_json::json!({"verify_revocation": false})).expect("modify");
    d.store
        .modify_gateway("gw1", change, &admin())
        .await
        .expect("modify");
    let v = d.store.settings_version("gw1").await.expect("version");
    wait_version(&d.gw, v).await;
    let location = format!("https://127.0.0.1:{}/api/v1/location", d.site_addr.port());
    eventually(format!("the connection point's mapping to {location}"))
        .within(WAIT)
        .every(Duration::from_millis(50))
        .until(
            || d.cp_mappings.list(),
            |list| list.iter().any(|(_, i)| *i == location),
        )
        .await;

    // A certificate client: MutualAuth.
    let cert_client = client(&d, true);
    let cert_url = format!("https://cmg.contoso.test/CCM_Proxy_MutualAuth/{ROLE}/CCM_Location");
    let (status, body) = post(&cert_client, &cert_url, None, location_body()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let a = verify(&d, &body).await;
    assert_eq!((a.auth, a.via), (ClientAuth::Certificate, Via::Gateway));
    assert!(
        a.client.starts_with("CN=") && a.client.contains("; sha256="),
        "{}",
        a.client
    );
    let internet: Vec<&str> = a
        .candidates_of(CandidateKind::Internet)
        .map(|c| c.url.as_str())
        .collect();
    assert_eq!(
        internet,
        vec![format!(
            "https://cmg.contoso.test/CCM_Proxy_MutualAuth/{ROLE}"
        )]
    );
    // Without a certificate the gateway refuses it (at the handshake or with a 4xx)
    // before the site sees it.
    let req = http::Request::post(cert_url.as_str())
        .body(http_body_util::Full::new(bytes::Bytes::from(
            location_body(),
        )))
        .expect("request");
    match client(&d, false).request(req).await {
        Err(_) => {}
        Ok(resp) => assert!(resp.status().is_client_error(), "{}", resp.status()),
    }

    // A token client: ServerAuth, with a device token.
    let device = d
        .store
        .signer()
        .await
        .expect("signer")
        .issue_device("device-9", Duration::from_secs(3600))
        .expect("device token")
        .token;
    let token_client = client(&d, false);
    let token_url = format!("https://cmg.contoso.test/CCM_Proxy_ServerAuth/{ROLE}/CCM_Location");
    let (status, body) = post(&token_client, &token_url, Some(&device), location_body()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let a = verify(&d, &body).await;
    assert_eq!(
        (a.client.as_str(), a.auth, a.via),
        ("device-9", ClientAuth::Token, Via::Gateway)
    );
    assert!(a
        .candidates_of(CandidateKind::Internet)
        .all(|c| c.url.contains("/CCM_Proxy_ServerAuth/")));

    // The site recorded both as having come through the gateway.
    let clients: Vec<ClientView> = d.store.clients(10).await.expect("clients");
    assert_eq!(clients.len(), 2);
    assert!(clients.iter().all(|c| c.via == "gateway"), "{clients:?}");

    // "Enable clients to use a CMG = No": the site refuses both, and the token service.
    d.store
        .set_client_settings(
            &ClientSettings {
                enable_clients_to_use_cmg: false,
                allow_cloud_distribution_point: true,
                policy_interval_minutes: 60,
            },
            &admin(),
        )
        .await
        .expect("settings");
    let (status, body) = post(&cert_client, &cert_url, None, location_body()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("cmg_disabled"), "{body}");
    let (status, body) = post(&token_client, &token_url, Some(&device), location_body()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("cmg_disabled"), "{body}");
    let sts = format!("https://cmg.contoso.test/CCM_Proxy_ServerAuth/{ROLE}/CCM_STS/token");
    let (status, body) = post(&token_client, &sts, Some(&device), String::new()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.contains("cmg_disabled"), "{body}");
}
