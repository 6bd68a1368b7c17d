//! Domain newtypes: a site code, a connection point ID, a role ID, a channel connection ID.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Error for an identifier that does not have the allowed shape.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid {kind} {value:?}: {reason}")]
pub struct InvalidId {
    pub kind: &'static str,
    pub value: String,
    pub reason: &'static str,
}

fn check_token(kind: &'static str, value: &str, max: usize) -> Result<(), InvalidId> {
    let err = |reason| InvalidId {
        kind,
        value: value.to_owned(),
        reason,
    };
    if value.is_empty() {
        return Err(err("must not be empty"));
    }
    if value.len() > max {
        return Err(err("too long"));
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        return Err(err(
            "only ASCII letters, digits, '-', '_' and '.' are allowed",
        ));
    }
    Ok(())
}

macro_rules! token_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $max:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn new(value: impl Into<String>) -> Result<Self, InvalidId> {
                let value = value.into();
                check_token($kind, &value, $max)?;
                Ok(Self(value))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl TryFrom<String> for $name {
            type Error = InvalidId;
            fn try_from(value: String) -> Result<Self, InvalidId> {
                Self::new(value)
            }
        }
        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

token_id!(
    /// A site code, e.g. `PS1`: which site's connection points may serve a published URL.
    SiteCode,
    "site code",
    32
);
token_id!(
    /// The ID of a connection point, named in its certificate.
    ConnectorId,
    "connection point id",
    64
);

/// A site role's ID, a large integer such as `72057594037927939`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RoleId(pub u64);

impl fmt::Display for RoleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The ID a gateway instance gives one accepted channel; logged on both sides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId(pub u64);

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl std::str::FromStr for ConnectionId {
    type Err = InvalidId;
    fn from_str(s: &str) -> Result<Self, InvalidId> {
        u64::from_str_radix(s, 16)
            .map(ConnectionId)
            .map_err(|_| InvalidId {
                kind: "connection id",
                value: s.to_owned(),
                reason: "expected 16 hex digits",
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_ids_reject_bad_shapes() {
        assert!(SiteCode::new("PS1").is_ok());
        assert!(SiteCode::new("").is_err());
        assert!(SiteCode::new("a b").is_err());
        assert!(ConnectorId::new("cp/1").is_err());
        assert!(ConnectorId::new("x".repeat(65)).is_err());
    }

    #[test]
    fn connection_id_round_trips() {
        let id = ConnectionId(0xdead_beef);
        assert_eq!(id.to_string().parse::<ConnectionId>(), Ok(id));
        assert!("zz".parse::<ConnectionId>().is_err());
    }
}
