//! The location service through its real endpoint (a served site on loopback): the
//! client authenticates with a device token or a client certificate, the answer is
//! verified with the site's public keys as a client does, and its candidates follow
//! the boundary groups (current group, neighbour, site default; a group that
//! references a gateway; prefer cloud-based sources), the client settings ("use CMG =
//! No" for certificate and token clients) and ignore boundary groups for internet
//! use. Refusals: no credentials, a bulk token, another site, oversized and malformed
//! bodies, gateway headers from a non-connection point. The site records which groups
//! each client fell in (`GET /api/v1/clients`).

#[allow(unused_macros)]
mod support;

use std::time::Duration;

use cmg_proto::device::{CandidateList, ClientAuth, LocationAnswer, LocationRequest, Via};
use cmg_proto::location::{CandidateKind, Locality};
use cmg_proto::SiteCode;
use cmg_site::model::{BoundaryGroupSet, ClientSettings, ClientView, RoleCreate};
use cmg_test_support::eventually;
use cmg_token::LocationVerifier;
use http::{Method, StatusCode};
use serde_json::json;
use support::{admin, gateway_pki, gateway_request, spawn_site, GatewayPki, Kind, Site};

const PARIS_MP: &str = "72057594037927931";
const LYON_MP: &str = "72057594037927932";
const NICE_MP: &str = "72057594037927933";

/// A site with three management points (Paris and Lyon serve token clients through
/// the gateway, Nice is HTTP and intranet only), gateway `gw1`, and groups: `paris`
/// (Paris MP, neighbour `lyon`), `lyon` (Lyon MP), `cloud` (references `gw1`) and
/// `cloud-first` (references `gw1`, prefers cloud-based sources).
async fn site_with_groups() -> (Site, GatewayPki) {
    let site = spawn_site(Kind::Sqlite).await;
    let pki = gateway_pki("cmg.contoso.test");
    let store = &site.store;
    store
        .create_gateway(gateway_request("gw1", &pki), &admin())
        .await
        .expect("gateway");
    for (id, url, mode, via_gw) in [
        (
            PARIS_MP,
            "https://mp-paris.corp.test",
            "enhanced_http",
            true,
        ),
        (LYON_MP, "https://mp-lyon.corp.test", "https", true),
        (NICE_MP, "http://mp-nice.corp.test", "http", false),
    ] {
        let role: RoleCreate = serde_json::from_value(json!({
            "role_id": id, "kind": "management_point", "internal_url": url,
            "mode": mode, "allow_gateway_traffic": via_gw,
        }))
        .expect("role");
        store.create_role(role, &admin()).await.expect("role");
    }
    let groups = [
        (
            "lyon",
            json!({"boundaries": ["10.2.0.0/16"], "management_points": [LYON_MP]}),
        ),
        (
            "paris",
            json!({"boundaries": ["10.1.0.0/16", "2001:db8:1::/48"],
            "management_points": [PARIS_MP], "neighbours": [{"group": "lyon"}]}),
        ),
        (
            "cloud",
            json!({"boundaries": ["10.9.0.10-10.9.0.99"], "gateways": ["gw1"]}),
        ),
        (
            "cloud-first",
            json!({"boundaries": ["10.8.0.0/16"], "gateways": ["gw1"],
            "prefer_cloud": true}),
        ),
    ];
    for (name, body) in groups {
        let set: BoundaryGroupSet = serde_json::from_value(body).expect("group");
        store
            .put_boundary_group(&set.named(name.into()), &admin())
            .await
            .expect("put group");
    }
    (site, pki)
}

fn verifier(keys: &[String]) -> LocationVerifier {
    LocationVerifier::from_pem_file_text(&keys.concat(), SiteCode::new("PS1").expect("site"))
        .expect("verifier")
}

