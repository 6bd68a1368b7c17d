//! Reading a PROXY protocol header (v1 text or v2 binary, HAProxy's
//! `doc/proxy-protocol.txt`) from the front of a connection, before TLS: the real client
//! address behind a load balancer. Parsing is the `ppp` crate's; this module reads
//! exactly the header's bytes (never a byte of the TLS ClientHello behind it), bounds
//! its size, and decides which address to use. Whether a listener expects a header,
//! and from whom, is the caller's (`listener`) decision.

use std::net::SocketAddr;

use ppp::v2;
use tokio::io::{AsyncRead, AsyncReadExt};

/// v2's fixed part: the 12-byte signature, version/command, family, 16-bit length.
const V2_FIXED: usize = 16;
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// v1: at most 107 bytes including CRLF.
const V1_MAX: usize = 107;
/// The largest v2 header accepted: HAProxy's own limit for a v2 header with TLVs.
pub(crate) const V2_MAX: usize = 536;

/// Why a header was refused; the connection is closed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProxyHeaderError {
    #[error("connection closed before the header was complete")]
    Closed,
    #[error("no PROXY protocol header (the connection did not start with one)")]
    Missing,
    #[error("header larger than {0} bytes")]
    TooLong(usize),
    #[error("malformed header: {0}")]
    Malformed(String),
    #[error("reading the header: {0}")]
    Io(#[source] std::io::Error),
}

impl ProxyHeaderError {
    /// Stable reason code for the log and the metric.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Missing => "missing",
            Self::TooLong(_) => "too_long",
            Self::Malformed(_) => "malformed",
            Self::Io(_) => "io",
        }
    }
}

/// Reads one header from `io` and returns the client's address: the header's source
/// for a proxied TCP connection, `peer` (the balancer itself) for a `LOCAL` command
/// (health checks) or an unspecified / UNIX family, as the specification says.
pub(crate) async fn read<R: AsyncRead + Unpin>(
    io: &mut R,
    peer: SocketAddr,
) -> Result<SocketAddr, ProxyHeaderError> {
    let mut buf = [0u8; V2_MAX];
    // Five bytes tell the versions apart ("PROXY" / "\r\n\r\n\0") and fit in the
    // shortest v1 header ("PROXY UNKNOWN\r\n", 15 bytes).
    fill(io, &mut buf[..5]).await?;
    if buf[..5] == V2_SIGNATURE[..5] {
        fill(io, &mut buf[5..V2_FIXED]).await?;
        if &buf[..12] != V2_SIGNATURE {
            return Err(ProxyHeaderError::Missing);
        }
        let len = V2_FIXED + usize::from(u16::from_be_bytes([buf[14], buf[15]]));
        if len > V2_MAX {
            return Err(ProxyHeaderError::TooLong(V2_MAX));
        }
        fill(io, &mut buf[V2_FIXED..len]).await?;
        let header = v2::Header::try_from(&buf[..len])
            .map_err(|e| ProxyHeaderError::Malformed(e.to_string()))?;
        Ok(v2_source(&header).unwrap_or(peer))
    } else if &buf[..5] == b"PROXY" {
        // Byte by byte up to the CRLF: a read past it would take TLS bytes.
        let mut n = 5;
        while !buf[..n].ends_with(b"\r\n") {
            if n == V1_MAX {
                return Err(ProxyHeaderError::TooLong(V1_MAX));
            }
            fill(io, &mut buf[n..n + 1]).await?;
            n += 1;
        }
        let header = ppp::v1::Header::try_from(&buf[..n])
            .map_err(|e| ProxyHeaderError::Malformed(e.to_string()))?;
        Ok(match header.addresses {
            ppp::v1::Addresses::Tcp4(a) => SocketAddr::from((a.source_address, a.source_port)),
            ppp::v1::Addresses::Tcp6(a) => SocketAddr::from((a.source_address, a.source_port)),
            ppp::v1::Addresses::Unknown => peer,
        })
    } else {
        Err(ProxyHeaderError::Missing)
    }
}

