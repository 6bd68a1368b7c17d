//! Going out through an HTTP CONNECT proxy, as on-premises networks require: the
//! connection point's channels and site calls, and the site's own outbound fetches.
//!
//! The proxy comes from a config key (it wins) or from the environment (`HTTPS_PROXY`,
//! then `https_proxy`, `ALL_PROXY`, `all_proxy`), with `NO_PROXY` (or `no_proxy`) naming
//! the hosts reached directly: `*` for all, a host name (which also covers its
//! subdomains; a leading dot is allowed), an IP address, or an IP network in CIDR form.
//! Every connection, plain HTTP included, is a `CONNECT host:port` tunnel: one code path,
//! and the proxy never sees a request in clear. `http://user:password@proxy:port` sends
//! `Proxy-Authorization: Basic`; the password is never logged.
//!
//! A proxy that answers anything but `2xx` to the `CONNECT` fails the connection with
//! [`ProxyError::Refused`], which names the proxy, the target and the proxy's status
//! line. It does not speak SOCKS, nor authentication schemes other than Basic.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Longest answer head read from a proxy.
const MAX_HEAD: usize = 8 * 1024;

/// Why going through the proxy failed.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("proxy URL {0:?}: expected http://[user:password@]host:port")]
    BadUrl(String),
    #[error("NO_PROXY entry {0:?} is neither a host name, an IP address nor a CIDR network")]
    BadNoProxy(String),
    #[error("connecting to proxy {proxy}: {source}")]
    Connect {
        proxy: String,
        source: std::io::Error,
    },
    #[error("proxy {proxy} refused CONNECT {target}: {status_line}")]
    Refused {
        proxy: String,
        target: String,
        status_line: String,
    },
    #[error("proxy {proxy} answered CONNECT {target} with something other than HTTP: {detail}")]
    BadAnswer {
        proxy: String,
        target: String,
        detail: String,
    },
    #[error("talking to proxy {proxy}: {source}")]
    Io {
        proxy: String,
        source: std::io::Error,
    },
}

/// One `NO_PROXY` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Bypass {
    All,
    /// A host name and its subdomains (lower case, no leading dot).
    Domain(String),
    Net(IpAddr, u8),
}

/// An HTTP proxy and the hosts that bypass it.
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    /// `host:port` of the proxy.
    addr: String,
    /// `Basic` credentials, base64 of `user:password`.
    auth: Option<String>,
    bypass: Vec<Bypass>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("addr", &self.addr)
            .field("auth", &self.auth.as_ref().map(|_| "<redacted>"))
            .field("bypass", &self.bypass)
            .finish()
    }
}

impl Proxy {
    /// The proxy at `url` (`http://[user:password@]host:port`, the port defaulting to
    /// 80), bypassed for the `no_proxy` entries.
    pub fn new<S: AsRef<str>>(url: &str, no_proxy: &[S]) -> Result<Self, ProxyError> {
        let bad = || ProxyError::BadUrl(redact(url));
        let rest = url.strip_prefix("http://").ok_or_else(bad)?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('/') || rest.contains('?') {
            return Err(bad());
        }
        let (auth, hostport) = match rest.rsplit_once('@') {
            Some((cred, hp)) => {
                use base64::Engine as _;
                let cred = percent_decode(cred).ok_or_else(bad)?;
                (
                    Some(base64::engine::general_purpose::STANDARD.encode(cred)),
                    hp,
                )
            }
            None => (None, rest),
        };
        let has_port = match hostport.rsplit_once(':') {
            Some((h, p)) => !h.ends_with(':') && !p.contains(']'),
            None => false,
        };
        let addr = if has_port {
            hostport.to_owned()
        } else {
            format!("{hostport}:80")
        };
        let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
        if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(bad());
        }
        let bypass = no_proxy
            .iter()
            .map(|e| e.as_ref().trim())
            .filter(|e| !e.is_empty())
            .map(parse_bypass)
            .collect::<Result<_, _>>()?;
        Ok(Self { addr, auth, bypass })
    }

    /// The proxy named by the environment of this process, `None` when no variable is
    /// set (or set empty). `env` is injected so tests need not change the process's
    /// environment; pass `|k| std::env::var(k).ok()`.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, ProxyError> {
        let first = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| env(n).filter(|v| !v.trim().is_empty()))
        };
        let Some(url) = first(&["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"]) else {
            return Ok(None);
        };
        let no_proxy = first(&["NO_PROXY", "no_proxy"]).unwrap_or_default();
        let entries: Vec<&str> = no_proxy.split(',').collect();
        Self::new(url.trim(), &entries).map(Some)
    }

    /// The proxy's `host:port`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Whether a connection to `host` goes through the proxy.
    pub fn applies_to(&self, host: &str) -> bool {
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        let ip = host.parse::<IpAddr>().ok();
        !self.bypass.iter().any(|b| match b {
            Bypass::All => true,
            Bypass::Domain(d) => host == *d || host.ends_with(&format!(".{d}")),
            Bypass::Net(net, bits) => ip.is_some_and(|ip| in_net(ip, *net, *bits)),
        })
    }

    /// A TCP stream to `host:port` through the proxy's `CONNECT` tunnel.
    pub async fn connect(&self, host: &str, port: u16) -> Result<TcpStream, ProxyError> {
        let proxy = self.addr.clone();
        let tcp = TcpStream::connect(self.addr.as_str())
            .await
            .map_err(|source| ProxyError::Connect {
                proxy: proxy.clone(),
                source,
            })?;
        crate::net::tune(&tcp);
        self.handshake(tcp, host, port).await
    }

    async fn handshake(
        &self,
        mut tcp: TcpStream,
        host: &str,
        port: u16,
    ) -> Result<TcpStream, ProxyError> {
        let proxy = self.addr.clone();
        let target = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let io = |source| ProxyError::Io {
            proxy: proxy.clone(),
            source,
        };
        let mut req = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
        if let Some(auth) = &self.auth {
            req.push_str(&format!("Proxy-Authorization: Basic {auth}\r\n"));
        }
        req.push_str("\r\n");
        tcp.write_all(req.as_bytes()).await.map_err(io)?;
        // Read the answer head byte by byte: nothing after it may be consumed, it belongs
        // to the tunnel (the proxy sends nothing more before the client speaks).
        let mut head = Vec::with_capacity(256);
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            if head.len() >= MAX_HEAD {
                return Err(ProxyError::BadAnswer {
                    proxy,
                    target,
                    detail: format!("answer head longer than {MAX_HEAD} bytes"),
                });
            }
            let n = tcp.read(&mut byte).await.map_err(io)?;
            if n == 0 {
                return Err(ProxyError::BadAnswer {
                    proxy,
                    target,
                    detail: "closed before the end of its answer".into(),
                });
            }
            head.push(byte[0]);
        }
        let text = String::from_utf8_lossy(&head);
        let status_line = text.lines().next().unwrap_or_default().trim().to_owned();
        let mut parts = status_line.split_whitespace();
        let (Some(version), Some(code)) = (parts.next(), parts.next()) else {
            return Err(ProxyError::BadAnswer {
                proxy,
                target,
                detail: format!("{status_line:?}"),
            });
        };
        if !version.starts_with("HTTP/1.") || code.len() != 3 {
            return Err(ProxyError::BadAnswer {
                proxy,
                target,
                detail: format!("{status_line:?}"),
            });
        }
        if !code.starts_with('2') {
            return Err(ProxyError::Refused {
                proxy,
                target,
                status_line,
            });
        }
        Ok(tcp)
    }
}

