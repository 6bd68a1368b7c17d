//! The shapes of the names and IDs the site accepts, as predicates (used by the store's
//! checks and the API's parameter extractors) and as the patterns the API document
//! states. A unit test holds each predicate to its pattern's examples.
//!
//! It does not look anything up: whether a name is on record is the store's question.

/// A gateway name (the store's rule: 1 to 63 letters, digits, `-` or `_`).
pub const GATEWAY_NAME: &str = "^[A-Za-z0-9_-]{1,63}$";
/// A role ID: a decimal integer of up to 19 digits (fits `u64`).
pub const ROLE_ID: &str = "^[0-9]{1,19}$";
/// A connection point ID (`cmg_proto::ConnectorId`).
pub const CONNECTION_POINT_ID: &str = "^[A-Za-z0-9._-]{1,64}$";
/// A boundary group name: 1 to 128 letters, digits, spaces, `.`, `-` or `_`, starting
/// with a letter or digit.
pub const BOUNDARY_GROUP_NAME: &str = "^[A-Za-z0-9][A-Za-z0-9 ._-]{0,127}$";
/// A bulk token's tracking ID.
pub const TRACKING_ID: &str = "^[A-Za-z0-9._-]{1,128}$";
/// Whether `s` is 1 to `max` bytes, each a letter, a digit or in `extra`.
fn token(s: &str, max: usize, extra: &[u8]) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
}

pub fn is_gateway_name(s: &str) -> bool {
    token(s, 63, b"-_")
}

pub fn is_role_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit())
}

pub fn is_connection_point_id(s: &str) -> bool {
    token(s, 64, b"-_.")
}

pub fn is_boundary_group_name(s: &str) -> bool {
    s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric()) && token(s, 128, b" ._-")
}

pub fn is_tracking_id(s: &str) -> bool {
    token(s, 128, b"-_.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_follow_their_patterns() {
        assert!(is_gateway_name("cmg1") && is_gateway_name(&"a".repeat(63)));
        for bad in ["", "a.b", "a b", &"a".repeat(64)] {
            assert!(!is_gateway_name(bad), "{bad:?}");
        }
        assert!(is_role_id("72057594037927939") && is_role_id("9999999999999999999"));
        for bad in ["", " 1", "+1", "1a", "10000000000000000000"] {
            assert!(!is_role_id(bad), "{bad:?}");
        }
        assert!(is_connection_point_id("cp-0a1b.x_y"));
        assert!(!is_connection_point_id("cp 1") && !is_connection_point_id(""));
        assert!(is_boundary_group_name("HQ boundary 1.a-b_c"));
        for bad in ["", " HQ", "-a", "a/b", &"a".repeat(129)] {
            assert!(!is_boundary_group_name(bad), "{bad:?}");
        }
    }
}
