//! Tests only (feature `test-util`): [`FakeSite`], one in-process server that plays the
//! site (location service, token service), the management point (MPLIST, policy) and
//! the gateway (the same endpoints under `/CCM_Proxy_*/<role>/`, content with ranges),
//! on two listeners: plain HTTP ("intranet") and HTTPS under the demo PKI's service
//! name ("gateway"). Answers are signed with a real site key, so the agent's checks
//! run for real; what the fake does wrong on purpose (tampered answers, 503s, blocked
//! tokens, a cut download) is switched in [`Fake`]. It checks no client certificate and
//! no token signature: the agent is under test here, not the site.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use cmg_core::shutdown::Shutdown;
use cmg_proto::device::{
    CandidateList, ClientAuth, ClientSettingsInForce, ContentKind, ContentLocation, LocationAnswer,
    LocationCandidate, LocationRequest, Via, LOCATION_FORMAT,
};
use cmg_proto::ids::SiteCode;
use cmg_proto::location::{CandidateKind, Locality};
use cmg_token::site::{generate_key_pem, SiteGuid, SiteSigner};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use sha2::{Digest as _, Sha256};
use tokio::net::TcpListener;

/// The gateway's service name (in the demo PKI's server certificate).
pub const SERVICE: &str = "cmg.demo.test";
/// The management point role ID in gateway paths.
pub const ROLE: &str = "72057594037927939";
/// The bulk token the fake token service accepts.
pub const BULK_TOKEN: &str = "bulk-registration-token";

/// What the fake's location answers do wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tamper {
    #[default]
    None,
    /// One payload byte changed after signing.
    Payload,
    /// More than the largest answer a client accepts.
    Oversized,
    /// Not a JWS at all.
    Garbage,
    /// A correctly signed answer for another site.
    OtherSite,
}

/// One request the fake saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// `intranet` or `gateway`.
    pub listener: &'static str,
    pub method: String,
    pub path: String,
    pub range: Option<String>,
    pub bearer: Option<String>,
}

/// The fake's behaviour and record, shared with the test.
#[derive(Debug)]
pub struct Fake {
    pub site: SiteCode,
    signer: SiteSigner,
    /// Intranet candidates first, then internet ones (as the site lists them).
    pub candidates: Vec<LocationCandidate>,
    pub settings: ClientSettingsInForce,
    pub groups: Vec<String>,
    /// (id, version, body).
    pub policies: Vec<(String, u64, Vec<u8>)>,
    pub tamper: Tamper,
    /// Listeners (`intranet`, `gateway`) that answer 503 to policy requests.
    pub failing: BTreeSet<&'static str>,
    /// Device tokens the token service refuses as `token_blocked`.
    pub blocked: BTreeSet<String>,
    issued: u32,
    /// The content served at `CMG_Content/<content_id>`.
    pub content_id: String,
    pub content: Vec<u8>,
    /// `<service>:<port>` of the gateway listener, for content URLs.
    gateway_authority: String,
    /// Cut the next full (non-range) content answer after this many bytes.
    pub cut_after: Option<usize>,
    pub seen: Vec<Seen>,
}

/// The running fake.
#[derive(Debug)]
pub struct FakeSite {
    pub intranet: SocketAddr,
    pub gateway: SocketAddr,
    pub fake: Arc<Mutex<Fake>>,
    pub pki: cmg_pki::demo::DemoPkiPaths,
    pub site_keys: PathBuf,
    shutdown: Shutdown,
}

