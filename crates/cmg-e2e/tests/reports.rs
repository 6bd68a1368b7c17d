//! A connection point talking to its site over `[site_api]`, with real gateways, a real
//! connection point and the management point of the demo cluster.
//!
//! The site's receiving side of reports is built elsewhere, so a small loopback HTTPS
//! server in this file stands in for the site's publishing API (a mock, said so here):
//! it requires a client certificate from the demo site CA and records the connection
//! point identity in it, records every report, and answers bundle long polls with the
//! cluster's signed bundle file (the first two answers are oversized bodies instead, one
//! announced by `Content-Length`, one chunked, which the connection point must refuse).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use bytes::Bytes;
use cmg_client::collect_body;
use cmg_e2e::{tag, tagged, Cert, TestCluster};
use cmg_proto::report::{
    ChannelState, ConnectionPointReport, ReportReason, MAX_REPORT_BYTES, SITE_REPORT_PATH,
};
use cmg_test_support::patience;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
    SanType,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::mpsc;

/// Bound on waiting for a report (scaled by `CMG_TEST_PATIENCE` at each use).
const REPORT_WAIT: Duration = Duration::from_secs(15);
const GATEWAY: &str = "cmg1";

/// One report as the stand-in received it, with the identity of the client
/// certificate it came with (`site:id`).
type Received = (String, ConnectionPointReport);

/// The stand-in site (see the module docs).
struct StandIn {
    addr: SocketAddr,
    ca_file: PathBuf,
    bundle_calls: Arc<AtomicUsize>,
    reports: mpsc::Receiver<Received>,
    /// Every report seen so far, in order.
    seen: Vec<Received>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Shared {
    bundle_file: PathBuf,
    bundle_calls: Arc<AtomicUsize>,
    reports: mpsc::Sender<Received>,
}

impl StandIn {
    async fn start(dir: &Path, site_ca: &Path, bundle_file: PathBuf) -> anyhow::Result<Self> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, "stand-in site API CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate()?)?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.subject_alt_names = vec![SanType::IpAddress("127.0.0.1".parse()?)];
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &ca)?;
        let ca_file = dir.join("stand-in-ca.pem");
        std::fs::write(&ca_file, ca.pem())?;

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(site_ca)? {
            roots.add(c?)?;
        }
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()?;
        let mut tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                vec![cert.der().clone()],
                PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes())?,
            )?;
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (tx, reports) = mpsc::channel(256);
        let bundle_calls = Arc::new(AtomicUsize::new(0));
        let shared = Arc::new(Shared {
            bundle_file,
            bundle_calls: bundle_calls.clone(),
            reports: tx,
        });
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                let shared = shared.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let identity = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|c| c.first())
                        .and_then(|c| cmg_pki::describe::connector_identity(c).ok())
                        .map_or_else(|| "none".to_owned(), |(s, id)| format!("{s}:{id}"));
                    let service = hyper::service::service_fn(move |req| {
                        let shared = shared.clone();
                        let identity = identity.clone();
                        async move {
                            Ok::<_, std::convert::Infallible>(shared.answer(req, identity).await)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        Ok(Self {
            addr,
            ca_file,
            bundle_calls,
            reports,
            seen: Vec::new(),
            task,
        })
    }

    /// Waits for the next report that satisfies `pred`; every report goes to `seen`.
    async fn report(
        &mut self,
        what: &str,
        pred: impl Fn(&ConnectionPointReport) -> bool,
    ) -> anyhow::Result<Received> {
        let within = patience(REPORT_WAIT);
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let r = tokio::time::timeout_at(deadline, self.reports.recv())
                .await
                .with_context(|| {
                    format!(
                        "no report {what} within {within:?}; last: {:?}",
                        self.seen.last()
                    )
                })?
                .context("stand-in stopped")?;
            self.seen.push(r.clone());
            if pred(&r.1) {
                return Ok(r);
            }
        }
    }
}

type Body = http_body_util::combinators::BoxBody<Bytes, std::convert::Infallible>;

fn full(b: impl Into<Bytes>) -> Response<Body> {
    Response::new(Full::new(b.into()).boxed())
}

