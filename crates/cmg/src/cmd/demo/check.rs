//! The demo's self-check: real requests through every gateway instance, over HTTP/1.1
//! and HTTP/2, until every connection point has served one; then the refusals a
//! production gateway must make. Each check says what it expected and what it got.

use std::collections::BTreeSet;

use bytes::Bytes;
use cmg_client::{collect_body, HttpsClient};
use cmg_cluster::clients::Cert;
use cmg_cluster::spec::{external_prefix, token_prefix};
use cmg_cluster::Cluster;
use cmg_proto::headers;
use http::{Method, Request, StatusCode};
use http_body_util::Full;

/// One check's outcome.
#[derive(Debug)]
pub struct Check {
    name: String,
    ok: bool,
    detail: String,
}

/// Every check of a run.
#[derive(Debug, Default)]
pub struct Report {
    checks: Vec<Check>,
}

impl Report {
    pub(super) fn add(&mut self, name: impl Into<String>, ok: bool, detail: impl Into<String>) {
        self.checks.push(Check {
            name: name.into(),
            ok,
            detail: detail.into(),
        });
    }
    pub fn passed(&self) -> bool {
        !self.checks.is_empty() && self.checks.iter().all(|c| c.ok)
    }
    pub fn print(&self) {
        for c in &self.checks {
            println!(
                "  [{}] {:<52} {}",
                if c.ok { " ok " } else { "FAIL" },
                c.name,
                c.detail
            );
        }
        let failed = self.checks.iter().filter(|c| !c.ok).count();
        println!();
        println!(
            "cmg demo: {} checks, {} passed, {} failed",
            self.checks.len(),
            self.checks.len() - failed,
            failed
        );
    }
}

fn header(resp: &http::Response<hyper::body::Incoming>, name: &http::HeaderName) -> String {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string()
}

pub(super) struct Echo {
    pub(super) status: StatusCode,
    pub(super) instance: String,
    connection_point: String,
    body: Bytes,
}

async fn ccm_post(client: &HttpsClient, body: Bytes) -> Result<Echo, String> {
    let url = format!("{}/request", external_prefix("CCM_System"));
    ccm_post_to(client, &url, body).await
}

/// `CCM_POST` to `url`: status, the route headers and the body.
pub(super) async fn ccm_post_to(
    client: &HttpsClient,
    url: &str,
    body: Bytes,
) -> Result<Echo, String> {
    let req = Request::builder()
        .method(Method::from_bytes(b"CCM_POST").expect("valid method"))
        .uri(url)
        .body(Full::new(body))
        .map_err(|e| e.to_string())?;
    let resp = client.request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let instance = header(&resp, &headers::GATEWAY_INSTANCE);
    let connection_point = header(&resp, &headers::CONNECTION_POINT);
    let body = collect_body(resp).await.map_err(|e| e.to_string())?;
    Ok(Echo {
        status,
        instance,
        connection_point,
        body,
    })
}

async fn status_of(
    client: &HttpsClient,
    method: Method,
    path: &str,
    body: Bytes,
) -> Result<StatusCode, String> {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .body(Full::new(body))
        .map_err(|e| e.to_string())?;
    let resp = client.request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let _ = collect_body(resp).await;
    Ok(status)
}

/// Runs every check against `cluster`; the site's checks when it runs one.
pub async fn run(cluster: &Cluster) -> Report {
    let mut report = Report::default();
    let ccm_system = through_every_path(cluster, &mut report).await;
    token_client(cluster, &mut report).await;
    refusals(cluster, &mut report).await;
    if cluster.site.is_some() {
        super::site_check::run(cluster, ccm_system, &mut report).await;
    }
    report
}

