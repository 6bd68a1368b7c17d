//! [`HttpsClient`]: a pooled hyper client bound to one server address and name.

use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;
use http::uri::{Authority, Scheme};
use http::{Request, Response, Uri};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::ServerName;

use crate::connect::FixedAddr;
use crate::tls::{tls_config, ClientTls, ALPN_H2, ALPN_HTTP11};
use crate::ClientError;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type ReqBody = UnsyncBoxBody<Bytes, BoxError>;

/// An HTTPS client for one server: dials `connect_to`, verifies the certificate for
/// `server_name`, and sends `Host`/`:authority` = `server_name`. Cloning shares the pool.
#[derive(Debug, Clone)]
pub struct HttpsClient {
    inner: Client<HttpsConnector<FixedAddr>, ReqBody>,
    authority: Authority,
}

impl HttpsClient {
    /// `connect_to`: the socket address to dial; `server_name`: SNI, certificate name
    /// check and `Host`/`:authority` (the demo's service name is not in DNS). `http2`:
    /// offer only `h2` via ALPN when true, only `http/1.1` when false.
    pub fn new(
        tls: &ClientTls,
        connect_to: SocketAddr,
        server_name: &str,
        http2: bool,
    ) -> Result<Self, ClientError> {
        ServerName::try_from(server_name.to_owned())
            .map_err(|_| ClientError::InvalidServerName(server_name.to_owned()))?;
        // An IPv6 literal needs brackets in an authority; rustls gets it back unbracketed
        // from hyper-rustls's default server-name resolver.
        let host = match server_name.parse::<IpAddr>() {
            Ok(IpAddr::V6(v6)) => format!("[{v6}]"),
            _ => server_name.to_owned(),
        };
        let authority = Authority::try_from(host)
            .map_err(|_| ClientError::InvalidServerName(server_name.to_owned()))?;
        let alpn = if http2 { ALPN_H2 } else { ALPN_HTTP11 };
        let config = tls_config(tls, vec![alpn.to_vec()])?;
        let mut connector = HttpsConnector::from((FixedAddr { addr: connect_to }, config));
        connector.enforce_https();
        let mut builder = Client::builder(TokioExecutor::new());
        builder.http2_only(http2);
        Ok(Self {
            inner: builder.build(connector),
            authority,
        })
    }

    /// Sends `req`. An origin-form URI (`/path?q`) is sent to `https://<server name>/path?q`;
    /// an absolute URI keeps its path and query but is still sent to this client's server.
    pub async fn request<B>(&self, req: Request<B>) -> Result<Response<Incoming>, ClientError>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let (mut parts, body) = req.into_parts();
        parts.uri = self.absolute(&parts.uri)?;
        let body = body.map_err(Into::into).boxed_unsync();
        Ok(self.inner.request(Request::from_parts(parts, body)).await?)
    }

    /// `GET path_and_query` with an empty body.
    pub async fn get(&self, path_and_query: &str) -> Result<Response<Incoming>, ClientError> {
        let req = Request::get(path_and_query)
            .body(Empty::<Bytes>::new())
            .map_err(|_| ClientError::InvalidUri(path_and_query.to_owned()))?;
        self.request(req).await
    }

    fn absolute(&self, uri: &Uri) -> Result<Uri, ClientError> {
        let path_and_query = uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/"));
        Uri::builder()
            .scheme(Scheme::HTTPS)
            .authority(self.authority.clone())
            .path_and_query(path_and_query)
            .build()
            .map_err(|_| ClientError::InvalidUri(uri.to_string()))
    }
}

/// Reads a whole response body into memory.
pub async fn collect_body(resp: Response<Incoming>) -> Result<Bytes, ClientError> {
    Ok(resp.into_body().collect().await?.to_bytes())
}
