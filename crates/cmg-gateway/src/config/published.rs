//! `[[published_url]]`: the URLs this instance serves before the site's first bundle
//! (a bundle replaces them whole).

use std::path::Path;

use cmg_core::config::ConfigError;
use cmg_proto::mapping::{AuthKind, ExternalPrefix, PublishedUrl};
use cmg_proto::SiteCode;

use super::raw::RawPublishedUrl;

/// Checks each published URL: prefix, site code, and the auth kind (from the prefix
/// unless given).
pub(super) fn urls(
    path: &Path,
    raw: Vec<RawPublishedUrl>,
) -> Result<Vec<(ExternalPrefix, PublishedUrl)>, ConfigError> {
    let inv = |field: &str, msg: &dyn ToString| ConfigError::invalid(path, field, msg.to_string());
    let mut published = Vec::with_capacity(raw.len());
    for (i, u) in raw.into_iter().enumerate() {
        let field = |f: &str| format!("published_url[{i}].{f}");
        let prefix = ExternalPrefix::new(u.prefix).map_err(|e| inv(&field("prefix"), &e))?;
        let site = SiteCode::new(u.site).map_err(|e| inv(&field("site"), &e))?;
        let auth = match (u.auth, AuthKind::from_prefix(prefix.as_str())) {
    (Some(a), _) | (None, Some(a)) => a,
    (None, None) => {
        return Err(inv(
        &field("auth"),
        &"required when the prefix is not under CCM_Proxy_MutualAuth or CCM_Proxy_ServerAuth",
        ))
    }
    };
        published.push((
            prefix.clone(),
            PublishedUrl {
                prefix,
                site,
                auth,
                max_body: u.max_body_bytes,
            },
        ));
    }
    Ok(published)
}
