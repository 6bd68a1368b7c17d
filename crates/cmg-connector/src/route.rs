//! From a client's external path to a role's internal URL.
//!
//! The gateway forwards the path exactly as the client sent it; it has already refused
//! encoded separators and dot segments, so the raw and the decoded path have the same
//! segments. Matching uses the decoded path (case-insensitive, longest prefix), and the
//! internal URL keeps the client's raw bytes after the prefix's segments, so the role
//! sees the same escapes the client sent.

use http::uri::{Authority, PathAndQuery, Scheme, Uri};
use http::HeaderValue;

use cmg_proto::mapping::{PrefixTable, UrlMapping};
use cmg_proto::path::{self, PathRejected};

/// Why an internal base URL is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidInternalUrl {
    #[error("not a URL: {0}")]
    Parse(String),
    #[error("scheme must be http or https")]
    Scheme,
    #[error("must name a host")]
    NoHost,
    #[error("must not contain user information")]
    UserInfo,
    #[error("must not have a query")]
    Query,
}

/// The parts of an internal base URL such as `https://mp.corp.example/CCM_System`.
#[derive(Debug, Clone)]
pub(crate) struct InternalBase {
    pub scheme: Scheme,
    pub authority: Authority,
    /// The `Host` header to send (the authority).
    pub host: HeaderValue,
    /// The base path without a trailing '/' (may be empty).
    pub path: String,
}

impl InternalBase {
    pub fn parse(url: &str) -> Result<Self, InvalidInternalUrl> {
        let uri: Uri = url
            .parse()
            .map_err(|e: http::uri::InvalidUri| InvalidInternalUrl::Parse(e.to_string()))?;
        let scheme = match uri.scheme() {
            Some(s) if *s == Scheme::HTTP || *s == Scheme::HTTPS => s.clone(),
            _ => return Err(InvalidInternalUrl::Scheme),
        };
        let authority = uri.authority().cloned().ok_or(InvalidInternalUrl::NoHost)?;
        if authority.as_str().contains('@') {
            return Err(InvalidInternalUrl::UserInfo);
        }
        if authority.host().is_empty() {
            return Err(InvalidInternalUrl::NoHost);
        }
        if uri.query().is_some() {
            return Err(InvalidInternalUrl::Query);
        }
        let host = HeaderValue::from_str(authority.as_str())
            .map_err(|e| InvalidInternalUrl::Parse(e.to_string()))?;
        let path = uri.path().trim_end_matches('/').to_owned();
        Ok(Self {
            scheme,
            authority,
            host,
            path,
        })
    }
}

/// One mapping, ready to forward by.
#[derive(Debug, Clone)]
pub(crate) struct Route {
    /// The external prefix, as published; names the endpoint in logs and metrics.
    pub endpoint: String,
    /// How many path segments the external prefix has.
    segments: usize,
    pub base: InternalBase,
    /// The internal base URL as configured or published.
    pub internal: String,
}

impl Route {
    pub fn new(mapping: &UrlMapping) -> Result<Self, InvalidInternalUrl> {
        Ok(Self {
            internal: mapping.internal_base.clone(),
            endpoint: mapping.prefix.as_str().to_owned(),
            segments: mapping.prefix.as_str().matches('/').count(),
            base: InternalBase::parse(&mapping.internal_base)?,
        })
    }

    /// The internal URL for a request whose raw path matched this route's prefix.
    pub fn target(&self, raw_path: &str, query: Option<&str>) -> Result<Uri, http::Error> {
        let rest = raw_remainder(raw_path, self.segments);
        let mut pq = String::with_capacity(self.base.path.len() + rest.len() + 1);
        pq.push_str(&self.base.path);
        pq.push_str(rest);
        if pq.is_empty() {
            pq.push('/');
        }
        if let Some(q) = query {
            pq.push('?');
            pq.push_str(q);
        }
        Uri::builder()
            .scheme(self.base.scheme.clone())
            .authority(self.base.authority.clone())
            .path_and_query(PathAndQuery::try_from(pq)?)
            .build()
    }
}

/// The part of `raw` after its first `segments` segments: empty, or starting with '/'.
fn raw_remainder(raw: &str, segments: usize) -> &str {
    match raw.match_indices('/').nth(segments) {
        Some((i, _)) => &raw[i..],
        None => "",
    }
}

/// Why a request found no route.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum NoRoute {
    #[error("path refused: {}", .0.code())]
    Path(PathRejected),
    #[error("no URL mapping")]
    Unmapped,
}

