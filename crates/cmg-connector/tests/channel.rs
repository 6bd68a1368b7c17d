//! The connection point against a fake gateway and a plain-HTTP role, all on loopback.
//!
//! The real gateway crate is written concurrently, so these tests carry their own
//! test-only fake gateway: the HTTP/2-client half of the channel protocol (a
//! tokio-rustls acceptor with rcgen-made certificates that requires a client certificate
//! from the site CA and selects ALPN `cmg-channel/1`, a hyper HTTP/2 client handshake
//! over the accepted stream, the hello, then test requests sent on the channel). The role
//! is a tiny hyper HTTP/1.1 server that echoes the request body and reports what it saw.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use cmg_connector::{wait_all_up, wait_until, ChannelState, Config, ConnectorStatus};
use cmg_core::shutdown::Shutdown;
use cmg_proto::{channel, headers};
use cmg_test_support::patience;

const SERVICE: &str = "cmg.example.test";
const SITE: &str = "P01";
const CP_ID: &str = "cp1";
const MP_PREFIX: &str = "/CCM_Proxy_MutualAuth/72057594037927939/CCM_System";
const DOWN_PREFIX: &str = "/CCM_Proxy_MutualAuth/1/SMS_MP";
const HANG_PREFIX: &str = "/CCM_Proxy_MutualAuth/2/CCM_STS";
const HELD_PREFIX: &str = "/CCM_Proxy_MutualAuth/3/CCM_Incoming";
/// Bound on every wait in these tests, before `CMG_TEST_PATIENCE` scales it.
const WAIT: Duration = Duration::from_secs(5);

fn tracing_guard() -> tracing::subscriber::DefaultGuard {
    let subscriber = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("cmg_connector=debug")
        .finish();
    tracing::subscriber::set_default(subscriber)
}

// ---------------------------------------------------------------------------------------
// Test PKI: a site CA issuing the connection point's client certificate, and a gateway CA
// issuing the service's server certificate.

struct Pki {
    site_ca_pem: String,
    gateway_ca_pem: String,
    connector_cert_pem: String,
    connector_key_pem: String,
    server_cert_pem: String,
    server_key_pem: String,
}

fn ca(name: &str) -> Result<CertifiedIssuer<'static, KeyPair>> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    Ok(CertifiedIssuer::self_signed(params, KeyPair::generate()?)?)
}

impl Pki {
    fn new() -> Result<Self> {
        let site_ca = ca("cmg test site CA")?;
        let gateway_ca = ca("cmg test gateway CA")?;

        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, CP_ID);
        params.subject_alt_names = vec![SanType::URI(
            format!("{}{SITE}:{CP_ID}", channel::CONNECTOR_URI_PREFIX).try_into()?,
        )];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let connector_key = KeyPair::generate()?;
        let connector_cert = params.signed_by(&connector_key, &site_ca)?;

        let mut params = CertificateParams::new(vec![SERVICE.to_owned()])?;
        params.distinguished_name.push(DnType::CommonName, SERVICE);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_key = KeyPair::generate()?;
        let server_cert = params.signed_by(&server_key, &gateway_ca)?;

        Ok(Self {
            site_ca_pem: site_ca.pem(),
            gateway_ca_pem: gateway_ca.pem(),
            connector_cert_pem: connector_cert.pem(),
            connector_key_pem: connector_key.serialize_pem(),
            server_cert_pem: server_cert.pem(),
            server_key_pem: server_key.serialize_pem(),
        })
    }

    /// The fake gateway's TLS: server certificate, client certificates from the site CA
    /// required, and the channel ALPN unless `alpn` is false.
    fn gateway_tls(&self, alpn: bool) -> Result<rustls::ServerConfig> {
        use rustls_pki_types::pem::PemObject;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from_pem_slice(self.site_ca_pem.as_bytes())?)?;
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()?;
        let chain = vec![CertificateDer::from_pem_slice(
            self.server_cert_pem.as_bytes(),
        )?];
        let key = PrivateKeyDer::from_pem_slice(self.server_key_pem.as_bytes())?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)?;
        if alpn {
            config.alpn_protocols = vec![channel::ALPN.to_vec()];
        }
        Ok(config)
    }
}

// ---------------------------------------------------------------------------------------
// The fake gateway.

