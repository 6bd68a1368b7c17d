//! A real OCSP responder for tests: OpenSSL's (`openssl ocsp -index ... -reqin`),
//! behind a small HTTP server on 127.0.0.1.
//!
//! `openssl ocsp -port` can only listen on every interface, so the HTTP side is ours
//! (loopback only) and each POSTed request is answered by running OpenSSL's responder
//! on it (index file, CA, signing certificate): the status logic, the signature and the
//! nonce echo are OpenSSL's, nothing is mocked. Also a test PKI made for it: a root CA
//! without CRL distribution points, client certificates whose AIA names the responder,
//! a delegated responder certificate (id-kp-OCSPSigning) and a rogue one.
//!
//! Needs the `openssl` command (`.ci/run` installs it). It checks nothing itself: the
//! tests judge what the verifier under test makes of the answers.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
};
use time::{Duration, OffsetDateTime};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// Serial numbers of the client certificates (hex, as in the index file).
pub const GOOD: &str = "1001";
pub const REVOKED: &str = "1002";
pub const UNKNOWN: &str = "1003";

/// Files of the OCSP test PKI.
#[derive(Debug)]
pub struct OcspPki {
    pub dir: tempfile::TempDir,
    pub ca: PathBuf,
    pub ca_key: PathBuf,
    pub responder: PathBuf,
    pub responder_key: PathBuf,
    pub rogue: PathBuf,
    pub rogue_key: PathBuf,
    pub index: PathBuf,
}

impl OcspPki {
    /// `good.pem`/`good.key`, `revoked.*` and `unknown.*`: client certificates whose
    /// AIA names `responder_url`.
    pub fn client(&self, name: &str) -> (PathBuf, PathBuf) {
        (
            self.dir.path().join(format!("{name}.pem")),
            self.dir.path().join(format!("{name}.key")),
        )
    }
}

fn dn(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

fn key() -> KeyPair {
    KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key")
}

/// DER of an AuthorityInfoAccess extension value with one OCSP URL.
fn aia(url: &str) -> Vec<u8> {
    fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
        assert!(body.len() < 128, "short form only");
        let mut v = vec![tag, body.len() as u8];
        v.extend_from_slice(body);
        v
    }
    // id-ad-ocsp 1.3.6.1.5.5.7.48.1
    let oid = tlv(0x06, &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01]);
    let uri = tlv(0x86, url.as_bytes());
    let desc = tlv(0x30, &[oid, uri].concat());
    tlv(0x30, &desc)
}

/// Generates the PKI in a new temporary directory.
pub fn generate(responder_url: &str) -> OcspPki {
    let now = OffsetDateTime::now_utc();
    let dir = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        // Owner only: key files others may read are refused.
        cmg_core::private_file::write(&path, text.as_bytes()).expect("write");
        path
    };

    let mut ca_params = CertificateParams::default();
    ca_params.distinguished_name = dn("cmg OCSP test CA");
    ca_params.serial_number = Some(SerialNumber::from_slice(&[0x01]));
    ca_params.not_before = now - Duration::hours(1);
    ca_params.not_after = now + Duration::days(30);
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_key = key();
    let ca_cert = ca_params.self_signed(&ca_key).expect("ca");
    let ca = write("ca.pem", &ca_cert.pem());
    let ca_key_path = write("ca.key", &ca_key.serialize_pem());
    let issuer = Issuer::new(ca_params, ca_key);

    let leaf = |cn: &str, serial: &[u8], ekus: Vec<ExtendedKeyUsagePurpose>, url: Option<&str>| {
        let mut params = CertificateParams::new(vec![]).expect("params");
        params.distinguished_name = dn(cn);
        params.serial_number = Some(SerialNumber::from_slice(serial));
        params.not_before = now - Duration::hours(1);
        params.not_after = now + Duration::days(10);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = ekus;
        // RFC 5280 section 4.2.1.1, which cmg-pki's strict checks enforce.
        params.use_authority_key_identifier_extension = true;
        if let Some(url) = url {
            params
                .custom_extensions
                .push(CustomExtension::from_oid_content(
                    &[1, 3, 6, 1, 5, 5, 7, 1, 1],
                    aia(url),
                ));
        }
        let key = key();
        let cert = params.signed_by(&key, &issuer).expect("leaf");
        (cert.pem(), key.serialize_pem())
    };
    let mut index = String::new();
    let expiry = "991231235959Z";
    for (name, serial) in [
        ("good", [0x10, 0x01]),
        ("revoked", [0x10, 0x02]),
        ("unknown", [0x10, 0x03]),
    ] {
        let (pem, key) = leaf(
            name,
            &serial,
            vec![ExtendedKeyUsagePurpose::ClientAuth],
            Some(responder_url),
        );
        write(&format!("{name}.pem"), &pem);
        write(&format!("{name}.key"), &key);
        let hex = format!("{:02X}{:02X}", serial[0], serial[1]);
        match name {
            "good" => index.push_str(&format!("V\t{expiry}\t\t{hex}\tunknown\t/CN={name}\n")),
            "revoked" => index.push_str(&format!(
                "R\t{expiry}\t240101000000Z\t{hex}\tunknown\t/CN={name}\n"
            )),
            _ => {} // not in the index: the responder answers "unknown"
        }
    }
    let (responder_pem, responder_key) = leaf(
        "cmg OCSP test responder",
        &[0x20, 0x01],
        vec![ExtendedKeyUsagePurpose::OcspSigning],
        None,
    );

    // A responder certificate the CA never issued (self-signed, same EKU).
    let mut rogue_params = CertificateParams::new(vec![]).expect("params");
    rogue_params.distinguished_name = dn("cmg OCSP test CA");
    rogue_params.not_before = now - Duration::hours(1);
    rogue_params.not_after = now + Duration::days(10);
    rogue_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::OcspSigning];
    let rogue_key = key();
    let rogue_cert = rogue_params.self_signed(&rogue_key).expect("rogue");

    OcspPki {
        ca,
        ca_key: ca_key_path,
        responder: write("responder.pem", &responder_pem),
        responder_key: write("responder.key", &responder_key),
        rogue: write("rogue.pem", &rogue_cert.pem()),
        rogue_key: write("rogue.key", &rogue_key.serialize_pem()),
        index: write("index.txt", &index),
        dir,
    }
}