fn request(addresses: &[&str]) -> LocationRequest {
    LocationRequest {
        site: SiteCode::new("PS1").expect("site"),
        addresses: addresses.iter().map(|a| a.parse().expect("ip")).collect(),
        want_content: None,
    }
}

async fn device_token(site: &Site, device: &str) -> String {
    site.store
        .signer()
        .await
        .expect("signer")
        .issue_device(device, Duration::from_secs(3600))
        .expect("device token")
        .token
}

fn cert_client(site: &Site, pki: &GatewayPki) -> cmg_site::client::SiteClient {
    let read = |f: &str| std::fs::read_to_string(pki.dir.path().join(f)).expect(f);
    site.with_cert(&read("client.pem"), &read("client.key"))
}

/// Asks and verifies, as a client does.
async fn locate(
    site: &Site,
    client: &cmg_site::client::SiteClient,
    req: &LocationRequest,
) -> LocationAnswer {
    let reply = client
        .send(Method::POST, "/api/v1/location", req)
        .await
        .expect("location request");
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    assert_eq!(
        reply.headers[http::header::CONTENT_TYPE],
        "application/jose"
    );
    let keys = site.store.public_keys_in_force().await.expect("keys");
    verifier(&keys)
        .verify(&reply.text())
        .expect("a verified answer")
}