/// A TCP stream to `host:port`: through `proxy` when one is given and applies to the
/// host, else direct (the name resolved now, each address tried in turn), all within
/// `timeout`.
pub async fn connect(
    proxy: Option<&Proxy>,
    host: &str,
    port: u16,
    timeout: Duration,
) -> Result<TcpStream, std::io::Error> {
    let attempt = async {
        match proxy.filter(|p| p.applies_to(host)) {
            Some(p) => p
                .connect(host, port)
                .await
                .map_err(|e| std::io::Error::other(e.to_string())),
            None => {
                let host = host.trim_start_matches('[').trim_end_matches(']');
                let tcp = TcpStream::connect((host, port)).await?;
                crate::net::tune(&tcp);
                Ok(tcp)
            }
        }
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))?
}

/// A hyper connector that connects through a [`Proxy`] when one applies, else directly,
/// and yields the same stream type as `HttpConnector`, so it wraps in the same TLS
/// connectors.
#[derive(Debug, Clone)]
pub struct ProxyConnector {
    proxy: Option<Arc<Proxy>>,
    timeout: Duration,
}

impl ProxyConnector {
    pub fn new(proxy: Option<Arc<Proxy>>, timeout: Duration) -> Self {
        Self { proxy, timeout }
    }
}

impl tower_service::Service<http::Uri> for ProxyConnector {
    type Response = hyper_util::rt::TokioIo<TcpStream>;
    type Error = std::io::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let proxy = self.proxy.clone();
        let timeout = self.timeout;
        Box::pin(async move {
            let host = uri
                .host()
                .ok_or_else(|| std::io::Error::other("URL without a host"))?
                .to_owned();
            let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
                Some("https") => 443,
                _ => 80,
            });
            let tcp = connect(proxy.as_deref(), &host, port, timeout).await?;
            Ok(hyper_util::rt::TokioIo::new(tcp))
        })
    }
}

fn parse_bypass(entry: &str) -> Result<Bypass, ProxyError> {
    if entry == "*" {
        return Ok(Bypass::All);
    }
    let bad = || ProxyError::BadNoProxy(entry.to_owned());
    if let Some((net, bits)) = entry.split_once('/') {
        let net: IpAddr = net.parse().map_err(|_| bad())?;
        let bits: u8 = bits.parse().map_err(|_| bad())?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        if bits > max {
            return Err(bad());
        }
        return Ok(Bypass::Net(net, bits));
    }
    let e = entry.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = e.parse::<IpAddr>() {
        let bits = if ip.is_ipv4() { 32 } else { 128 };
        return Ok(Bypass::Net(ip, bits));
    }
    // `host:port` entries bypass the host on every port.
    let host = e.rsplit_once(':').map_or(e, |(h, _)| h);
    let host = host.trim_start_matches("*.").trim_start_matches('.');
    if host.is_empty()
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
    {
        return Err(bad());
    }
    Ok(Bypass::Domain(host.to_ascii_lowercase()))
}

fn in_net(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// `%XX` escapes decoded (user names and passwords in proxy URLs use them).
fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

/// The URL with its credentials masked, for error messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}<redacted>{}", &url[..s + 3], &url[at..]),
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests;