fn empty(status: StatusCode) -> Response<Body> {
    let mut r = full(Bytes::new());
    *r.status_mut() = status;
    r
}

impl Shared {
    async fn answer(&self, req: Request<Incoming>, identity: String) -> Response<Body> {
        let bundle_path = format!("/api/v1/publish/gateways/{GATEWAY}/bundle");
        let report_path = SITE_REPORT_PATH.replace("{name}", GATEWAY);
        if req.method() == Method::GET && req.uri().path() == bundle_path {
            let after: u64 = req
                .uri()
                .query()
                .unwrap_or_default()
                .split('&')
                .find_map(|kv| kv.strip_prefix("after="))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let call = self.bundle_calls.fetch_add(1, Ordering::SeqCst);
            if call < 2 {
                // One byte above the limit, announcing a version far ahead: first with a
                // Content-Length, then chunked (no length known before the end).
                let body = vec![b'a'; cmg_token::bundle::MAX_BUNDLE_BYTES + 1];
                let mut r = if call == 0 {
                    full(body)
                } else {
                    let chunks: Vec<Result<http_body::Frame<Bytes>, std::convert::Infallible>> =
                        body.chunks(64 * 1024)
                            .map(|c| Ok(http_body::Frame::data(Bytes::copy_from_slice(c))))
                            .collect();
                    Response::new(
                        http_body_util::StreamBody::new(futures_util::stream::iter(chunks)).boxed(),
                    )
                };
                r.headers_mut()
                    .insert("cmg-settings-version", http::HeaderValue::from(99u64));
                return r;
            }
            let text = std::fs::read_to_string(&self.bundle_file).unwrap_or_default();
            match cmg_token::bundle::peek_version(text.trim()) {
                Some(v) if v > after => {
                    let mut r = full(text.trim().to_owned());
                    r.headers_mut()
                        .insert("cmg-settings-version", http::HeaderValue::from(v));
                    r
                }
                _ => {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    empty(StatusCode::NO_CONTENT)
                }
            }
        } else if req.method() == Method::POST && req.uri().path() == report_path {
            let Ok(body) = Limited::new(req.into_body(), MAX_REPORT_BYTES)
                .collect()
                .await
            else {
                return empty(StatusCode::PAYLOAD_TOO_LARGE);
            };
            match serde_json::from_slice::<ConnectionPointReport>(&body.to_bytes()) {
                Ok(report) => {
                    let _ = self.reports.send((identity, report)).await;
                    empty(StatusCode::NO_CONTENT)
                }
                Err(_) => empty(StatusCode::BAD_REQUEST),
            }
        } else {
            empty(StatusCode::NOT_FOUND)
        }
    }
}