fn order(a: &LocationAnswer, kind: CandidateKind) -> Vec<(&str, Locality)> {
    a.candidates_of(kind)
        .map(|c| (c.name.as_str(), c.locality))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn current_group_then_neighbour_then_site_default() {
    let (site, _pki) = site_with_groups().await;
    let token = device_token(&site, "dev-paris").await;
    let a = locate(&site, &site.with_token(&token), &request(&["10.1.4.5"])).await;
    assert_eq!(
        (a.client.as_str(), a.auth, a.via),
        ("dev-paris", ClientAuth::Token, Via::Intranet)
    );
    assert_eq!(a.boundary_groups, vec!["paris"]);
    assert_eq!(
        order(&a, CandidateKind::Intranet),
        vec![
            (PARIS_MP, Locality::CurrentGroup),
            (LYON_MP, Locality::Neighbour),
            (NICE_MP, Locality::SiteDefault),
        ]
    );
    let paris = a
        .candidates_of(CandidateKind::Intranet)
        .next()
        .expect("first");
    assert_eq!(paris.url, "https://mp-paris.corp.test");
    // Token client: the gateway URLs are CCM_Proxy_ServerAuth, for the two management
    // points that serve token clients through the gateway (Nice is HTTP, intranet only).
    let internet: Vec<&str> = a
        .candidates_of(CandidateKind::Internet)
        .map(|c| c.url.as_str())
        .collect();
    assert_eq!(
        internet,
        vec![
            format!("https://cmg.contoso.test/CCM_Proxy_ServerAuth/{PARIS_MP}"),
            format!("https://cmg.contoso.test/CCM_Proxy_ServerAuth/{LYON_MP}"),
        ]
    );
    assert_eq!(
        (
            a.client_settings.enable_cmg,
            a.client_settings.allow_cloud_dp,
            a.client_settings.policy_interval_secs
        ),
        (true, true, 3600)
    );
    assert!(a.content.is_none(), "not asked for");
    assert!(!a.site_keys_pem.is_empty());

    // The IPv6 prefix places a client too; one in no group gets the whole list.
    let a = locate(
        &site,
        &site.with_token(&token),
        &request(&["2001:db8:1:7::9"]),
    )
    .await;
    assert_eq!(a.boundary_groups, vec!["paris"]);
    let a = locate(&site, &site.with_token(&token), &request(&["192.168.1.9"])).await;
    assert!(a.boundary_groups.is_empty());
    assert!(a
        .candidates_of(CandidateKind::Intranet)
        .all(|c| c.locality == Locality::SiteDefault));
    assert_eq!(a.candidates_of(CandidateKind::Intranet).count(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_that_references_the_gateway_and_prefer_cloud() {
    let (site, pki) = site_with_groups().await;
    let client = cert_client(&site, &pki);
    // In range 10.9.0.10-99: the gateway is the intranet fallback, after every MP.
    let a = locate(&site, &client, &request(&["10.9.0.50"])).await;
    assert_eq!((a.auth, a.via), (ClientAuth::Certificate, Via::Intranet));
    assert!(
        a.client.starts_with("CN=") && a.client.contains("; sha256="),
        "{}",
        a.client
    );
    assert_eq!(a.boundary_groups, vec!["cloud"]);
    // The intranet list, as the answer tags it.
    let intranet: Vec<&cmg_proto::device::LocationCandidate> =
        a.candidates_in(CandidateList::Intranet).collect();
    assert!(a
        .candidates
        .iter()
        .all(|c| c.list.is_some() && a.format == cmg_proto::device::LOCATION_FORMAT));
    let last = intranet.last().expect("candidates");
    assert_eq!(
        (last.kind, last.name.as_str(), last.locality),
        (CandidateKind::Internet, "gw1", Locality::CurrentGroup)
    );
    assert!(
        last.url.contains("/CCM_Proxy_MutualAuth/"),
        "a certificate client gets the MutualAuth URL: {}",
        last.url
    );
    // Out of the range: not in the group.
    let a = locate(&site, &client, &request(&["10.9.0.5"])).await;
    assert!(a.boundary_groups.is_empty());

    // Prefer cloud-based sources: the gateway first.
    let a = locate(&site, &client, &request(&["10.8.3.3"])).await;
    assert_eq!(a.boundary_groups, vec!["cloud-first"]);
    assert_eq!(
        (a.candidates[0].kind, a.candidates[0].locality),
        (CandidateKind::Internet, Locality::CurrentGroup)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internet_candidates_ignore_boundary_groups() {
    let (site, pki) = site_with_groups().await;
    let client = cert_client(&site, &pki);
    let mut seen = Vec::new();
    for addr in ["10.1.4.5", "10.9.0.50", "10.8.0.1", "192.168.1.9"] {
        let a = locate(&site, &client, &request(&[addr])).await;
        let internet: Vec<(String, String, Locality)> = a
            .candidates_in(CandidateList::Internet)
            .map(|c| (c.name.clone(), c.url.clone(), c.locality))
            .collect();
        assert_eq!(internet.len(), 2, "{addr}: every gateway MP");
        seen.push(internet);
    }
    assert!(seen.windows(2).all(|w| w[0] == w[1]), "{seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn use_cmg_no_keeps_certificate_and_token_clients_off_the_gateway() {
    let (site, pki) = site_with_groups().await;
    let settings = ClientSettings {
        enable_clients_to_use_cmg: false,
        allow_cloud_distribution_point: true,
        policy_interval_minutes: 15,
    };
    site.store
        .set_client_settings(&settings, &admin())
        .await
        .expect("settings");
    let token = device_token(&site, "dev-1").await;
    let mut want = request(&["10.9.0.50"]);
    want.want_content = Some("pkg/PS100001/app.msi".into());
    for client in [site.with_token(&token), cert_client(&site, &pki)] {
        let a = locate(&site, &client, &want).await;
        assert!(
            a.candidates
                .iter()
                .all(|c| c.kind == CandidateKind::Intranet),
            "no gateway at all, not even the group's: {:?}",
            a.candidates
        );
        assert_eq!(a.candidates.len(), 3);
        assert!(!a.client_settings.enable_cmg);
        assert_eq!(a.client_settings.policy_interval_secs, 900);
        assert_eq!(
            a.content.as_deref(),
            Some(&[][..]),
            "no cloud content location"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_locations_on_request() {
    let (site, pki) = site_with_groups().await;
    let mut want = request(&["10.9.0.50"]);
    want.want_content = Some("pkg/PS100001/app.msi".into());
    let a = locate(&site, &cert_client(&site, &pki), &want).await;
    let content = a.content.expect("asked for content");
    assert_eq!(content.len(), 1);
    assert_eq!(
        content[0].url,
        "https://cmg.contoso.test/CCM_Proxy_MutualAuth/CMG_Content/pkg/PS100001/app.msi"
    );
    assert_eq!(
        content[0].locality,
        Locality::CurrentGroup,
        "the group references gw1"
    );
    let token = device_token(&site, "dev-1").await;
    let a = locate(&site, &site.with_token(&token), &want).await;
    assert!(a.content.expect("content")[0]
        .url
        .contains("/CCM_Proxy_ServerAuth/CMG_Content/"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals() {
    let (site, _pki) = site_with_groups().await;
    let post = |c: &cmg_site::client::SiteClient, body: serde_json::Value| {
        let c = c.clone();
        async move {
            c.call(Method::POST, "/api/v1/location", Some(&body))
                .await
                .expect("request")
        }
    };
    let body = json!({"site": "PS1", "addresses": ["10.1.0.1"]});
    let r = post(&site.anonymous(), body.clone()).await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (
            StatusCode::UNAUTHORIZED,
            Some("client_credentials_required")
        )
    );

    let bulk = site
        .store
        .new_token(Some(60), &admin())
        .await
        .expect("bulk");
    let r = post(&site.with_token(&bulk.token), body.clone()).await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("device_token_required"))
    );
    let r = post(&site.with_token("not.a.token"), body.clone()).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    let token = device_token(&site, "dev-1").await;
    let client = site.with_token(&token);
    let r = post(&client, json!({"site": "XYZ", "addresses": []})).await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (StatusCode::CONFLICT, Some("other_site"))
    );
    let many: Vec<String> = (0..65).map(|i| format!("10.0.0.{i}")).collect();
    let r = post(&client, json!({"site": "PS1", "addresses": many})).await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("too_many_addresses"))
    );
    let r = post(
        &client,
        json!({"site": "PS1", "addresses": ["10.0.0.1"], "device": "x"}),
    )
    .await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_json"))
    );
    let big = json!({"site": "PS1", "addresses": [], "want_content": "a".repeat(20_000)});
    let r = post(&client, big).await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("body_too_large"))
    );
    let r = post(
        &client,
        json!({"site": "PS1", "addresses": [], "want_content": "../etc"}),
    )
    .await;
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_content_id"))
    );

    // Posing as the gateway from the intranet.
    let r = client
        .raw(
            Method::POST,
            "/api/v1/location",
            Some("application/json"),
            body.to_string().into_bytes(),
        )
        .await
        .expect("raw");
    assert_eq!(r.status, StatusCode::OK, "the plain request works");
    let forged = forged_gateway_request(&site, &body).await;
    assert_eq!(forged, StatusCode::FORBIDDEN);
}

/// A request carrying the gateway's `cmg-client-auth` header, sent by an intranet
/// caller (a plain TLS client that trusts the site CA).
async fn forged_gateway_request(site: &Site, body: &serde_json::Value) -> StatusCode {
    use http_body_util::{BodyExt as _, Full};
    let mut roots = rustls::RootCertStore::empty();
    for c in cmg_pki::pem::parse_certs(&site.ca).expect("ca") {
        roots.add(c).expect("root");
    }
    let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .build();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, Full<bytes::Bytes>>(https);
    let req = http::Request::post(format!("{}/api/v1/location", site.url))
        .header("content-type", "application/json")
        .header("cmg-client-auth", "certificate")
        .header("cmg-client-identity", "subject=\"CN=admin\"; sha256=00")
        .body(Full::new(bytes::Bytes::from(body.to_string())))
        .expect("request");
    let resp = client.request(req).await.expect("answer");
    let status = resp.status();
    let _ = resp.into_body().collect().await;
    status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_site_records_which_group_each_client_fell_in() {
    let (site, pki) = site_with_groups().await;
    let token = device_token(&site, "dev-lyon").await;
    locate(&site, &site.with_token(&token), &request(&["10.2.0.7"])).await;
    locate(
        &site,
        &cert_client(&site, &pki),
        &request(&["10.9.0.50", "fe80::1"]),
    )
    .await;
    let reply = site
        .admin()
        .call(Method::GET, "/api/v1/clients", None)
        .await
        .expect("clients");
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let clients: Vec<ClientView> = reply.parse().expect("client views");
    assert_eq!(clients.len(), 2);
    let lyon = clients
        .iter()
        .find(|c| c.id == "dev-lyon")
        .expect("token client");
    assert_eq!(
        (
            lyon.auth.as_str(),
            lyon.via.as_str(),
            &lyon.boundary_groups,
            &lyon.addresses
        ),
        (
            "token",
            "intranet",
            &vec!["lyon".to_owned()],
            &vec!["10.2.0.7".to_owned()]
        )
    );
    let cert = clients
        .iter()
        .find(|c| c.auth == "certificate")
        .expect("cert client");
    assert_eq!(cert.boundary_groups, vec!["cloud"]);
    // A later request moves it.
    locate(&site, &site.with_token(&token), &request(&["10.1.0.7"])).await;
    let clients: Vec<ClientView> = site
        .admin()
        .call(Method::GET, "/api/v1/clients?limit=5", None)
        .await
        .expect("clients")
        .parse()
        .expect("views");
    let lyon = clients
        .iter()
        .find(|c| c.id == "dev-lyon")
        .expect("token client");
    assert_eq!(
        lyon.boundary_groups,
        vec!["paris"],
        "moved by its last request"
    );
    let anon = site
        .anonymous()
        .call(Method::GET, "/api/v1/clients", None)
        .await
        .expect("anon");
    assert_eq!(anon.status, StatusCode::UNAUTHORIZED, "admin only");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_clients_register_on_the_intranet_for_a_device_token() {
    let (site, pki) = site_with_groups().await;
    let reply = cert_client(&site, &pki)
        .send(
            Method::POST,
            "/api/v1/sts/register",
            &json!({"device_id": "laptop-7"}),
        )
        .await
        .expect("register");
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let token = reply.json()["token"].as_str().expect("token").to_owned();
    let a = locate(&site, &site.with_token(&token), &request(&["10.1.0.1"])).await;
    assert_eq!((a.client.as_str(), a.auth), ("laptop-7", ClientAuth::Token));
    let anon = site
        .anonymous()
        .send(
            Method::POST,
            "/api/v1/sts/register",
            &json!({"device_id": "x"}),
        )
        .await
        .expect("anon");
    assert_eq!(anon.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_added_later_makes_its_clients_known_to_the_listener() {
    let site = spawn_site(Kind::Sqlite).await;
    let pki = gateway_pki("cmg.later.test");
    let client = cert_client(&site, &pki);
    let refused = client
        .send(Method::POST, "/api/v1/location", &request(&["10.1.0.1"]))
        .await;
    assert!(
        refused.is_err()
            || refused
                .as_ref()
                .is_ok_and(|r| r.status == StatusCode::UNAUTHORIZED),
        "no gateway trusts this client's root yet: {refused:?}"
    );
    site.store
        .create_gateway(gateway_request("gw1", &pki), &admin())
        .await
        .expect("gateway");
    let client = &client;
    eventually("the site's listener to trust the new gateway's client root")
        .until_async(
            || async move {
                client
                    .send(Method::POST, "/api/v1/location", &request(&["10.1.0.1"]))
                    .await
                    .map(|r| r.status)
                    .ok()
            },
            |s| *s == Some(StatusCode::OK),
        )
        .await
        .expect("trusted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_management_point_list_from_site_data() {
    let (site, _pki) = site_with_groups().await;
    let reply = site
        .anonymous()
        .call(Method::GET, "/api/v1/management-points", None)
        .await
        .expect("list");
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let list: cmg_proto::device::ManagementPointList = reply.parse().expect("list");
    assert_eq!(list.site.as_str(), "PS1");
    let intranet: Vec<(&str, &str)> = list
        .intranet
        .iter()
        .map(|m| (m.name.as_str(), m.fqdn.as_str()))
        .collect();
    assert_eq!(
        intranet,
        vec![
            (PARIS_MP, "mp-paris.corp.test"),
            (LYON_MP, "mp-lyon.corp.test"),
            (NICE_MP, "mp-nice.corp.test"),
        ]
    );
    let internet: Vec<&str> = list.internet.iter().map(|m| m.fqdn.as_str()).collect();
    assert_eq!(
        internet,
        vec![
            format!("cmg.contoso.test/CCM_Proxy_MutualAuth/{PARIS_MP}"),
            format!("cmg.contoso.test/CCM_Proxy_MutualAuth/{LYON_MP}"),
        ],
        "the internet MP names of seed 000; Nice does not allow gateway traffic"
    );
}

/// The reference management point answers MPLIST from this list: it reads it from the
/// site (`[site]`) and keeps it current.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_management_point_answers_mplist_from_site_data() {
    let (site, _pki) = site_with_groups().await;
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("site-ca.pem"), &site.ca).expect("site ca");
    let config = cmg_mp::Config::from_toml(
        &dir.path().join("mp.toml"),
        &format!(
            "listen = '127.0.0.1:0'\ndata_dir = 'mp'\n[site]\nurl = '{}'\nca = ['site-ca.pem']\nrefresh = '1s'\n",
            site.url
        ),
    )
    .expect("mp config");
    let mp = cmg_mp::bind(config).await.expect("bind mp");
    let addr = mp.local_addr();
    let stop = cmg_core::Shutdown::new();
    let task = tokio::spawn(mp.run(stop.clone()));
    let get = |path: &'static str| async move {
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let req =
            format!("GET {path} HTTP/1.1\r\nHost: mp-paris.corp.test\r\nConnection: close\r\n\r\n");
        stream.write_all(req.as_bytes()).await.expect("write");
        let mut out = String::new();
        stream.read_to_string(&mut out).await.expect("read");
        out
    };
    let intranet = eventually("the management point to list the site's management points")
        .until_async(
            || get("/SMS_MP/.sms_aut?MPLIST"),
            |body| body.contains("mp-lyon.corp.test"),
        )
        .await;
    for host in [
        "mp-paris.corp.test",
        "mp-lyon.corp.test",
        "mp-nice.corp.test",
    ] {
        assert!(intranet.contains(&format!("FQDN=\"{host}\"")), "{intranet}");
    }
    assert!(intranet.contains("SiteCode=\"PS1\""), "{intranet}");
    let internet = get("/CCM_Proxy_MutualAuth/72057594037927931/SMS_MP/.sms_aut?MPLIST2&PS1").await;
    assert!(
        internet.contains(&format!(
            "FQDN=\"cmg.contoso.test/CCM_Proxy_MutualAuth/{PARIS_MP}\""
        )),
        "{internet}"
    );
    assert!(!internet.contains("mp-nice"), "{internet}");
    // A change at the site reaches the list.
    let role: RoleCreate = serde_json::from_value(json!({
        "role_id": "72057594037927934", "kind": "management_point",
        "internal_url": "https://mp-lille.corp.test", "mode": "https", "allow_gateway_traffic": false,
    }))
    .expect("role");
    site.store.create_role(role, &admin()).await.expect("role");
    eventually("the management point to list the new management point")
        .until_async(
            || get("/SMS_MP/.sms_aut?MPLIST"),
            |body| body.contains("mp-lille.corp.test"),
        )
        .await;
    stop.token.cancel();
    task.await.expect("mp stopped");
}
