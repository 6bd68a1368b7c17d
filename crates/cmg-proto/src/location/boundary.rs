//! Boundaries: the network locations a boundary group covers (seed 004, "Configure
//! boundary groups"): an IP subnet (`10.1.0.0/16`), an IPv6 prefix (`2001:db8:1::/48`)
//! or an inclusive IP range (`10.1.0.10-10.1.0.99`). Active Directory sites are out of
//! scope: cmg clients need not be domain members.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// One boundary, written as text in the API, the store and the CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Boundary {
    /// An IPv4 subnet or an IPv6 prefix.
    Subnet(IpNet),
    /// Every address from `first` to `last`, inclusive, of one family.
    Range { first: IpAddr, last: IpAddr },
}

/// Why a boundary's text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BoundaryError {
    #[error("{0:?} is not a subnet (10.1.0.0/16), an IPv6 prefix (2001:db8::/48) or a range (10.1.0.10-10.1.0.99)")]
    Syntax(String),
    #[error("range {0:?} mixes IPv4 and IPv6")]
    MixedFamilies(String),
    #[error("range {0:?} ends before it starts")]
    Backwards(String),
}

impl Boundary {
    /// Whether `ip` falls in this boundary (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        match self {
            Self::Subnet(net) => net.contains(&ip),
            Self::Range { first, last } => match (first, last, ip) {
                (IpAddr::V4(a), IpAddr::V4(b), IpAddr::V4(x)) => *a <= x && x <= *b,
                (IpAddr::V6(a), IpAddr::V6(b), IpAddr::V6(x)) => *a <= x && x <= *b,
                _ => false,
            },
        }
    }
}

impl FromStr for Boundary {
    type Err = BoundaryError;

    fn from_str(s: &str) -> Result<Self, BoundaryError> {
        let text = s.trim();
        if let Some((a, b)) = text.split_once('-') {
            let parse = |v: &str| {
                v.trim()
                    .parse::<IpAddr>()
                    .map_err(|_| BoundaryError::Syntax(s.to_owned()))
            };
            let (first, last) = (parse(a)?, parse(b)?);
            if first.is_ipv4() != last.is_ipv4() {
                return Err(BoundaryError::MixedFamilies(s.to_owned()));
            }
            if first > last {
                return Err(BoundaryError::Backwards(s.to_owned()));
            }
            return Ok(Self::Range { first, last });
        }
        // A subnet is stored by its network address: `10.1.2.3/16` is `10.1.0.0/16`.
        text.parse::<IpNet>()
            .map(|n| Self::Subnet(n.trunc()))
            .map_err(|_| BoundaryError::Syntax(s.to_owned()))
    }
}

impl fmt::Display for Boundary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Subnet(n) => write!(f, "{n}"),
            Self::Range { first, last } => write!(f, "{first}-{last}"),
        }
    }
}

impl Serialize for Boundary {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Boundary {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn subnets_prefixes_and_ranges() {
        let b: Boundary = "10.1.2.3/16".parse().expect("subnet");
        assert_eq!(b.to_string(), "10.1.0.0/16", "stored by its network");
        assert!(b.contains(ip("10.1.200.7")));
        assert!(!b.contains(ip("10.2.0.1")));
        assert!(
            b.contains(ip("::ffff:10.1.0.9")),
            "IPv4-mapped counts as IPv4"
        );

        let p: Boundary = "2001:db8:1::/48".parse().expect("prefix");
        assert!(p.contains(ip("2001:db8:1:ff::1")));
        assert!(!p.contains(ip("2001:db8:2::1")));
        assert!(!p.contains(ip("10.1.0.1")));

        let r: Boundary = "10.1.0.10 - 10.1.0.99".parse().expect("range");
        assert_eq!(r.to_string(), "10.1.0.10-10.1.0.99");
        assert!(r.contains(ip("10.1.0.10")) && r.contains(ip("10.1.0.99")));
        assert!(!r.contains(ip("10.1.0.9")) && !r.contains(ip("10.1.0.100")));
        assert!(!r.contains(ip("2001:db8::1")));
    }

    #[test]
    fn bad_text_is_refused_with_the_reason() {
        for bad in [
            "",
            "10.1.0.0",
            "10.1.0.0/33",
            "site:Paris",
            "10.0.0.1-",
            "a-b",
        ] {
            assert!(
                matches!(bad.parse::<Boundary>(), Err(BoundaryError::Syntax(_))),
                "{bad:?}"
            );
        }
        assert!(matches!(
            "10.0.0.1-2001:db8::1".parse::<Boundary>(),
            Err(BoundaryError::MixedFamilies(_))
        ));
        assert!(matches!(
            "10.0.0.9-10.0.0.1".parse::<Boundary>(),
            Err(BoundaryError::Backwards(_))
        ));
    }

    #[test]
    fn serde_is_the_text_form() {
        let b: Boundary = serde_json::from_str("\"192.168.0.0/24\"").expect("json");
        assert_eq!(
            serde_json::to_string(&b).expect("json"),
            "\"192.168.0.0/24\""
        );
        assert!(serde_json::from_str::<Boundary>("\"nope\"").is_err());
    }
}
