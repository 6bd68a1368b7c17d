//! End-to-end scenarios of cmg over a real [`Cluster`] on loopback: the tests live in
//! `tests/`, one file per concern (paths, authentication, hostile requests, failover).
//! This library holds only what those scenarios share: starting a cluster in its own
//! temporary directory, tagged requests whose arrival (or absence) can be looked up in
//! the management point's journal ([`journal`]), deterministic bodies, and raw TLS
//! HTTP/1.1 exchanges and HTTP/2 frames for what no well-behaved client would send
//! ([`raw`], [`h2raw`]), and a rogue connection point that does the same on a channel
//! ([`rogue`]).
//!
//! It holds no global state: each test owns its cluster. Handles shared with other
//! crates' tests (the Azure Storage emulator, the OIDC provider, bounded waits) live in
//! `cmg-test-support`.

pub mod h2raw;
pub mod journal;
pub mod memory;
pub mod raw;
pub mod rogue;

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context as _;
use bytes::Bytes;
use cmg_cluster::{Cluster, ClusterSpec};
use futures_util::stream;
use http::{HeaderName, Method, Request};
use http_body::Frame;
use http_body_util::{Full, StreamBody};
use sha2::{Digest, Sha256};

pub use cmg_cluster::clients::Cert;
pub use cmg_cluster::spec;

/// The header every test request carries, so the journal can say whether it arrived.
pub const TAG: HeaderName = HeaderName::from_static("x-e2e-tag");

/// A running cluster and the temporary directory it lives in (removed on drop, after
/// the cluster: fields drop in declaration order).
#[derive(Debug)]
pub struct TestCluster {
    pub cluster: Cluster,
    _dir: tempfile::TempDir,
}

impl TestCluster {
    /// Generates a demo PKI and starts the demo topology (MP, 2 gateways, 2 connection
    /// points); returns once every channel is up.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(|_| {}).await
    }

    /// As [`Self::start`], after `adjust` changed the demo spec.
    pub async fn start_with(adjust: impl FnOnce(&mut ClusterSpec)) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir().context("tempdir")?;
        let mut spec = ClusterSpec::demo(dir.path().join("cluster"));
        adjust(&mut spec);
        let cluster = Cluster::start(spec).await.context("start cluster")?;
        Ok(Self { cluster, _dir: dir })
    }

    /// Stops every role gracefully.
    pub async fn shutdown(self) {
        self.cluster.shutdown().await;
    }
}

impl std::ops::Deref for TestCluster {
    type Target = Cluster;
    fn deref(&self) -> &Cluster {
        &self.cluster
    }
}

impl std::ops::DerefMut for TestCluster {
    fn deref_mut(&mut self) -> &mut Cluster {
        &mut self.cluster
    }
}

/// A tag unique within the test process: `<what>-<n>`.
pub fn tag(what: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("{what}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// `CCM_POST`, the method ConfigMgr clients use for `CCM_System/request`.
pub fn ccm_post() -> Method {
    Method::from_bytes(b"CCM_POST").expect("CCM_POST is a valid method token")
}

/// `BITS_POST`, the method of the BITS upload protocol.
pub fn bits_post() -> Method {
    Method::from_bytes(b"BITS_POST").expect("BITS_POST is a valid method token")
}

/// The published `CCM_System/request` path.
pub fn system_request() -> String {
    format!("{}/request", spec::external_prefix("CCM_System"))
}

/// A request with a whole (Content-Length) body and the test tag.
pub fn tagged(
    method: Method,
    path: &str,
    tag: &str,
    body: impl Into<Bytes>,
) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(path)
        .header(TAG, tag)
        .body(Full::new(body.into()))
        .expect("a test request is well formed")
}

/// The body type of [`streamed`].
pub type Streamed = StreamBody<stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>>;

/// `data` as a body of `chunk`-byte frames with no size hint: HTTP/1.1 sends it chunked.
pub fn streamed(data: &Bytes, chunk: usize) -> Streamed {
    let frames: Vec<Result<Frame<Bytes>, Infallible>> = (0..data.len())
        .step_by(chunk.max(1))
        .map(|at| Ok(Frame::data(data.slice(at..(at + chunk).min(data.len())))))
        .collect();
    StreamBody::new(stream::iter(frames))
}

/// `len` deterministic pseudo-random bytes (xorshift), different for each `seed`.
pub fn pattern(len: usize, seed: u64) -> Bytes {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    Bytes::from(out)
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The subject DN of the cluster's valid client certificate, as the gateway reports it.
pub fn client_subject(cluster: &Cluster) -> anyhow::Result<String> {
    let certs = cmg_pki::pem::load_certs(&cluster.pki.client_cert).context("client cert")?;
    let leaf = certs.first().context("client cert file is empty")?;
    Ok(cmg_pki::describe::describe(leaf)
        .context("describe client cert")?
        .subject)
}

/// A response header as a string (empty when absent or not text).
pub fn header_str<'a, T>(resp: &'a http::Response<T>, name: &str) -> &'a str {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}
