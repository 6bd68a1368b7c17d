//! Content serving: the gateway as a cloud distribution point (seed 004, "Allow CMG to
//! function as a cloud distribution point and serve content from Azure storage").
//!
//! Content URLs are `/CCM_Proxy_MutualAuth/CMG_Content/<blob>` (client certificate)
//! and `/CCM_Proxy_ServerAuth/CMG_Content/<blob>` (bearer token). They are
//! authenticated exactly like published URLs, then answered by the gateway itself
//! from an Azure Blob container ([`source`]), never forwarded to a connection point.
//! GET and HEAD, one byte range ([`range`]), streamed ([`serve`]).
//!
//! The switch and the storage account come from the site's settings bundle (the key
//! in force of the account's two); a `[content]` section in the config file gives them
//! to a gateway without a site, and always gives the local timeouts.

pub mod config;
pub mod range;
pub mod serve;
pub mod source;

pub use config::ContentConfig;
pub use source::ContentSource;

/// The blob path of a normalised request path under the content segment, with the
/// auth kind its first segment asks for; `None` for any other path.
pub fn content_path(path: &str) -> Option<(cmg_proto::mapping::AuthKind, &str)> {
    use cmg_proto::mapping::{AuthKind, CONTENT_SEGMENT, MUTUAL_AUTH_SEGMENT, SERVER_AUTH_SEGMENT};
    let rest = path.strip_prefix('/')?;
    let (first, rest) = rest.split_once('/')?;
    let kind = if first.eq_ignore_ascii_case(MUTUAL_AUTH_SEGMENT) {
        AuthKind::MutualAuth
    } else if first.eq_ignore_ascii_case(SERVER_AUTH_SEGMENT) {
        AuthKind::ServerAuth
    } else {
        return None;
    };
    let (second, blob) = match rest.split_once('/') {
        Some((s, b)) => (s, b),
        None => (rest, ""),
    };
    second
        .eq_ignore_ascii_case(CONTENT_SEGMENT)
        .then_some((kind, blob))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cmg_proto::mapping::AuthKind;

    #[test]
    fn content_paths() {
        assert_eq!(
            content_path("/CCM_Proxy_MutualAuth/CMG_Content/pkg/a.cab"),
            Some((AuthKind::MutualAuth, "pkg/a.cab"))
        );
        assert_eq!(
            content_path("/ccm_proxy_serverauth/cmg_content/x"),
            Some((AuthKind::ServerAuth, "x"))
        );
        assert_eq!(
            content_path("/CCM_Proxy_MutualAuth/CMG_Content"),
            Some((AuthKind::MutualAuth, ""))
        );
        assert_eq!(
            content_path("/CCM_Proxy_MutualAuth/72057594037927939/CCM_System"),
            None
        );
        assert_eq!(content_path("/Other/CMG_Content/x"), None);
    }
}
