//! The client side of cmg: a small HTTPS client that dials one fixed socket address,
//! checks the server certificate against given roots under a given service name (which
//! need not be in DNS), optionally presents a client certificate, and speaks HTTP/1.1 or
//! HTTP/2 over a keep-alive pool. The demo, the tests and the `cmg client` agent use it.
//!
//! It does not resolve names, follow redirects, retry, or hold any agent logic (policy,
//! registration, tokens); those sit on top of [`HttpsClient`].

mod connect;
mod error;
mod https;
mod tls;

pub use error::ClientError;
pub use https::{collect_body, HttpsClient};
pub use tls::{tls_config, ClientTls, ALPN_H2, ALPN_HTTP11};