/// Finds the route for `raw_path`/`query` and builds the internal URL.
pub(crate) fn resolve<'a>(
    table: &'a PrefixTable<Route>,
    raw_path: &str,
    query: Option<&str>,
) -> Result<(&'a Route, Uri), NoRoute> {
    let normalized = path::normalize(raw_path, query).map_err(NoRoute::Path)?;
    let (_, route) = table
        .lookup(normalized.decoded())
        .ok_or(NoRoute::Unmapped)?;
    // The target only fails on bytes `normalize` already refused; treat it as unmapped
    // rather than trusting that invariant with a panic.
    let uri = route
        .target(normalized.raw(), normalized.query())
        .map_err(|_| NoRoute::Unmapped)?;
    Ok((route, uri))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cmg_proto::mapping::ExternalPrefix;

    fn table(entries: &[(&str, &str)]) -> PrefixTable<Route> {
        PrefixTable::new(entries.iter().map(|(ext, int)| {
            let prefix = ExternalPrefix::new(*ext).expect("prefix");
            let route = Route::new(&UrlMapping {
                prefix: prefix.clone(),
                internal_base: (*int).to_owned(),
            })
            .expect("route");
            (prefix, route)
        }))
        .expect("table")
    }

    fn target(t: &PrefixTable<Route>, path: &str, query: Option<&str>) -> Result<String, NoRoute> {
        resolve(t, path, query).map(|(_, u)| u.to_string())
    }

    #[test]
    fn rewrites_like_the_product() {
        let t = table(&[
            (
                "/CCM_Proxy_MutualAuth/981/CCM_STS",
                "https://mp.corp.example/CCM_STS",
            ),
            (
                "/CCM_Proxy_MutualAuth/72057594037927939/CCM_System",
                "http://127.0.0.1:8080/CCM_System/",
            ),
            (
                "/CCM_Proxy_MutualAuth/72057594037927939/SMS_MP",
                "http://mp",
            ),
        ]);
        assert_eq!(
            target(&t, "/CCM_Proxy_MutualAuth/981/CCM_STS", None),
            Ok("https://mp.corp.example/CCM_STS".into())
        );
        assert_eq!(
            target(
                &t,
                "/ccm_proxy_mutualauth/72057594037927939/ccm_system/request",
                None
            ),
            Ok("http://127.0.0.1:8080/CCM_System/request".into())
        );
        assert_eq!(
            target(
                &t,
                "/CCM_Proxy_MutualAuth/72057594037927939/SMS_MP/.sms_aut",
                Some("MPLIST2")
            ),
            Ok("http://mp/.sms_aut?MPLIST2".into())
        );
        assert_eq!(
            target(&t, "/CCM_Proxy_MutualAuth/72057594037927939/SMS_MP", None),
            Ok("http://mp/".into())
        );
        assert_eq!(
            target(&t, "/CCM_Proxy_MutualAuth/981/CCM_STSX", None),
            Err(NoRoute::Unmapped)
        );
        assert_eq!(
            target(&t, "/CCM_Proxy_MutualAuth/981/CCM_STS/../x", None),
            Err(NoRoute::Path(PathRejected::DotSegment))
        );
    }

    #[test]
    fn keeps_the_clients_escapes_after_the_prefix() {
        let t = table(&[("/CCM_Proxy_ServerAuth/1/CCM_Client", "http://mp/CCM_Client")]);
        // An escape inside the prefix part still matches; the rest is forwarded raw.
        assert_eq!(
            target(
                &t,
                "/CCM%5FProxy_ServerAuth/1/CCM_Client/a%20b/",
                Some("x=%41")
            ),
            Ok("http://mp/CCM_Client/a%20b/?x=%41".into())
        );
    }

    #[test]
    fn internal_urls_are_checked() {
        assert!(InternalBase::parse("http://mp:8080/x").is_ok());
        assert_eq!(
            InternalBase::parse("ftp://mp/x").err(),
            Some(InvalidInternalUrl::Scheme)
        );
        assert_eq!(
            InternalBase::parse("/x").err(),
            Some(InvalidInternalUrl::Scheme)
        );
        assert_eq!(
            InternalBase::parse("http://u@mp/x").err(),
            Some(InvalidInternalUrl::UserInfo)
        );
        assert_eq!(
            InternalBase::parse("http://mp/x?a").err(),
            Some(InvalidInternalUrl::Query)
        );
        assert!(matches!(
            InternalBase::parse("http://"),
            Err(InvalidInternalUrl::Parse(_))
        ));
    }
}