/// Requests answered on `prefix` by `instance`, per the newest snapshot in `report`.
fn served(report: &ConnectionPointReport, instance: &str, prefix: &str) -> Option<[u64; 5]> {
    report
        .traffic
        .iter()
        .find(|s| s.instance == instance)?
        .endpoints
        .iter()
        .find(|e| e.prefix == prefix)
        .map(|e| e.status_classes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_point_fetches_from_and_reports_to_the_site() -> anyhow::Result<()> {
    let mut tc = TestCluster::start().await?;
    let dir = tc.spec.dir.clone();
    let mut site = StandIn::start(
        &dir,
        &tc.pki.site_ca,
        cmg_cluster::publish::bundle_file(&dir),
    )
    .await?;

    // cp1 switches from the bundle file to the (stand-in) site.
    tc.stop_connector(0).await;
    let path = tc.connectors[0].config.clone();
    let text = std::fs::read_to_string(&path)?;
    let (head, _) = text
        .split_once("[settings]")
        .context("cp1.toml has a [settings] section")?;
    let text = format!(
        "{head}[site_api]\nurl = \"https://127.0.0.1:{port}\"\ngateway = \"{GATEWAY}\"\nca = [{ca:?}]\n\
         wait = \"1s\"\nbackoff_base = \"50ms\"\nbackoff_max = \"200ms\"\n\
         report_interval = \"1s\"\nreport_debounce = \"200ms\"\n",
        port = site.addr.port(),
        ca = site.ca_file.display().to_string(),
    );
    std::fs::write(&path, text)?;
    tc.start_connector(0).await?;
    let addrs: Vec<String> = tc.gateways.iter().map(|g| g.channel.to_string()).collect();

    // At startup, with the connection point's certificate.
    let (identity, r) = site
        .report("at startup", |r| r.reason == ReportReason::Startup)
        .await?;
    assert_eq!(identity, "DEM:cp1", "the client certificate is the CP's");
    assert_eq!(
        (r.connection_point.as_str(), r.gateway.as_str()),
        ("cp1", GATEWAY)
    );
    let listed: Vec<&str> = r.channels.iter().map(|c| c.address.as_str()).collect();
    assert_eq!(listed, addrs);

    // Both channels up, with the instance names from the hellos.
    let (_, r) = site
        .report("with both channels up", |r| {
            r.channels
                .iter()
                .all(|c| c.state == ChannelState::Connected)
        })
        .await?;
    let names: Vec<Option<&str>> = r.channels.iter().map(|c| c.instance.as_deref()).collect();
    assert_eq!(names, [Some("gw1"), Some("gw2")]);
    assert!(r.channels.iter().all(|c| c.connection_id.is_some()));

    // The oversized answers were refused; the signed bundle after them is relayed.
    site.report("relaying settings version 1", |r| r.settings_version == 1)
        .await?;
    ensure!(site.bundle_calls.load(Ordering::SeqCst) >= 3);

    // Traffic: exactly the requests sent here, per instance, from the snapshots the
    // instances posted over their channels.
    let prefix = cmg_cluster::spec::external_prefix("SMS_MP");
    let sent = [5u64, 3u64];
    for (gw, n) in sent.iter().enumerate() {
        for _ in 0..*n {
            let req = tagged(
                Method::GET,
                &format!("{prefix}/.sms_aut?MPLIST2"),
                &tag("reports"),
                Bytes::new(),
            );
            let resp = tc.client(gw, Cert::Valid, true)?.request(req).await?;
            assert_eq!(resp.status(), StatusCode::OK);
            collect_body(resp).await?;
        }
    }
    let (_, r) = site
        .report("with the traffic sent", |r| {
            served(r, "gw1", &prefix) == Some([0, sent[0], 0, 0, 0])
                && served(r, "gw2", &prefix) == Some([0, sent[1], 0, 0, 0])
        })
        .await?;
    for snap in &r.traffic {
        assert_eq!(snap.endpoints.len(), 1, "only SMS_MP saw traffic: {snap:?}");
        assert!(snap.endpoints[0].bytes_out > 0 && snap.endpoints[0].latency_us_sum > 0);
    }
    site.report("on the interval", |r| r.reason == ReportReason::Periodic)
        .await?;

    // A gateway instance stops: reported at once, not at the next interval.
    let stopped = Instant::now();
    tc.stop_gateway(1).await;
    let (_, r) = site
        .report("after gw2 stopped", |r| {
            r.reason == ReportReason::StateChange && r.channels[1].state != ChannelState::Connected
        })
        .await?;
    assert!(stopped.elapsed() < Duration::from_secs(5));
    assert_eq!(r.channels[0].state, ChannelState::Connected);
    assert_eq!(r.channels[1].instance.as_deref(), Some("gw2"));
    assert!(r.channels[1].last_error.is_some(), "{:?}", r.channels[1]);
    assert_eq!(served(&r, "gw2", &prefix), Some([0, sent[1], 0, 0, 0]));

    // And a last report when the connection point shuts down.
    tc.stop_connector(0).await;
    let (_, r) = site
        .report("at shutdown", |r| r.reason == ReportReason::Shutdown)
        .await?;
    assert!(r
        .channels
        .iter()
        .all(|c| c.state == ChannelState::Disconnected));
    assert!(
        site.seen
            .iter()
            .all(|(id, r)| id == "DEM:cp1" && r.settings_version <= 1),
        "the oversized bundle (version 99) was never relayed"
    );
    drop(site);
    tc.shutdown().await;
    Ok(())
}
