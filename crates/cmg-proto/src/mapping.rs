//! Published URLs (what the gateway filters on) and URL mappings (what the connection
//! point forwards by).
//!
//! Seed 000: "The site automatically uploads all published external URLs to the CMG.
//! This behavior allows the CMG to do URL filtering. All URL mappings replicate to the
//! CMG connection point. It then forwards the communication to internal servers
//! according to the external URL from the client request." Both tables are keyed by the
//! same [`ExternalPrefix`] and matched by the same [`PrefixTable`].

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::channel::CONTROL_PREFIX;
use crate::ids::{RoleId, SiteCode};

/// The first path segment of a PKI client's management point URL.
pub const MUTUAL_AUTH_SEGMENT: &str = "CCM_Proxy_MutualAuth";
/// The first path segment of a token (Entra ID, site token) client's URL.
pub const SERVER_AUTH_SEGMENT: &str = "CCM_Proxy_ServerAuth";
/// The probe endpoint under both segments, answered by the gateway itself.
pub const SERVICE_METADATA: &str = "ServiceMetadata";
/// The second path segment of content (cloud distribution point) URLs, under both
/// auth segments: `/CCM_Proxy_MutualAuth/CMG_Content/<blob>` (client certificate) and
/// `/CCM_Proxy_ServerAuth/CMG_Content/<blob>` (token). Never a role ID (those are
/// numeric), so it cannot collide with a published URL.
pub const CONTENT_SEGMENT: &str = "CMG_Content";
/// Internal base URL of a mapping served by the site itself rather than a role: the
/// connection point replaces the `cmg-site:` scheme by the site API URL it was
/// configured with (`[site_api] url`). The site maps each management point's `CCM_STS`
/// endpoint here, to its token service.
pub const SITE_STS_BASE: &str = "cmg-site:/api/v1/sts";
/// The scheme of [`SITE_STS_BASE`].
pub const SITE_SCHEME: &str = "cmg-site:";

/// How a client must authenticate to use a published URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthKind {
    /// A verified client certificate (`CCM_Proxy_MutualAuth`).
    MutualAuth,
    /// A bearer token (`CCM_Proxy_ServerAuth`).
    ServerAuth,
}

impl AuthKind {
    /// The kind a prefix's first segment implies, matched case-insensitively.
    pub fn from_prefix(prefix: &str) -> Option<Self> {
        let first = prefix.trim_start_matches('/').split('/').next()?;
        if first.eq_ignore_ascii_case(MUTUAL_AUTH_SEGMENT) {
            Some(Self::MutualAuth)
        } else if first.eq_ignore_ascii_case(SERVER_AUTH_SEGMENT) {
            Some(Self::ServerAuth)
        } else {
            None
        }
    }
}

/// Why an external prefix was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid external URL prefix {prefix:?}: {reason}")]
pub struct InvalidPrefix {
    pub prefix: String,
    pub reason: &'static str,
}

/// A validated external URL prefix such as `/CCM_Proxy_MutualAuth/72057594037927939/CCM_System`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ExternalPrefix(String);

impl ExternalPrefix {
    pub fn new(prefix: impl Into<String>) -> Result<Self, InvalidPrefix> {
        let prefix = prefix.into();
        let err = |reason| InvalidPrefix {
            prefix: prefix.clone(),
            reason,
        };
        if !prefix.starts_with('/') || prefix.len() < 2 {
            return Err(err("must start with '/' and name at least one segment"));
        }
        if prefix.ends_with('/') {
            return Err(err("must not end with '/'"));
        }
        // Compared as bytes: a `str` slice at CONTROL_PREFIX's length could fall inside a
        // multi-byte character and panic (found by the settings_bundle fuzz target).
        if prefix
            .as_bytes()
            .get(..CONTROL_PREFIX.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(CONTROL_PREFIX.as_bytes()))
        {
            return Err(err("the /_cmg/ namespace is reserved for the channel"));
        }
        for seg in prefix[1..].split('/') {
            if seg.is_empty() || seg == "." || seg == ".." {
                return Err(err("empty or dot segment"));
            }
            if !seg
                .bytes()
                .all(|b| b.is_ascii_graphic() && !matches!(b, b'%' | b'?' | b'#' | b'\\'))
            {
                return Err(err(
                    "only printable ASCII without '%', '?', '#', '\\' is allowed",
                ));
            }
        }
        Ok(Self(prefix))
    }

    /// The prefix for a role's endpoint: `/<segment>/<role id>/<endpoint>`.
    pub fn for_role(kind: AuthKind, role: RoleId, endpoint: &str) -> Result<Self, InvalidPrefix> {
        let seg = match kind {
            AuthKind::MutualAuth => MUTUAL_AUTH_SEGMENT,
            AuthKind::ServerAuth => SERVER_AUTH_SEGMENT,
        };
        Self::new(format!("/{seg}/{role}/{endpoint}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True when `path` (decoded) is this prefix or lies below it, compared
    /// case-insensitively as IIS does.
    pub fn matches(&self, path: &str) -> bool {
        let p = self.0.as_bytes();
        let b = path.as_bytes();
        b.len() >= p.len()
            && b[..p.len()].eq_ignore_ascii_case(p)
            && (b.len() == p.len() || b[p.len()] == b'/')
    }

    /// The part of `path` after this prefix (starts with '/' or is empty); call only
    /// after [`ExternalPrefix::matches`] returned true.
    pub fn remainder<'a>(&self, path: &'a str) -> &'a str {
        path.get(self.0.len()..).unwrap_or("")
    }
}

impl TryFrom<String> for ExternalPrefix {
    type Error = InvalidPrefix;
    fn try_from(value: String) -> Result<Self, InvalidPrefix> {
        Self::new(value)
    }
}
impl From<ExternalPrefix> for String {
    fn from(p: ExternalPrefix) -> String {
        p.0
    }
}
impl fmt::Display for ExternalPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A URL published to the gateway: filtering, authentication kind, body limit, and the
/// site whose connection points serve it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishedUrl {
    pub prefix: ExternalPrefix,
    pub site: SiteCode,
    pub auth: AuthKind,
    /// Maximum request body in bytes ("checks content length for each publishing endpoint").
    pub max_body: u64,
}