/// The token client: no certificate, a site-issued device token on the
/// `CCM_Proxy_ServerAuth` URL; then the same request without a token, and with a
/// tampered one.
async fn token_client(cluster: &Cluster, report: &mut Report) {
    let client = match cluster.client(0, Cert::None, true) {
        Ok(c) => c,
        Err(e) => {
            report.add("token client", false, e.to_string());
            return;
        }
    };
    let path = format!("{}/request", token_prefix("ccm_system_tokenauth"));
    let token = &cluster.tokens.device_token;
    let tampered = format!("{token}x");
    for (name, bearer, want) in [
        (
            "CCM_POST with a device token (no certificate)",
            Some(token.as_str()),
            StatusCode::OK,
        ),
        (
            "token URL without a token refused",
            None,
            StatusCode::UNAUTHORIZED,
        ),
        (
            "tampered token refused",
            Some(tampered.as_str()),
            StatusCode::UNAUTHORIZED,
        ),
    ] {
        let mut req = Request::builder()
            .method(Method::from_bytes(b"CCM_POST").expect("valid method"))
            .uri(&path);
        if let Some(t) = bearer {
            req = req.header(http::header::AUTHORIZATION, format!("Bearer {t}"));
        }
        let req = req
            .body(Full::new(Bytes::from_static(b"<Msg/>")))
            .expect("valid request");
        let got = match client.request(req).await {
            Ok(resp) => {
                let status = resp.status();
                let _ = collect_body(resp).await;
                Ok(status)
            }
            Err(e) => Err(e.to_string()),
        };
        report_status(report, name, got, want);
    }
}

