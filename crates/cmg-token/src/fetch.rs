//! The fetcher for key documents (OIDC discovery, JWKS): `cmg_core::fetch`'s bounded
//! client over rustls, asking for JSON as `cmg-token`.
//!
//! The bounds (total deadline, size cap by header and while streaming, no redirects) are
//! cmg-core's; this type only fixes the transport (HTTPS, plain HTTP allowed: URL policy
//! such as https-only or loopback exceptions belongs to the caller) and the headers. It
//! has no connect timeout of its own: the total deadline bounds the connect too.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

pub use cmg_core::fetch::{FetchError, FetchLimits};

/// The connect bound: no tighter than a key document's usual total deadline, so only
/// the per-request deadline cuts a slow connect short, as before the fetchers merged.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A pooled HTTP/1.1 client over rustls for JSON key documents. Cheap to clone.
#[derive(Debug, Clone)]
pub struct HttpFetcher(cmg_core::fetch::HttpFetcher);

impl HttpFetcher {
    /// A fetcher that trusts what `tls` trusts (the caller picks the roots: system store,
    /// a bundled set, or a test CA). Plain `http://` URLs are fetched too; refuse them
    /// before calling [`get`](Self::get) where they are not allowed.
    pub fn new(tls: Arc<rustls::ClientConfig>) -> Self {
        Self::configure(cmg_core::fetch::HttpFetcher::https(tls, &connect_only()))
    }

    /// A fetcher whose TLS trusts exactly `roots` (ring provider, TLS 1.2 and 1.3).
    pub fn with_roots(roots: rustls::RootCertStore) -> Result<Self, FetchError> {
        cmg_core::fetch::HttpFetcher::with_roots(roots, &connect_only()).map(Self::configure)
    }

    fn configure(inner: cmg_core::fetch::HttpFetcher) -> Self {
        Self(
            inner
                .with_user_agent("cmg-token")
                .with_accept("application/json"),
        )
    }

    /// GET `url`; the body on `200 OK`, within `limits`.
    pub async fn get(&self, url: &str, limits: FetchLimits) -> Result<Bytes, FetchError> {
        self.0.get(url, &limits).await
    }
}

fn connect_only() -> FetchLimits {
    FetchLimits {
        connect_timeout: CONNECT_TIMEOUT,
        ..FetchLimits::default()
    }
}
