//! A network address as operators write it: `host:port`, the host a DNS name or an IP
//! literal (IPv6 in brackets). Connection points dial gateway instances by such
//! addresses and resolve the name again on every dial, so an instance that moves to a
//! new IP (a pod rescheduled, a VM redeployed) is found without a restart.
//!
//! It only parses and prints; it does not resolve.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// `host:port`, checked.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostPort {
    host: String,
    port: u16,
}

/// Why an address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadHostPort {
    #[error("{0:?}: expected host:port")]
    NoPort(String),
    #[error("{0:?}: the port is not a number from 1 to 65535")]
    BadPort(String),
    #[error("{0:?}: the host is neither an IP address nor a DNS name")]
    BadHost(String),
}

impl HostPort {
    /// Parses `host:port` (`[v6]:port` for IPv6 literals).
    pub fn parse(s: &str) -> Result<Self, BadHostPort> {
        if let Ok(addr) = s.parse::<SocketAddr>() {
            if addr.port() == 0 {
                return Err(BadHostPort::BadPort(s.to_owned()));
            }
            return Ok(Self::from(addr));
        }
        let (host, port) = s
            .rsplit_once(':')
            .ok_or_else(|| BadHostPort::NoPort(s.to_owned()))?;
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| BadHostPort::BadPort(s.to_owned()))?;
        if !is_dns_name(host) {
            return Err(BadHostPort::BadHost(s.to_owned()));
        }
        Ok(Self {
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    /// The host: a DNS name, or an IP address (without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The address itself when the host is an IP literal (nothing to resolve).
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        self.host
            .parse::<IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, self.port))
    }
}

impl From<SocketAddr> for HostPort {
    fn from(addr: SocketAddr) -> Self {
        Self {
            host: addr.ip().to_string(),
            port: addr.port(),
        }
    }
}

impl fmt::Display for HostPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.host.parse::<IpAddr>() {
            Ok(IpAddr::V6(_)) => write!(f, "[{}]:{}", self.host, self.port),
            _ => write!(f, "{}:{}", self.host, self.port),
        }
    }
}

impl std::str::FromStr for HostPort {
    type Err = BadHostPort;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// A DNS name: dot-separated labels of letters, digits and inner hyphens, 1 to 63
/// characters each, 253 in all (underscores allowed, as service names use them).
fn is_dns_name(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_literals() {
        let a = HostPort::parse("GW-1.Contoso.test:10140").expect("name");
        assert_eq!((a.host(), a.port()), ("gw-1.contoso.test", 10140));
        assert_eq!(a.to_string(), "gw-1.contoso.test:10140");
        assert_eq!(a.socket_addr(), None);
        let b = HostPort::parse("127.0.0.1:443").expect("v4");
        assert_eq!(
            b.socket_addr(),
            Some("127.0.0.1:443".parse().expect("addr"))
        );
        let c = HostPort::parse("[::1]:443").expect("v6");
        assert_eq!(c.to_string(), "[::1]:443");
        assert_eq!(c.socket_addr(), Some("[::1]:443".parse().expect("addr")));
    }

    #[test]
    fn refusals() {
        for bad in [
            "",
            "gw1",
            "gw1:",
            "gw1:0",
            "gw1:70000",
            ":443",
            "gw 1:443",
            "-gw:1",
            "a..b:1",
            "http://gw:1",
        ] {
            assert!(HostPort::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