/// A URL mapping held by the connection point: external prefix to internal base URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UrlMapping {
    pub prefix: ExternalPrefix,
    /// Internal base URL, e.g. `http://mp.corp.example/CCM_System`; the remainder of
    /// the external path and the query are appended.
    pub internal_base: String,
}

/// Entries keyed by [`ExternalPrefix`], longest prefix first.
///
/// A linear scan: a site publishes a few URLs per role, and a scan over tens of short
/// prefixes costs less than hashing a lower-cased copy of the path.
#[derive(Clone, Debug)]
pub struct PrefixTable<T> {
    entries: Vec<(ExternalPrefix, T)>,
}

impl<T> Default for PrefixTable<T> {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
        }
    }
}

/// Two entries with the same prefix (compared case-insensitively).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("URL prefix {0} is defined twice")]
pub struct DuplicatePrefix(pub String);

impl<T> PrefixTable<T> {
    pub fn new(
        entries: impl IntoIterator<Item = (ExternalPrefix, T)>,
    ) -> Result<Self, DuplicatePrefix> {
        let mut entries: Vec<(ExternalPrefix, T)> = entries.into_iter().collect();
        entries.sort_by_key(|e| std::cmp::Reverse(e.0.as_str().len()));
        for w in entries.windows(2) {
            if w[0].0.as_str().eq_ignore_ascii_case(w[1].0.as_str()) {
                return Err(DuplicatePrefix(w[0].0.to_string()));
            }
        }
        Ok(Self { entries })
    }

    /// The longest entry whose prefix matches `decoded_path`.
    pub fn lookup(&self, decoded_path: &str) -> Option<(&ExternalPrefix, &T)> {
        self.entries
            .iter()
            .find(|(p, _)| p.matches(decoded_path))
            .map(|(p, t)| (p, t))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&ExternalPrefix, &T)> {
        self.entries.iter().map(|(p, t)| (p, t))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> ExternalPrefix {
        ExternalPrefix::new(s).expect("valid prefix")
    }

    #[test]
    fn prefix_validation() {
        assert!(ExternalPrefix::new("/CCM_Proxy_MutualAuth/1/CCM_System").is_ok());
        for bad in [
            "", "/", "x", "/a/", "/a//b", "/a/../b", "/a%2f", "/_cmg/x", "/_CMG/x", "/a b",
        ] {
            assert!(ExternalPrefix::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_multi_byte_character_where_the_reserved_prefix_would_end_is_refused_not_a_panic() {
        // U+F640 takes bytes 4..7: the old check sliced the string at byte 6.
        let e = ExternalPrefix::new("/sh0\u{f640}t").expect_err("not ASCII");
        assert_eq!(
            e.reason,
            "only printable ASCII without '%', '?', '#', '\\' is allowed"
        );
        assert!(ExternalPrefix::new("/_cmg\u{e9}").is_err());
        assert!(ExternalPrefix::new("/_cm\u{e9}/x").is_err());
    }

    #[test]
    fn matching_is_case_insensitive_on_segment_boundaries() {
        let pre = p("/CCM_Proxy_MutualAuth/72057594037927939/CCM_System");
        assert!(pre.matches("/ccm_proxy_mutualauth/72057594037927939/ccm_system/request"));
        assert!(pre.matches("/CCM_Proxy_MutualAuth/72057594037927939/CCM_System"));
        assert!(!pre.matches("/CCM_Proxy_MutualAuth/72057594037927939/CCM_SystemX"));
        assert!(!pre.matches("/CCM_Proxy_MutualAuth/72057594037927939"));
        assert_eq!(
            pre.remainder("/CCM_Proxy_MutualAuth/72057594037927939/CCM_System/request"),
            "/request"
        );
    }

    #[test]
    fn table_prefers_longest_and_refuses_duplicates() {
        let t = PrefixTable::new([(p("/a"), 1), (p("/a/b"), 2)]).expect("table");
        assert_eq!(t.lookup("/a/b/c").map(|(_, v)| *v), Some(2));
        assert_eq!(t.lookup("/a/c").map(|(_, v)| *v), Some(1));
        assert!(t.lookup("/b").is_none());
        assert!(PrefixTable::new([(p("/a"), 1), (p("/A"), 2)]).is_err());
    }

    #[test]
    fn auth_kind_from_prefix() {
        assert_eq!(
            AuthKind::from_prefix("/ccm_proxy_mutualauth/1/x"),
            Some(AuthKind::MutualAuth)
        );
        assert_eq!(
            AuthKind::from_prefix("/CCM_Proxy_ServerAuth/1/x"),
            Some(AuthKind::ServerAuth)
        );
        assert_eq!(AuthKind::from_prefix("/other"), None);
    }
}
