//! Test support inside the crate: a [`Gateway`] state built from config text with a
//! generated server certificate, and client connections without sockets, so the
//! request path runs in memory.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use http::HeaderValue;
use tempfile::TempDir;

use crate::client::{Activity, ConnInfo};
use crate::config::Config;
use crate::identity::{AuthMethod, ClientIdentity};
use crate::state::Gateway;
use crate::tls::TlsManager;

pub(crate) const SERVICE: &str = "cmg.example.test";
pub(crate) const SITE_GUID: &str = "6f1c3a7e-0b5d-4c2a-9e8f-1a2b3c4d5e6f";

/// A gateway state and the directory its files live in.
pub(crate) struct TestGateway {
    pub gw: Arc<Gateway>,
    /// Kept so the files outlive the state that read them.
    _dir: TempDir,
}

/// cmg-token's committed test keys (`site-key-1.pem` signs, `.pub.pem` verifies).
pub(crate) fn token_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../cmg-token/tests/fixtures")
        .join(name)
}

/// A gateway whose config is the minimum plus `extra` (TOML appended at the end, so
/// tables only), with a fresh self-signed server certificate that also serves as the
/// site CA. No client roots: certificates are not requested.
pub(crate) fn gateway(extra: &str) -> TestGateway {
    let dir = tempfile::tempdir().expect("tempdir");
    let ck = rcgen::generate_simple_self_signed(vec![SERVICE.to_owned()]).expect("cert");
    std::fs::write(dir.path().join("server.pem"), ck.cert.pem()).expect("write cert");
    cmg_core::private_file::write(
        &dir.path().join("server.key"),
        ck.signing_key.serialize_pem().as_bytes(),
    )
    .expect("write key");
    std::fs::copy(
        token_fixture("site-key-1.pub.pem"),
        dir.path().join("site.pub.pem"),
    )
    .expect("copy key");
    let text = format!(
        "instance = \"gw1\"\nservice_name = \"{SERVICE}\"\n\
         [listen]\nclient = \"127.0.0.1:0\"\n\
         [tls]\ncert = \"server.pem\"\nkey = \"server.key\"\nreload_interval = \"0s\"\n\
         [channel]\nsite_ca = [\"server.pem\"]\n{extra}"
    );
    let config = Config::from_toml(&dir.path().join("gateway.toml"), &text).expect("config");
    let tls = Arc::new(TlsManager::new(&config).expect("tls"));
    let gw = Arc::new(Gateway::new(&config, tls).expect("gateway"));
    TestGateway { gw, _dir: dir }
}

/// A published URL table entry for `extra`.
pub(crate) fn published(prefix: &str, max_body: u64) -> String {
    format!(
        "[[published_url]]\nprefix = \"{prefix}\"\nsite = \"DEM\"\nmax_body_bytes = {max_body}\n"
    )
}

/// `[tokens]` accepting the site's tokens signed with `site-key-1.pem`.
pub(crate) fn site_tokens() -> String {
    format!("[tokens]\nsite_guid = \"{SITE_GUID}\"\nsite_keys = [\"site.pub.pem\"]\n")
}

/// An HTTP/2 client connection (no HTTP/1.1 guard), with a certificate or without.
pub(crate) fn connection(certificate: bool) -> Arc<ConnInfo> {
    let peer: SocketAddr = "192.0.2.7:50000".parse().expect("addr");
    Arc::new(ConnInfo {
        peer,
        peer_ip: HeaderValue::from_static("192.0.2.7"),
        identity: certificate.then(|| ClientIdentity {
            header: HeaderValue::from_static("subject=\"CN=device1\"; sha256=00"),
            subject: "CN=device1".into(),
            method: AuthMethod::Certificate,
        }),
        activity: Activity::new(),
        h1_guard: None,
        token: Default::default(),
        shard: 0,
    })
}