impl FakeSite {
    /// Starts both listeners on `intranet_ip` and `gateway_ip` (port 0) and writes the
    /// demo PKI and the site key file into `dir`.
    pub async fn start(
        dir: &Path,
        intranet_ip: std::net::IpAddr,
        gateway_ip: std::net::IpAddr,
    ) -> Self {
        let site = SiteCode::new("DEM").expect("site");
        let pki = cmg_pki::demo::DemoPki::generate(&cmg_pki::demo::DemoPkiSpec {
            service_name: SERVICE.into(),
            site: site.clone(),
            connectors: vec![],
            crl_url: None,
        })
        .expect("pki")
        .write(&dir.join("pki"))
        .expect("write pki");
        let guid: SiteGuid = "6f1c2b3a-1111-4222-8333-444455556666"
            .parse()
            .expect("guid");
        let signer = SiteSigner::from_pem(generate_key_pem().expect("key").as_bytes(), &guid)
            .expect("signer");
        let site_keys = dir.join("site-keys.pem");
        std::fs::write(&site_keys, signer.public_key_pem()).expect("write keys");
        let intranet_l = TcpListener::bind((intranet_ip, 0))
            .await
            .expect("bind intranet");
        let gateway_l = TcpListener::bind((gateway_ip, 0))
            .await
            .expect("bind gateway");
        let intranet = intranet_l.local_addr().expect("addr");
        let gateway = gateway_l.local_addr().expect("addr");
        let gw_base = format!(
            "https://{SERVICE}:{}/CCM_Proxy_MutualAuth/{ROLE}",
            gateway.port()
        );
        let content: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let fake = Arc::new(Mutex::new(Fake {
            site,
            signer,
            candidates: vec![
                candidate(
                    CandidateList::Intranet,
                    CandidateKind::Intranet,
                    "MP1",
                    &format!("http://{intranet}"),
                    Locality::CurrentGroup,
                ),
                candidate(
                    CandidateList::Internet,
                    CandidateKind::Internet,
                    "cmg1",
                    &gw_base,
                    Locality::SiteDefault,
                ),
            ],
            settings: ClientSettingsInForce {
                enable_cmg: true,
                allow_cloud_dp: true,
                policy_interval_secs: 3600,
            },
            groups: vec!["HQ".into()],
            policies: vec![
                ("Baseline".into(), 1, b"baseline v1".to_vec()),
                ("Apps".into(), 3, b"apps v3".to_vec()),
            ],
            tamper: Tamper::None,
            failing: BTreeSet::new(),
            blocked: BTreeSet::new(),
            issued: 0,
            content_id: "pkg/content.bin".into(),
            content,
            gateway_authority: format!("{SERVICE}:{}", gateway.port()),
            cut_after: None,
            seen: Vec::new(),
        }));
        let shutdown = Shutdown::new();
        let tls = server_tls(&pki.server_cert, &pki.server_key);
        serve(intranet_l, None, "intranet", fake.clone(), shutdown.clone());
        serve(
            gateway_l,
            Some(tls),
            "gateway",
            fake.clone(),
            shutdown.clone(),
        );
        Self {
            intranet,
            gateway,
            fake,
            pki,
            site_keys,
            shutdown,
        }
    }

    /// Locks the fake's behaviour and record.
    pub fn fake(&self) -> std::sync::MutexGuard<'_, Fake> {
        self.fake.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The gateway's certificate-client base URL.
    pub fn gateway_base(&self, token: bool) -> String {
        let auth = if token { "ServerAuth" } else { "MutualAuth" };
        format!("{SERVICE}:{}/CCM_Proxy_{auth}/{ROLE}", self.gateway.port())
    }

    /// Stops both listeners.
    pub async fn stop(self) {
        self.shutdown.token.cancel();
        self.shutdown.tracker.close();
        self.shutdown.tracker.wait().await;
    }
}

/// A location candidate in `list`.
pub fn candidate(
    list: CandidateList,
    kind: CandidateKind,
    name: &str,
    url: &str,
    locality: Locality,
) -> LocationCandidate {
    LocationCandidate {
        list: Some(list),
        kind,
        name: name.into(),
        url: url.into(),
        locality,
        auth: ClientAuth::Certificate,
    }
}

fn server_tls(cert: &Path, key: &Path) -> tokio_rustls::TlsAcceptor {
    let certs = cmg_pki::pem::load_certs(cert).expect("certs");
    let key = cmg_pki::pem::load_key(key).expect("key");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server config");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

fn serve(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    name: &'static str,
    fake: Arc<Mutex<Fake>>,
    shutdown: Shutdown,
) {
    let tracker = shutdown.tracker.clone();
    tracker.spawn(async move {
        loop {
            let (stream, _) = tokio::select! {
                _ = shutdown.token.cancelled() => return,
                a = listener.accept() => match a { Ok(a) => a, Err(_) => continue },
            };
            let fake = fake.clone();
            let tls = tls.clone();
            let stop = shutdown.token.clone();
            shutdown.tracker.spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let fake = fake.clone();
                    async move { Ok::<_, std::convert::Infallible>(handle(name, fake, req).await) }
                });
                let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                let conn = async {
                    match tls {
                        Some(t) => {
                            if let Ok(s) = t.accept(stream).await {
                                let _ = builder.serve_connection(TokioIo::new(s), svc).await;
                            }
                        }
                        None => {
                            let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                        }
                    }
                };
                tokio::select! { _ = stop.cancelled() => {}, _ = conn => {} }
            });
        }
    });
}