/// How the fake gateway behaves on each channel.
#[derive(Clone, Copy)]
struct Behaviour {
    /// Select ALPN `cmg-channel/1`.
    alpn: bool,
    /// Send the hello.
    hello: bool,
}

const NORMAL: Behaviour = Behaviour {
    alpn: true,
    hello: true,
};

/// One established channel as the fake gateway sees it.
struct FakeChannel {
    sender: SendRequest<Full<Bytes>>,
    connection_id: String,
    /// The `cmg-connection-point` header of the hello answer.
    connection_point: String,
    /// Cancel to drop the channel (TCP closed without GOAWAY).
    kill: CancellationToken,
}

struct FakeGateway {
    addr: SocketAddr,
    channels: mpsc::Receiver<FakeChannel>,
    stop: CancellationToken,
}

impl Drop for FakeGateway {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl FakeGateway {
    async fn start(pki: &Pki, behaviour: Behaviour) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(pki.gateway_tls(behaviour.alpn)?));
        let (tx, channels) = mpsc::channel(8);
        let stop = CancellationToken::new();
        let next_id = Arc::new(AtomicU64::new(0x1000));
        let token = stop.clone();
        tokio::spawn(async move {
            loop {
                let (tcp, _) = tokio::select! {
                    r = listener.accept() => match r { Ok(v) => v, Err(_) => return },
                    _ = token.cancelled() => return,
                };
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                let token = token.clone();
                let id = format!("{:016x}", next_id.fetch_add(1, Ordering::Relaxed));
                tokio::spawn(async move {
                    if let Err(e) = Self::serve(acceptor, tcp, tx, token, id, behaviour).await {
                        eprintln!("fake gateway channel: {e:#}");
                    }
                });
            }
        });
        Ok(Self {
            addr,
            channels,
            stop,
        })
    }

    async fn serve(
        acceptor: tokio_rustls::TlsAcceptor,
        tcp: tokio::net::TcpStream,
        tx: mpsc::Sender<FakeChannel>,
        stop: CancellationToken,
        connection_id: String,
        behaviour: Behaviour,
    ) -> Result<()> {
        let tls = acceptor.accept(tcp).await?;
        let (mut sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .handshake::<_, Full<Bytes>>(TokioIo::new(tls))
            .await?;
        let kill = CancellationToken::new();
        let k = kill.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = conn => {}
                _ = k.cancelled() => {}
                _ = stop.cancelled() => {}
            }
        });
        if !behaviour.hello {
            // Hold the channel open, silent, until the test ends.
            kill.cancelled().await;
            return Ok(());
        }
        sender.ready().await?;
        let hello = Request::post(format!("https://{SERVICE}{}", channel::HELLO_PATH))
            .header(headers::CONNECTION_ID, &connection_id)
            .header(headers::GATEWAY_INSTANCE, "gw-test-0")
            .body(Full::default())?;
        let resp = sender.send_request(hello).await?;
        ensure!(
            resp.status() == StatusCode::OK,
            "hello answered {}",
            resp.status()
        );
        let connection_point = resp
            .headers()
            .get(headers::CONNECTION_POINT)
            .context("hello answer without cmg-connection-point")?
            .to_str()?
            .to_owned();
        tx.send(FakeChannel {
            sender,
            connection_id,
            connection_point,
            kill,
        })
        .await
        .ok();
        Ok(())
    }

    async fn next_channel(&mut self) -> Result<FakeChannel> {
        tokio::time::timeout(patience(WAIT), self.channels.recv())
            .await
            .context("no channel from the connection point in time")?
            .context("fake gateway stopped")
    }
}

impl FakeChannel {
    /// Sends one client request on the channel; the response with its whole body.
    async fn send(
        &mut self,
        method: Method,
        path_and_query: &str,
        body: Bytes,
    ) -> Result<Response<Bytes>> {
        self.sender.ready().await?;
        let req = Request::builder()
            .method(method)
            .uri(format!("https://{SERVICE}{path_and_query}"))
            .header(headers::CLIENT_IDENTITY, "cert; subject=\"CN=client1\"")
            .header(headers::REQUEST_ID, "req-42")
            .header(headers::X_FORWARDED_FOR, "203.0.113.9")
            .body(Full::new(body))?;
        let resp = tokio::time::timeout(patience(WAIT), self.sender.send_request(req))
            .await
            .context("no response in time")??;
        let (parts, body) = resp.into_parts();
        let bytes = tokio::time::timeout(patience(WAIT), body.collect())
            .await
            .context("response body not complete in time")??
            .to_bytes();
        Ok(Response::from_parts(parts, bytes))
    }
}

