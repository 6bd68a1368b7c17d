//! Policy at the reference management point: the assignment list a client polls and
//! the bodies it downloads when an assignment is new or its version changed.
//!
//! `GET /SMS_MP/.sms_pol?assignments` answers a [`PolicyAssignments`] as JSON;
//! `GET /SMS_MP/.sms_pol?<id>` answers the body (`application/octet-stream`, at most
//! [`MAX_POLICY_BODY_BYTES`]) whose SHA-256 the listing states. The product's format (a
//! multipart/mixed message with a UTF-16 XML header and a zlib-compressed payload) is
//! not copied: the listing carries the same facts (IDs, versions) plus a hash.

use serde::{Deserialize, Serialize};

/// The query that asks for the listing.
pub const ASSIGNMENTS_QUERY: &str = "assignments";

/// A larger policy body is refused by the client.
pub const MAX_POLICY_BODY_BYTES: usize = 4 << 20;

/// One policy assignment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyAssignment {
    /// 1 to 128 of `A-Za-z0-9._-`: it is the query of the body's URL.
    pub id: String,
    /// Increases when the body changes.
    pub version: u64,
    /// SHA-256 of the body, lowercase hex.
    pub sha256: String,
}

/// `GET /SMS_MP/.sms_pol?assignments`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyAssignments {
    pub assignments: Vec<PolicyAssignment>,
}

/// Whether `id` is a valid assignment ID (so it can be the whole query string).
pub fn is_policy_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id != ASSIGNMENTS_QUERY
        && !id.starts_with("size=")
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_safe_query_strings() {
        assert!(is_policy_id("CMG-Baseline_1.0"));
        for bad in ["", "assignments", "size=4", "a b", "a/b", "a&b", "é"] {
            assert!(!is_policy_id(bad), "{bad:?}");
        }
        let json = r#"{"assignments":[{"id":"p1","version":2,"sha256":"ab"}]}"#;
        let list: PolicyAssignments = serde_json::from_str(json).expect("json");
        assert_eq!(list.assignments[0].version, 2);
        assert!(serde_json::from_str::<PolicyAssignments>(r#"{"assignments":[],"x":1}"#).is_err());
    }
}