type Body = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

fn full(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()).map_err(|e| match e {}).boxed());
    *r.status_mut() = status;
    r
}

async fn handle(
    listener: &'static str,
    fake: Arc<Mutex<Fake>>,
    req: Request<Incoming>,
) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().unwrap_or("").to_owned();
    let header = |n: http::header::HeaderName| {
        parts
            .headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let bearer = header(http::header::AUTHORIZATION)
        .and_then(|v| v.strip_prefix("Bearer ").map(str::to_owned));
    let mut f = fake.lock().unwrap_or_else(|e| e.into_inner());
    f.seen.push(Seen {
        listener,
        method: parts.method.to_string(),
        path: parts.uri.to_string(),
        range: header(http::header::RANGE),
        bearer: bearer.clone(),
    });
    let mut resp = if path.ends_with("/SMS_MP/.sms_aut") {
        full(
            StatusCode::OK,
            "<MPList><MP Name=\"MP1\" FQDN=\"mp1\" SiteCode=\"DEM\"/></MPList>",
        )
    } else if path.ends_with("/SMS_MP/.sms_pol") {
        f.policy(listener, &query)
    } else if path == "/api/v1/location" || path.ends_with("/CCM_Location") {
        f.location(listener, &body)
    } else if path == "/api/v1/sts/token" || path.ends_with("/CCM_STS/token") {
        f.token(bearer.as_deref(), &body)
    } else if path == "/api/v1/sts/register" && listener == "intranet" {
        // A certificate client registering on the intranet (no bearer).
        f.token(Some(BULK_TOKEN), &body)
    } else if let Some(id) = path.split("/CMG_Content/").nth(1) {
        f.content(id, header(http::header::RANGE).as_deref())
    } else {
        full(StatusCode::NOT_FOUND, "no such path")
    };
    if listener == "gateway" {
        let h = resp.headers_mut();
        h.insert(
            "cmg-gateway-instance",
            http::HeaderValue::from_static("gw1"),
        );
        h.insert(
            "cmg-connection-point",
            http::HeaderValue::from_static("cp1"),
        );
    }
    resp
}

impl Fake {
    fn policy(&self, listener: &'static str, query: &str) -> Response<Body> {
        if self.failing.contains(listener) {
            return full(StatusCode::SERVICE_UNAVAILABLE, "failing");
        }
        if query == "assignments" {
            let list: Vec<_> = self
                .policies
                .iter()
                .map(|(id, v, b)| serde_json::json!({"id": id, "version": v, "sha256": hex::encode(Sha256::digest(b))}))
                .collect();
            return full(
                StatusCode::OK,
                serde_json::json!({ "assignments": list }).to_string(),
            );
        }
        match self.policies.iter().find(|(id, _, _)| id == query) {
            Some((_, _, b)) => full(StatusCode::OK, b.clone()),
            None => full(StatusCode::NOT_FOUND, "no such policy"),
        }
    }

    fn location(&self, listener: &'static str, body: &[u8]) -> Response<Body> {
        let Ok(req) = serde_json::from_slice::<LocationRequest>(body) else {
            return full(StatusCode::BAD_REQUEST, "bad request");
        };
        if listener == "gateway" && !self.settings.enable_cmg {
            return full(StatusCode::FORBIDDEN, "cmg_disabled");
        }
        let now = crate::clock::unix(std::time::SystemTime::now()) as u64;
        let mut answer = LocationAnswer {
            format: LOCATION_FORMAT,
            site: self.site.clone(),
            issued_at: now,
            expires_at: now + 7 * 24 * 3600,
            client: "fake".into(),
            auth: ClientAuth::Certificate,
            via: if listener == "gateway" {
                Via::Gateway
            } else {
                Via::Intranet
            },
            boundary_groups: self.groups.clone(),
            candidates: self
                .candidates
                .iter()
                .filter(|c| self.settings.enable_cmg || c.kind == CandidateKind::Intranet)
                .cloned()
                .collect(),
            client_settings: self.settings,
            content: req.want_content.as_ref().map(|id| {
                vec![ContentLocation {
                    url: format!(
                        "https://{}/CCM_Proxy_MutualAuth/CMG_Content/{id}",
                        self.gateway_authority
                    ),
                    kind: ContentKind::Cloud,
                    locality: Locality::SiteDefault,
                    auth: ClientAuth::Certificate,
                }]
            }),
            site_keys_pem: vec![],
        };
        if self.tamper == Tamper::OtherSite {
            answer.site = SiteCode::new("OTH").expect("site");
        }
        let signed = self.signer.sign_location(&answer).expect("sign");
        let signed = match self.tamper {
            Tamper::Payload => {
                let mut parts: Vec<String> = signed.split('.').map(str::to_owned).collect();
                let mut payload = parts[1].clone().into_bytes();
                payload[10] = if payload[10] == b'A' { b'B' } else { b'A' };
                parts[1] = String::from_utf8(payload).expect("ascii");
                parts.join(".")
            }
            Tamper::Oversized => "x".repeat(cmg_proto::device::MAX_LOCATION_ANSWER_BYTES + 10),
            Tamper::Garbage => "this is not a signed answer".into(),
            Tamper::None | Tamper::OtherSite => signed,
        };
        full(StatusCode::OK, signed)
    }