// ---------------------------------------------------------------------------------------
// The role: echoes the body and reports the URI, Host and cmg headers it received.

async fn start_role() -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|req: Request<Incoming>| async move {
                    let saw = |name: &str| {
                        req.headers()
                            .get(name)
                            .cloned()
                            .unwrap_or(http::HeaderValue::from_static("-"))
                    };
                    let resp = Response::builder()
                        .header("x-role-uri", req.uri().to_string())
                        .header("x-role-host", saw("host"))
                        .header("x-role-identity", saw("cmg-client-identity"))
                        .header("x-role-request-id", saw("cmg-request-id"))
                        .header("x-role-xff", saw("x-forwarded-for"))
                        .header("x-role-method", req.method().as_str())
                        .body(req.into_body());
                    resp
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    Ok(addr)
}

/// A role that accepts connections and never answers.
async fn start_hanging_role() -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            held.push(tcp);
        }
    });
    Ok(addr)
}

/// A role that answers only when the test releases it.
struct HeldRole {
    addr: SocketAddr,
    /// One message per request that reached the role.
    arrived: mpsc::Receiver<()>,
    release: Arc<tokio::sync::Notify>,
}

async fn start_held_role() -> Result<HeldRole> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (tx, arrived) = mpsc::channel(8);
    let release = Arc::new(tokio::sync::Notify::new());
    let r = release.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (tx, r) = (tx.clone(), r.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_req: Request<Incoming>| {
                    let (tx, r) = (tx.clone(), r.clone());
                    async move {
                        let _ = tx.send(()).await;
                        r.notified().await;
                        Ok::<_, std::convert::Infallible>(Response::new(Full::new(
                            Bytes::from_static(b"done"),
                        )))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    Ok(HeldRole {
        addr,
        arrived,
        release,
    })
}

/// An address nothing listens on.
async fn dead_addr() -> Result<SocketAddr> {
    let l = TcpListener::bind("127.0.0.1:0").await?;
    Ok(l.local_addr()?)
}

// ---------------------------------------------------------------------------------------
// The connection point under test.

fn write(dir: &Path, name: &str, text: &str) -> Result<()> {
    std::fs::write(dir.join(name), text).with_context(|| name.to_owned())
}

/// Where the mappings point.
struct Roles {
    echo: SocketAddr,
    dead: SocketAddr,
    hang: SocketAddr,
    held: SocketAddr,
}

fn connector_config(
    dir: &Path,
    pki: &Pki,
    gateways: &[SocketAddr],
    roles: &Roles,
) -> Result<Config> {
    let Roles {
        echo,
        dead,
        hang,
        held,
    } = roles;
    write(dir, "connector.crt", &pki.connector_cert_pem)?;
    write(dir, "connector.key", &pki.connector_key_pem)?;
    write(dir, "gateway-ca.crt", &pki.gateway_ca_pem)?;
    let gateways = gateways
        .iter()
        .map(|g| format!("\"{g}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let toml = format!(
        r#"
id = "{CP_ID}"
site = "{SITE}"
service_name = "{SERVICE}"
gateways = [{gateways}]

[tls]
cert = "connector.crt"
key = "connector.key"
gateway_ca = ["gateway-ca.crt"]

[[mapping]]
external = "{MP_PREFIX}"
internal = "http://{echo}/internal/CCM_System"

[[mapping]]
external = "{DOWN_PREFIX}"
internal = "http://{dead}/SMS_MP"

[[mapping]]
external = "{HANG_PREFIX}"
internal = "http://{hang}/CCM_STS"

[[mapping]]
external = "{HELD_PREFIX}"
internal = "http://{held}/CCM_Incoming"

[admin]
listen = "127.0.0.1:0"

[timing]
ping_interval = "1s"
ping_timeout = "2s"
handshake_timeout = "500ms"
role_connect_timeout = "1s"
role_timeout = "1s"
backoff_base = "20ms"
backoff_max = "200ms"
shutdown_grace = "1s"
"#
    );
    Ok(Config::from_toml(&dir.join("connector.toml"), &toml)?)
}

struct Running {
    status: tokio::sync::watch::Receiver<ConnectorStatus>,
    traffic: cmg_connector::traffic::HeldTraffic,
    admin: SocketAddr,
    shutdown: Shutdown,
    task: tokio::task::JoinHandle<()>,
    held: HeldRole,
    _dir: tempfile::TempDir,
}

/// A connection point with one data-path thread: one channel (lane) per gateway, which
/// is what most tests here follow.
async fn start_connector(pki: &Pki, gateways: &[SocketAddr]) -> Result<Running> {
    start_connector_with(pki, gateways, 1).await
}

async fn start_connector_with(
    pki: &Pki,
    gateways: &[SocketAddr],
    threads: usize,
) -> Result<Running> {
    let dir = tempfile::tempdir()?;
    let held = start_held_role().await?;
    let roles = Roles {
        echo: start_role().await?,
        dead: dead_addr().await?,
        hang: start_hanging_role().await?,
        held: held.addr,
    };
    let mut config = connector_config(dir.path(), pki, gateways, &roles)?;
    config.threads = threads;
    let bound = cmg_connector::bind(config).await?;
    let status = bound.status();
    let traffic = bound.traffic();
    let admin = bound.admin_addr().context("admin listener")?;
    let shutdown = Shutdown::new();
    let task = tokio::spawn(bound.run(shutdown.clone()));
    Ok(Running {
        status,
        traffic,
        admin,
        shutdown,
        task,
        held,
        _dir: dir,
    })
}

impl Running {
    async fn stop(self) -> Result<()> {
        self.shutdown.token.cancel();
        tokio::time::timeout(patience(WAIT), self.task)
            .await
            .context("connection point did not stop in time")??;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn hello_then_forward_rewrite_stream_and_refusals() -> Result<()> {
    let _t = tracing_guard();
    let pki = Pki::new()?;
    let mut gw = FakeGateway::start(&pki, NORMAL).await?;
    let mut cp = start_connector(&pki, &[gw.addr]).await?;

    let mut ch = gw.next_channel().await?;
    assert_eq!(ch.connection_point, CP_ID);
    let status = wait_all_up(&mut cp.status, patience(WAIT)).await?;
    assert_eq!(
        status.channel(gw.addr),
        Some(&ChannelState::Up {
            connection_id: ch.connection_id.clone(),
            instance: "gw-test-0".into()
        })
    );

    // Prefix rewritten (matched case-insensitively), query kept, cmg headers passed on.
    let path = "/ccm_proxy_mutualauth/72057594037927939/CCM_System/request?a=1&b=%41";
    let resp = ch.send(Method::GET, path, Bytes::new()).await?;
    assert_eq!(resp.status(), StatusCode::OK);
    let h = resp.headers();
    assert_eq!(h["x-role-uri"], "/internal/CCM_System/request?a=1&b=%41");
    let role_host = h["x-role-host"].to_str()?.to_owned();
    assert!(role_host.starts_with("127.0.0.1:"), "{role_host}");
    assert_eq!(h["x-role-identity"], "cert; subject=\"CN=client1\"");
    assert_eq!(h["x-role-request-id"], "req-42");
    assert_eq!(h["x-role-xff"], "203.0.113.9");
    assert_eq!(h[headers::CONNECTION_POINT], CP_ID);
    assert!(resp.body().is_empty());

    // 1 MiB streamed to the role and back, byte-identical, any method.
    let payload: Bytes = (0..1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect::<Vec<u8>>()
        .into();
    let ccm_post = Method::from_bytes(b"CCM_POST")?;
    let resp = ch
        .send(ccm_post, &format!("{MP_PREFIX}/request"), payload.clone())
        .await?;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["x-role-method"], "CCM_POST");
    assert_eq!(resp.body().len(), payload.len());
    assert!(*resp.body() == payload, "echoed body differs");

    // No mapping.
    let resp = ch
        .send(
            Method::GET,
            "/CCM_Proxy_MutualAuth/99/Nothing",
            Bytes::new(),
        )
        .await?;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(resp.headers()["cmg-error"], "CMGConnector_NoMapping");
    assert_eq!(resp.headers()[headers::CONNECTION_POINT], CP_ID);

    // Unknown control path.
    let resp = ch.send(Method::GET, "/_cmg/nothing", Bytes::new()).await?;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    // Role down.
    let resp = ch
        .send(
            Method::GET,
            &format!("{DOWN_PREFIX}/.sms_aut?MPLIST2"),
            Bytes::new(),
        )
        .await?;
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    assert_eq!(resp.headers()["cmg-error"], "CMGConnector_RoleUnreachable");

    // Role accepts but never answers: 504 after role_timeout (1 s here).
    let resp = ch.send(Method::GET, HANG_PREFIX, Bytes::new()).await?;
    assert_eq!(resp.status(), StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(resp.headers()["cmg-error"], "CMGConnector_RoleTimeout");

    cp.stop().await
}

#[tokio::test]
async fn reconnects_after_the_gateway_drops_the_channel() -> Result<()> {
    let _t = tracing_guard();
    let pki = Pki::new()?;
    let mut gw = FakeGateway::start(&pki, NORMAL).await?;
    let mut cp = start_connector(&pki, &[gw.addr]).await?;

    let first = gw.next_channel().await?;
    wait_all_up(&mut cp.status, patience(WAIT)).await?;
    let first_id = first.connection_id.clone();
    first.kill.cancel();
    drop(first);

    // The channel leaves Up (Down, then Connecting while it redials) ...
    let addr = gw.addr;
    wait_until(&mut cp.status, patience(WAIT), |s| {
        s.channel(addr).and_then(ChannelState::connection_id) != Some(first_id.as_str())
    })
    .await?;
    // ... and comes back by itself on a new connection.
    let mut second = gw.next_channel().await?;
    assert_ne!(second.connection_id, first_id);
    let second_id = second.connection_id.clone();
    wait_until(&mut cp.status, patience(WAIT), |s| {
        s.channel(addr).and_then(ChannelState::connection_id) == Some(second_id.as_str())
    })
    .await?;
    let resp = second
        .send(Method::GET, &format!("{MP_PREFIX}/request"), Bytes::new())
        .await?;
    assert_eq!(resp.status(), StatusCode::OK);

    cp.stop().await
}

/// With two data-path threads the connection point keeps two channels (lanes) to the
/// instance, each serving requests on its own thread; the status follows lane 0, and a
/// lost lane 1 comes back by itself without touching it.
#[tokio::test]
async fn one_channel_per_thread_to_each_gateway() -> Result<()> {
    let _t = tracing_guard();
    let pki = Pki::new()?;
    let mut gw = FakeGateway::start(&pki, NORMAL).await?;
    let mut cp = start_connector_with(&pki, &[gw.addr], 2).await?;

    let mut a = gw.next_channel().await?;
    let mut b = gw.next_channel().await?;
    assert_ne!(a.connection_id, b.connection_id);
    let status = wait_all_up(&mut cp.status, patience(WAIT)).await?;
    assert_eq!(status.channels.len(), 1, "one status entry per instance");
    for ch in [&mut a, &mut b] {
        let resp = ch
            .send(Method::GET, &format!("{MP_PREFIX}/request"), Bytes::new())
            .await?;
        assert_eq!(resp.status(), StatusCode::OK, "lane {}", ch.connection_id);
    }
    // Drop whichever lane the status does not show: the status stays up with the same
    // connection ID, and the lane is redialled.
    let shown = status.channels[0]
        .state
        .connection_id()
        .context("lane 0 is up")?
        .to_owned();
    let (keep, lose) = if a.connection_id == shown {
        (a, b)
    } else {
        (b, a)
    };
    assert_eq!(keep.connection_id, shown);
    lose.kill.cancel();
    drop(lose);
    let mut again = gw.next_channel().await?;
    let resp = again
        .send(Method::GET, &format!("{MP_PREFIX}/request"), Bytes::new())
        .await?;
    assert_eq!(resp.status(), StatusCode::OK);
    let addr = gw.addr;
    let now = cp.status.borrow().clone();
    assert_eq!(
        now.channel(addr).and_then(ChannelState::connection_id),
        Some(shown.as_str())
    );
    drop(keep);
    cp.stop().await
}

#[tokio::test]
async fn channel_failures_show_in_the_status() -> Result<()> {
    let _t = tracing_guard();
    let pki = Pki::new()?;
    let no_alpn = FakeGateway::start(
        &pki,
        Behaviour {
            alpn: false,
            hello: true,
        },
    )
    .await?;
    let silent = FakeGateway::start(
        &pki,
        Behaviour {
            alpn: true,
            hello: false,
        },
    )
    .await?;
    let mut cp = start_connector(&pki, &[no_alpn.addr, silent.addr]).await?;

    let down_with = |addr: SocketAddr, needle: &'static str| move |s: &ConnectorStatus| matches!(s.channel(addr), Some(ChannelState::Down { last_error }) if last_error.contains(needle));
    wait_until(
        &mut cp.status,
        patience(WAIT),
        down_with(no_alpn.addr, "ALPN"),
    )
    .await?;
    wait_until(
        &mut cp.status,
        patience(WAIT),
        down_with(silent.addr, "no hello"),
    )
    .await?;
    cp.stop().await
}

#[tokio::test]
async fn shutdown_lets_requests_in_flight_finish() -> Result<()> {
    let _t = tracing_guard();
    let pki = Pki::new()?;
    let mut gw = FakeGateway::start(&pki, NORMAL).await?;
    let mut cp = start_connector(&pki, &[gw.addr]).await?;
    let mut ch = gw.next_channel().await?;
    wait_all_up(&mut cp.status, patience(WAIT)).await?;

    let in_flight = tokio::spawn(async move {
        ch.send(
            Method::POST,
            &format!("{HELD_PREFIX}/x"),
            Bytes::from_static(b"payload"),
        )
        .await
    });
    tokio::time::timeout(patience(WAIT), cp.held.arrived.recv())
        .await
        .context("request did not reach the role")?;

    // Shutdown while the role still holds the request: the channel gets its GOAWAY but
    // stays open for the stream in flight.
    cp.shutdown.token.cancel();
    let addr = gw.addr;
    assert!(
        wait_until(&mut cp.status, Duration::from_millis(200), |s| !s
            .channel(addr)
            .is_some_and(ChannelState::is_up))
        .await
        .is_err(),
        "channel went down with a request in flight"
    );
    cp.held.release.notify_one();
    let resp = tokio::time::timeout(patience(WAIT), in_flight).await???;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.body().as_ref(), b"done");

    let mut status = cp.status.clone();
    cp.stop().await?;
    assert!(matches!(
        status.borrow_and_update().channel(addr),
        Some(ChannelState::Down { .. })
    ));
    Ok(())
}

/// Traffic snapshots posted on a channel: the fake gateway sends what a broken or hostile
/// instance could (the real gateway's posts are covered by cmg-e2e's reports test).
#[tokio::test]
async fn traffic_snapshots_are_checked_and_the_newest_kept() -> Result<()> {
    use cmg_proto::report::{MAX_REPORT_BYTES, TRAFFIC_PATH};

    let _t = tracing_guard();
    let pki = Pki::new()?;
    let mut gw = FakeGateway::start(&pki, NORMAL).await?;
    let mut cp = start_connector(&pki, &[gw.addr]).await?;
    let mut ch = gw.next_channel().await?;
    wait_all_up(&mut cp.status, patience(WAIT)).await?;

    let snapshot = |instance: &str, seq: u64, ok: u64| {
        serde_json::json!({
            "instance": instance, "boot_id": "b1", "seq": seq, "taken_at": 1_700_000_000u64,
            "endpoints": [{"prefix": MP_PREFIX, "status_classes": [0, ok, 0, 0, 0],
                           "bytes_in": 1, "bytes_out": 2, "latency_us_sum": 3}],
        })
        .to_string()
    };
    let refused = |resp: &Response<Bytes>, status: StatusCode, code: &str| -> Result<()> {
        ensure!(resp.status() == status, "{:?}", resp);
        ensure!(resp.headers()["cmg-error"] == code, "{:?}", resp.headers());
        Ok(())
    };
    let post = Method::POST;

    // Not JSON; unknown fields; another instance than the hello's; too large.
    let resp = ch
        .send(post.clone(), TRAFFIC_PATH, Bytes::from_static(b"{not json"))
        .await?;
    refused(&resp, StatusCode::BAD_REQUEST, "CMGConnector_BadReport")?;
    let mut extra: serde_json::Value = serde_json::from_str(&snapshot("gw-test-0", 1, 1))?;
    extra["extra"] = serde_json::json!(true);
    let resp = ch
        .send(post.clone(), TRAFFIC_PATH, Bytes::from(extra.to_string()))
        .await?;
    refused(&resp, StatusCode::BAD_REQUEST, "CMGConnector_BadReport")?;
    let resp = ch
        .send(
            post.clone(),
            TRAFFIC_PATH,
            Bytes::from(snapshot("gw-other", 1, 1)),
        )
        .await?;
    refused(&resp, StatusCode::BAD_REQUEST, "CMGConnector_BadReport")?;
    let big = Bytes::from(vec![b' '; MAX_REPORT_BYTES + 1]);
    let resp = ch.send(post.clone(), TRAFFIC_PATH, big).await?;
    refused(
        &resp,
        StatusCode::PAYLOAD_TOO_LARGE,
        "CMGConnector_ReportTooLarge",
    )?;
    assert!(cp.traffic.newest().is_empty(), "nothing stored");

    // A good one is kept; an older seq of the same boot does not replace it.
    let resp = ch
        .send(
            post.clone(),
            TRAFFIC_PATH,
            Bytes::from(snapshot("gw-test-0", 2, 7)),
        )
        .await?;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let resp = ch
        .send(
            post.clone(),
            TRAFFIC_PATH,
            Bytes::from(snapshot("gw-test-0", 1, 1)),
        )
        .await?;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let held = cp.traffic.newest();
    assert_eq!(held.len(), 1);
    assert_eq!(
        (held[0].seq, held[0].endpoints[0].status_classes[1]),
        (2, 7)
    );

    // The channel is still usable after the refusals.
    let resp = ch
        .send(Method::GET, &format!("{MP_PREFIX}/x"), Bytes::new())
        .await?;
    assert_eq!(resp.status(), StatusCode::OK);

    // The admin listener counts them and says the connection point is ready.
    let metrics = admin_get(cp.admin, "/metrics").await?;
    let line = |name: &str, outcome: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(name) && l.contains(&format!("outcome=\"{outcome}\"")))
            .map(|l| l.rsplit(' ').next().unwrap_or_default().to_owned())
    };
    let snapshots = "cmg_connector_traffic_snapshots_total";
    assert_eq!(line(snapshots, "failed").as_deref(), Some("4"), "{metrics}");
    assert_eq!(line(snapshots, "ok").as_deref(), Some("2"), "{metrics}");
    assert!(
        metrics.contains("cmg_connector_channels_up{connection_point=\"cp1\"} 1"),
        "{metrics}"
    );
    // The shared listener's additions: OpenMetrics content type, build info, /live.
    assert!(
        metrics.contains("content-type: application/openmetrics-text; version=1.0.0"),
        "{metrics}"
    );
    let build = format!(
        "cmg_build_info{{version=\"{}\",role=\"connector\"}} 1\n",
        env!("CARGO_PKG_VERSION")
    );
    assert!(metrics.contains(&build), "{metrics}");
    assert!(metrics.ends_with("# EOF\n"), "{metrics}");
    let ready = admin_get(cp.admin, "/ready").await?;
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
    let live = admin_get(cp.admin, "/live").await?;
    assert!(live.starts_with("HTTP/1.1 200"), "{live}");
    let channels = admin_get(cp.admin, "/channels").await?;
    assert!(channels.contains("up instance=gw-test-0"), "{channels}");
    cp.stop().await
}

/// One plain HTTP/1.1 GET on the admin listener; the whole answer as text.
async fn admin_get(addr: SocketAddr, path: &str) -> Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut tcp = tokio::net::TcpStream::connect(addr).await?;
        let head = format!("GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n");
        tcp.write_all(head.as_bytes()).await?;
        let mut out = Vec::new();
        tcp.read_to_end(&mut out).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&out).into_owned())
    };
    Ok(tokio::time::timeout(patience(WAIT), exchange)
        .await
        .context("admin answer in time")??)
}