fn v2_source(header: &v2::Header<'_>) -> Option<SocketAddr> {
    if header.command == v2::Command::Local {
        return None;
    }
    match header.addresses {
        v2::Addresses::IPv4(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
        v2::Addresses::IPv6(a) => Some(SocketAddr::from((a.source_address, a.source_port))),
        v2::Addresses::Unspecified | v2::Addresses::Unix(_) => None,
    }
}

async fn fill<R: AsyncRead + Unpin>(io: &mut R, buf: &mut [u8]) -> Result<(), ProxyHeaderError> {
    io.read_exact(buf).await.map(|_| ()).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            ProxyHeaderError::Closed
        } else {
            ProxyHeaderError::Io(e)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ppp::v2::Builder;

    const PEER: &str = "10.0.0.5:40000";

    fn peer() -> SocketAddr {
        PEER.parse().expect("addr")
    }

    fn v2(command: v2::Command, addresses: v2::Addresses) -> Vec<u8> {
        Builder::with_addresses(v2::Version::Two | command, v2::Protocol::Stream, addresses)
            .build()
            .expect("header")
    }

    /// Reads a header from `bytes` followed by a TLS record; returns the address and
    /// what is left unread (which must be exactly the TLS bytes).
    async fn read_then_rest(bytes: &[u8]) -> (Result<SocketAddr, ProxyHeaderError>, Vec<u8>) {
        let tls = b"\x16\x03\x01\x00\x05hello";
        let mut input = bytes.to_vec();
        input.extend_from_slice(tls);
        let mut io = std::io::Cursor::new(input);
        let r = read(&mut io, peer()).await;
        let mut rest = Vec::new();
        io.read_to_end(&mut rest).await.expect("rest");
        (r, rest)
    }

    #[tokio::test]
    async fn v2_proxy_gives_the_client_address_and_leaves_tls_untouched() {
        let client: SocketAddr = "203.0.113.9:51000".parse().expect("addr");
        let dest: SocketAddr = "192.0.2.1:443".parse().expect("addr");
        let header = v2(v2::Command::Proxy, (client, dest).into());
        let (r, rest) = read_then_rest(&header).await;
        assert_eq!(r.expect("header"), client);
        assert_eq!(&rest, b"\x16\x03\x01\x00\x05hello");

        let client6: SocketAddr = "[2001:db8::7]:51000".parse().expect("addr");
        let dest6: SocketAddr = "[2001:db8::1]:443".parse().expect("addr");
        let (r, _) = read_then_rest(&v2(v2::Command::Proxy, (client6, dest6).into())).await;
        assert_eq!(r.expect("header"), client6);
    }

    #[tokio::test]
    async fn v2_local_and_unspecified_keep_the_connection_address() {
        let client: SocketAddr = "203.0.113.9:51000".parse().expect("addr");
        let dest: SocketAddr = "192.0.2.1:443".parse().expect("addr");
        let (r, rest) = read_then_rest(&v2(v2::Command::Local, (client, dest).into())).await;
        assert_eq!(
            r.expect("header"),
            peer(),
            "LOCAL: a health check by the balancer"
        );
        assert_eq!(rest.len(), 10);
        let (r, _) = read_then_rest(&v2(v2::Command::Proxy, v2::Addresses::Unspecified)).await;
        assert_eq!(r.expect("header"), peer());
    }

    #[tokio::test]
    async fn v1_lines() {
        let (r, rest) = read_then_rest(b"PROXY TCP4 198.51.100.4 192.0.2.1 51000 443\r\n").await;
        assert_eq!(
            r.expect("v1"),
            "198.51.100.4:51000".parse::<SocketAddr>().expect("addr")
        );
        assert_eq!(rest.len(), 10, "not a byte of TLS read");
        let (r, _) = read_then_rest(b"PROXY TCP6 2001:db8::7 2001:db8::1 51000 443\r\n").await;
        assert_eq!(
            r.expect("v1"),
            "[2001:db8::7]:51000".parse::<SocketAddr>().expect("addr")
        );
        let (r, _) = read_then_rest(b"PROXY UNKNOWN\r\n").await;
        assert_eq!(r.expect("v1"), peer());
    }

    #[tokio::test]
    async fn hostile_headers_are_refused_with_a_reason() {
        let client: SocketAddr = "203.0.113.9:51000".parse().expect("addr");
        let dest: SocketAddr = "192.0.2.1:443".parse().expect("addr");
        let good = v2(v2::Command::Proxy, (client, dest).into());

        // No header at all: a TLS ClientHello straight away.
        let (r, _) = read_then_rest(b"").await;
        assert_eq!(r.expect_err("missing").code(), "missing");
        // Wrong signature after a matching start.
        let mut bad = good.clone();
        bad[8] = b'X';
        let (r, _) = read_then_rest(&bad).await;
        assert_eq!(r.expect_err("signature").code(), "missing");
        // A length past the cap.
        let mut long = good.clone();
        long[14..16].copy_from_slice(&u16::MAX.to_be_bytes());
        let (r, _) = read_then_rest(&long).await;
        assert_eq!(r.expect_err("too long").code(), "too_long");
        // Truncated, then the connection closes.
        let mut io = std::io::Cursor::new(good[..20].to_vec());
        let e = read(&mut io, peer()).await.expect_err("truncated");
        assert_eq!(e.code(), "closed");
        // A bad version/command byte.
        let mut bad = good.clone();
        bad[12] = 0x2f;
        let (r, _) = read_then_rest(&bad).await;
        assert_eq!(r.expect_err("command").code(), "malformed");
        // v1 without its CRLF within 107 bytes, and a v1 with garbage addresses.
        let mut line = b"PROXY TCP4 ".to_vec();
        line.extend(std::iter::repeat_n(b'1', 200));
        let (r, _) = read_then_rest(&line).await;
        assert_eq!(r.expect_err("v1 too long").code(), "too_long");
        let (r, _) = read_then_rest(b"PROXY TCP4 not-an-ip 192.0.2.1 1 2\r\n").await;
        assert_eq!(r.expect_err("v1 garbage").code(), "malformed");
    }
}