/// CCM_POST through every instance, both protocols, until every connection point served;
/// returns how many requests were sent.
async fn through_every_path(cluster: &Cluster, report: &mut Report) -> u64 {
    let mut sent = 0;
    let mut served_by: BTreeSet<(String, String)> = BTreeSet::new();
    let payload = Bytes::from((0..4096u32).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
    for (i, g) in cluster.gateways.iter().enumerate() {
        for http2 in [false, true] {
            let proto = if http2 { "h2" } else { "http/1.1" };
            let client = match cluster.client(i, Cert::Valid, http2) {
                Ok(c) => c,
                Err(e) => {
                    report.add(format!("{} {proto}: client", g.name), false, e.to_string());
                    continue;
                }
            };
            // Enough requests for round robin to reach every connection point.
            for n in 0..cluster.connectors.len() {
                let name = format!("CCM_POST via {} ({proto}) #{}", g.name, n + 1);
                sent += 1;
                match ccm_post(&client, payload.clone()).await {
                    Ok(e) => {
                        let ok =
                            e.status == StatusCode::OK && e.body == payload && e.instance == g.name;
                        report.add(
                            name,
                            ok,
                            format!(
                                "{} instance={} connection_point={} echo={} B",
                                e.status,
                                e.instance,
                                e.connection_point,
                                e.body.len()
                            ),
                        );
                        served_by.insert((e.instance, e.connection_point));
                    }
                    Err(e) => report.add(name, false, e),
                }
            }
        }
    }
    // Round robin is shared by every thread of an instance and each request prefers a
    // channel on its own thread, so the requests above need not have covered every
    // connection point: send more (bounded) until they have, and say how many it took.
    for (i, g) in cluster.gateways.iter().enumerate() {
        let missing = |served: &BTreeSet<(String, String)>| {
            cluster
                .connectors
                .iter()
                .any(|c| !served.contains(&(g.name.clone(), c.id.to_string())))
        };
        let mut extra = 0;
        if missing(&served_by) {
            if let Ok(client) = cluster.client(i, Cert::Valid, true) {
                while extra < EXTRA_ROUND_ROBIN_REQUESTS && missing(&served_by) {
                    extra += 1;
                    sent += 1;
                    if let Ok(e) = ccm_post(&client, payload.clone()).await {
                        if e.status == StatusCode::OK && e.instance == g.name {
                            served_by.insert((e.instance, e.connection_point));
                        }
                    }
                }
            }
        }
        for c in &cluster.connectors {
            let seen = served_by.contains(&(g.name.clone(), c.id.to_string()));
            let detail = match (seen, extra) {
                (false, n) => format!("never, after {n} more request(s)"),
                (true, 0) => "yes".to_owned(),
                (true, n) => format!("yes ({n} more request(s) needed)"),
            };
            report.add(
                format!("{} reached the MP through {}", g.name, c.id),
                seen,
                detail,
            );
        }
    }
    sent
}

/// At most this many more requests per instance to reach every connection point.
const EXTRA_ROUND_ROBIN_REQUESTS: usize = 16;

/// Other endpoints, then what must be refused.
async fn refusals(cluster: &Cluster, report: &mut Report) {
    let valid = match cluster.client(0, Cert::Valid, true) {
        Ok(c) => c,
        Err(e) => {
            report.add("client for the remaining checks", false, e.to_string());
            return;
        }
    };
    let sms_mp = external_prefix("SMS_MP");
    let mplist = format!("{sms_mp}/.sms_aut?MPLIST2");
    let got = status_of(&valid, Method::GET, &mplist, Bytes::new()).await;
    report_status(report, "GET .sms_aut?MPLIST2", got, StatusCode::OK);

    let bits = Request::builder()
        .method(Method::from_bytes(b"BITS_POST").expect("valid method"))
        .uri(format!(
            "{}/demo-upload.bin",
            external_prefix("CCM_Incoming")
        ))
        .header("BITS-Packet-Type", "Create-Session")
        .header(
            "BITS-Supported-Protocols",
            "{7df0354d-249b-430f-820d-3d2a9bef4931}",
        )
        .body(Full::new(Bytes::new()))
        .expect("valid request");
    match valid.request(bits).await {
        Ok(resp) => {
            let session = header(&resp, &http::HeaderName::from_static("bits-session-id"));
            let ok = resp.status() == StatusCode::OK && session != "-";
            report.add(
                "BITS_POST Create-Session",
                ok,
                format!("{} session={session}", resp.status()),
            );
        }
        Err(e) => report.add("BITS_POST Create-Session", false, e.to_string()),
    }

    let got = status_of(
        &valid,
        Method::GET,
        "/CCM_Proxy_MutualAuth/1/Secret",
        Bytes::new(),
    )
    .await;
    report_status(
        report,
        "unpublished URL refused",
        got,
        StatusCode::NOT_FOUND,
    );
    let got = status_of(
        &valid,
        Method::GET,
        &format!("{sms_mp}/%2e%2e/%2e%2e/etc"),
        Bytes::new(),
    )
    .await;
    report_status(
        report,
        "path traversal refused",
        got,
        StatusCode::BAD_REQUEST,
    );
    let too_big = Bytes::from(vec![b'x'; cmg_cluster::spec::MAX_BODY_SMS_MP as usize + 1]);
    let got = status_of(&valid, Method::POST, &format!("{sms_mp}/upload"), too_big).await;
    report_status(
        report,
        "body over the endpoint limit refused",
        got,
        StatusCode::PAYLOAD_TOO_LARGE,
    );

    match cluster.client(0, Cert::None, true) {
        Ok(c) => {
            let got = status_of(&c, Method::GET, &mplist, Bytes::new()).await;
            report_status(
                report,
                "no client certificate refused",
                got,
                StatusCode::FORBIDDEN,
            );
        }
        Err(e) => report.add("no client certificate refused", false, e.to_string()),
    }
    for (cert, what) in [
        (Cert::UntrustedRoot, "untrusted root"),
        (Cert::Expired, "expired"),
        (Cert::Revoked, "revoked (fetched CRL)"),
    ] {
        let name = format!("{what} client certificate refused");
        match cluster.client(0, cert, true) {
            Ok(c) => match status_of(&c, Method::GET, &mplist, Bytes::new()).await {
                Err(e) => report.add(name, true, format!("TLS handshake refused ({})", short(&e))),
                Ok(s) => report.add(name, false, format!("got {s}")),
            },
            Err(e) => report.add(name, false, e.to_string()),
        }
    }
}

fn short(e: &str) -> String {
    e.chars().take(60).collect()
}

fn report_status(
    report: &mut Report,
    name: &str,
    got: Result<StatusCode, String>,
    want: StatusCode,
) {
    match got {
        Ok(s) => report.add(name, s == want, format!("{s} (want {})", want.as_u16())),
        Err(e) => report.add(name, false, e),
    }
}