    fn token(&mut self, bearer: Option<&str>, body: &[u8]) -> Response<Body> {
        let refuse = |code: &str| {
            let mut r = full(StatusCode::UNAUTHORIZED, format!("{{\"code\":\"{code}\"}}"));
            if let Ok(v) = format!(
                "Bearer realm=\"cmg-site\", error=\"invalid_token\", error_description=\"{code}\""
            )
            .parse()
            {
                r.headers_mut().insert(http::header::WWW_AUTHENTICATE, v);
            }
            r
        };
        let Some(bearer) = bearer else {
            return refuse("token_missing");
        };
        if self.blocked.contains(bearer) {
            return refuse("token_blocked");
        }
        let device = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.get("device_id")?.as_str().map(str::to_owned));
        let ok = (bearer == BULK_TOKEN && device.is_some())
            || (bearer.starts_with("device-") && device.is_none());
        if !ok {
            return refuse("bad_signature");
        }
        self.issued += 1;
        let now = crate::clock::unix(std::time::SystemTime::now());
        let answer = serde_json::json!({
            "token": format!("device-{}", self.issued),
            "tracking_id": format!("tracking-{}", self.issued),
            "device_id": device.unwrap_or_default(),
            "expires_at": now + 90 * 24 * 3600,
        });
        full(StatusCode::OK, answer.to_string())
    }

    fn content(&mut self, id: &str, range: Option<&str>) -> Response<Body> {
        if id != self.content_id {
            return full(StatusCode::NOT_FOUND, "no such blob");
        }
        let len = self.content.len();
        let etag = "\"v1\"";
        if let Some(start) = range
            .and_then(|r| r.strip_prefix("bytes="))
            .and_then(|r| r.trim_end_matches('-').parse::<usize>().ok())
        {
            if start >= len {
                return full(StatusCode::RANGE_NOT_SATISFIABLE, "");
            }
            let mut r = full(StatusCode::PARTIAL_CONTENT, self.content[start..].to_vec());
            let h = r.headers_mut();
            h.insert(http::header::ETAG, http::HeaderValue::from_static(etag));
            if let Ok(v) = format!("bytes {start}-{}/{len}", len - 1).parse() {
                h.insert(http::header::CONTENT_RANGE, v);
            }
            return r;
        }
        let cut = self.cut_after.take();
        let data = Bytes::from(self.content.clone());
        let body: Body = match cut {
            // Part of the body, then an error: the connection breaks mid-body. Between
            // the two the stream yields once, so hyper flushes the head and the part.
            Some(n) => {
                let part = data.slice(..n);
                let stream = futures_util::stream::unfold(0u8, move |step| {
                    let part = part.clone();
                    async move {
                        match step {
                            0 => Some((Ok(http_body::Frame::data(part)), 1)),
                            1 => {
                                tokio::task::yield_now().await;
                                Some((Err(std::io::Error::other("cut")), 2))
                            }
                            _ => None,
                        }
                    }
                });
                http_body_util::StreamBody::new(stream).boxed()
            }
            None => Full::new(data).map_err(|e| match e {}).boxed(),
        };
        let mut r = Response::new(body);
        let h = r.headers_mut();
        h.insert(http::header::ETAG, http::HeaderValue::from_static(etag));
        h.insert(http::header::CONTENT_LENGTH, http::HeaderValue::from(len));
        r
    }
}
