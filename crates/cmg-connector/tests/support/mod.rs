//! Shared by the connection point's integration tests: a test-only fake gateway (the
//! HTTP/2-client half of the channel protocol, over tokio-rustls with rcgen-made
//! certificates), plain-HTTP roles that echo, hang or hold a request, the connection
//! point's config written from them, and a running connection point. Each test binary
//! uses part of it.
#![allow(dead_code)]

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

use cmg_connector::{Config, ConnectorStatus};
use cmg_core::shutdown::Shutdown;
use cmg_proto::{channel, headers};
use cmg_test_support::patience;

pub const SERVICE: &str = "cmg.example.test";
pub const SITE: &str = "P01";
pub const CP_ID: &str = "cp1";
pub const MP_PREFIX: &str = "/CCM_Proxy_MutualAuth/72057594037927939/CCM_System";
pub const DOWN_PREFIX: &str = "/CCM_Proxy_MutualAuth/1/SMS_MP";
pub const HANG_PREFIX: &str = "/CCM_Proxy_MutualAuth/2/CCM_STS";
pub const HELD_PREFIX: &str = "/CCM_Proxy_MutualAuth/3/CCM_Incoming";
/// Bound on every wait in these tests, before `CMG_TEST_PATIENCE` scales it.
pub const WAIT: Duration = Duration::from_secs(5);

pub fn tracing_guard() -> tracing::subscriber::DefaultGuard {
    let subscriber = tracing_subscriber::fmt()
        .with_test_writer()
        .with_env_filter("cmg_connector=debug")
        .finish();
    tracing::subscriber::set_default(subscriber)
}

// ---------------------------------------------------------------------------------------
// Test PKI: a site CA issuing the connection point's client certificate, and a gateway CA
// issuing the service's server certificate.

pub struct Pki {
    pub site_ca_pem: String,
    pub gateway_ca_pem: String,
    pub connector_cert_pem: String,
    pub connector_key_pem: String,
    pub server_cert_pem: String,
    pub server_key_pem: String,
}

pub fn ca(name: &str) -> Result<CertifiedIssuer<'static, KeyPair>> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    Ok(CertifiedIssuer::self_signed(params, KeyPair::generate()?)?)
}

impl Pki {
    pub fn new() -> Result<Self> {
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
    pub fn gateway_tls(&self, alpn: bool) -> Result<rustls::ServerConfig> {
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
pub struct Behaviour {
    /// Select ALPN `cmg-channel/1`.
    pub alpn: bool,
    /// Send the hello.
    pub hello: bool,
}

pub const NORMAL: Behaviour = Behaviour {
    alpn: true,
    hello: true,
};

/// One established channel as the fake gateway sees it.
pub struct FakeChannel {
    pub sender: SendRequest<Full<Bytes>>,
    pub connection_id: String,
    /// The `cmg-connection-point` header of the hello answer.
    pub connection_point: String,
    /// Cancel to drop the channel (TCP closed without GOAWAY).
    pub kill: CancellationToken,
}

pub struct FakeGateway {
    pub addr: SocketAddr,
    pub channels: mpsc::Receiver<FakeChannel>,
    pub stop: CancellationToken,
}

impl Drop for FakeGateway {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl FakeGateway {
    pub async fn start(pki: &Pki, behaviour: Behaviour) -> Result<Self> {
        Self::start_at(pki, behaviour, "127.0.0.1:0".parse()?).await
    }

    /// A fake gateway on `addr` (a port known beforehand, e.g. one that was dead).
    pub async fn start_at(pki: &Pki, behaviour: Behaviour, addr: SocketAddr) -> Result<Self> {
        let listener = TcpListener::bind(addr).await?;
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

    pub async fn serve(
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

    pub async fn next_channel(&mut self) -> Result<FakeChannel> {
        tokio::time::timeout(patience(WAIT), self.channels.recv())
            .await
            .context("no channel from the connection point in time")?
            .context("fake gateway stopped")
    }
}

impl FakeChannel {
    /// Sends one client request on the channel; the response with its whole body.
    pub async fn send(
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
// The role: echoes the body and reports the URI, Host and cmg headers it received, and
// the connection's peer address (`x-role-peer`: which keep-alive connection it came on).

pub async fn start_role() -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((tcp, peer)) = listener.accept().await {
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |req: Request<Incoming>| async move {
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
                            .header("x-role-peer", peer.to_string())
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
pub async fn start_hanging_role() -> Result<SocketAddr> {
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
pub struct HeldRole {
    pub addr: SocketAddr,
    /// One message per request that reached the role.
    pub arrived: mpsc::Receiver<()>,
    pub release: Arc<tokio::sync::Notify>,
}

pub async fn start_held_role() -> Result<HeldRole> {
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
pub async fn dead_addr() -> Result<SocketAddr> {
    let l = TcpListener::bind("127.0.0.1:0").await?;
    Ok(l.local_addr()?)
}

// ---------------------------------------------------------------------------------------
// The connection point under test.

/// Writes owner-only (keys among these files are refused otherwise).
pub fn write(dir: &Path, name: &str, text: &str) -> Result<()> {
    cmg_core::private_file::write(&dir.join(name), text.as_bytes()).with_context(|| name.to_owned())
}

/// Where the mappings point.
pub struct Roles {
    pub echo: SocketAddr,
    pub dead: SocketAddr,
    pub hang: SocketAddr,
    pub held: SocketAddr,
}

pub fn connector_config(
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

pub struct Running {
    pub status: tokio::sync::watch::Receiver<ConnectorStatus>,
    pub traffic: cmg_connector::traffic::HeldTraffic,
    pub admin: SocketAddr,
    pub shutdown: Shutdown,
    pub task: tokio::task::JoinHandle<()>,
    pub held: HeldRole,
    pub _dir: tempfile::TempDir,
}

/// A connection point with one data-path thread: one channel (lane) per gateway, which
/// is what most tests here follow.
pub async fn start_connector(pki: &Pki, gateways: &[SocketAddr]) -> Result<Running> {
    start_connector_with(pki, gateways, 1).await
}

pub async fn start_connector_with(
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
    run_connector(config, dir, held).await
}

/// Test roles and a config for them in `dir`, to adjust before [`run_connector`].
pub async fn connector_parts(
    pki: &Pki,
    gateways: &[SocketAddr],
) -> Result<(Config, tempfile::TempDir, HeldRole)> {
    let dir = tempfile::tempdir()?;
    let held = start_held_role().await?;
    let roles = Roles {
        echo: start_role().await?,
        dead: dead_addr().await?,
        hang: start_hanging_role().await?,
        held: held.addr,
    };
    let mut config = connector_config(dir.path(), pki, gateways, &roles)?;
    // One lane per instance, as `start_connector`.
    config.threads = 1;
    Ok((config, dir, held))
}

/// Binds and runs a connection point with `config` (its files in `dir`).
pub async fn run_connector(
    config: Config,
    dir: tempfile::TempDir,
    held: HeldRole,
) -> Result<Running> {
    // The proxy is the test's to choose, never the environment's.
    let bound = cmg_connector::bind_with_env(config, |_| None).await?;
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
    pub async fn stop(self) -> Result<()> {
        self.shutdown.token.cancel();
        tokio::time::timeout(patience(WAIT), self.task)
            .await
            .context("connection point did not stop in time")??;
        Ok(())
    }
}

/// One plain HTTP/1.1 GET on the admin listener; the whole answer as text.
pub async fn admin_get(addr: SocketAddr, path: &str) -> Result<String> {
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