/// Which key OpenSSL signs the answers with.
#[derive(Debug, Clone, Copy)]
pub enum Signer {
    /// The CA itself.
    Ca,
    /// The delegated responder certificate (issued by the CA, id-kp-OCSPSigning).
    Delegated,
    /// A key the CA never authorized.
    Rogue,
}

/// A bound loopback port for the responder; its URL goes into the certificates.
#[derive(Debug)]
pub struct Bound {
    listener: TcpListener,
    addr: SocketAddr,
}

impl Bound {
    pub async fn bind() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        Self { listener, addr }
    }

    pub fn url(&self) -> String {
        format!("http://{}/ocsp", self.addr)
    }

    /// Serves OpenSSL's answers for `pki`, signed by `signer`, with nextUpdate
    /// `next_minutes` after thisUpdate.
    pub fn serve(self, pki: &OcspPki, signer: Signer, next_minutes: u32) -> Responder {
        let (cert, key) = match signer {
            Signer::Ca => (pki.ca.clone(), pki.ca_key.clone()),
            Signer::Delegated => (pki.responder.clone(), pki.responder_key.clone()),
            Signer::Rogue => (pki.rogue.clone(), pki.rogue_key.clone()),
        };
        let cfg = Arc::new(Cfg {
            index: pki.index.clone(),
            ca: pki.ca.clone(),
            cert,
            key,
            next_minutes,
            work: pki.dir.path().to_owned(),
            hits: AtomicU64::new(0),
        });
        let task = tokio::spawn(serve(self.listener, cfg.clone()));
        Responder {
            addr: self.addr,
            cfg,
            task,
        }
    }
}

#[derive(Debug)]
struct Cfg {
    index: PathBuf,
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
    next_minutes: u32,
    work: PathBuf,
    hits: AtomicU64,
}

/// The running responder; dropping it closes the port.
#[derive(Debug)]
pub struct Responder {
    pub addr: SocketAddr,
    cfg: Arc<Cfg>,
    task: JoinHandle<()>,
}

impl Responder {
    /// OCSP requests answered so far.
    pub fn hits(&self) -> u64 {
        self.cfg.hits.load(Ordering::Relaxed)
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(listener: TcpListener, cfg: Arc<Cfg>) {
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let cfg = cfg.clone();
        conns.spawn(async move {
            let svc = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                let cfg = cfg.clone();
                async move {
                    let body = req
                        .into_body()
                        .collect()
                        .await
                        .map(|b| b.to_bytes())
                        .unwrap_or_default();
                    Ok::<_, Infallible>(answer(&cfg, &body).await)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
        while conns.try_join_next().is_some() {}
    }
}

async fn answer(cfg: &Cfg, request: &[u8]) -> http::Response<Full<Bytes>> {
    let n = cfg.hits.fetch_add(1, Ordering::Relaxed);
    let req_path = cfg.work.join(format!("req-{n}.der"));
    let resp_path = cfg.work.join(format!("resp-{n}.der"));
    std::fs::write(&req_path, request).expect("write request");
    let args: Vec<String> = [
        ("-index", &cfg.index),
        ("-CA", &cfg.ca),
        ("-rsigner", &cfg.cert),
        ("-rkey", &cfg.key),
        ("-reqin", &req_path),
        ("-respout", &resp_path),
    ]
    .iter()
    .flat_map(|(flag, p)| [flag.to_string(), path(p).to_owned()])
    .chain(["-nmin".to_owned(), cfg.next_minutes.to_string()])
    .collect();
    // OpenSSL's responder in request/response file mode (see the module comment).
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("openssl")
            .arg("ocsp")
            .args(&args)
            .output()
    })
    .await
    .expect("join")
    .expect("run openssl ocsp");
    let mut resp = match std::fs::read(&resp_path) {
        Ok(bytes) if out.status.success() => http::Response::new(Full::new(Bytes::from(bytes))),
        _ => {
            eprintln!(
                "openssl ocsp failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let mut r = http::Response::new(Full::new(Bytes::new()));
            *r.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
            r
        }
    };
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/ocsp-response"),
    );
    resp
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}
