//! The TCP half of the connector: whatever the URI says, dial one fixed socket address.
//! TLS (SNI and certificate name from the URI host, which is the configured server
//! name) is layered on top by `hyper_rustls::HttpsConnector`.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Uri;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Dials `addr` for every connection the pool asks for, with TCP_NODELAY.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FixedAddr {
    pub(crate) addr: SocketAddr,
}

impl tower_service::Service<Uri> for FixedAddr {
    type Response = TokioIo<TcpStream>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: Uri) -> Self::Future {
        let addr = self.addr;
        Box::pin(async move {
            let stream = TcpStream::connect(addr).await?;
            cmg_core::net::tune(&stream);
            tracing::debug!(%addr, "connected");
            Ok(TokioIo::new(stream))
        })
    }
}
