//! URL filtering (seed 000: the gateway "validates and filters client requests (URLs)
//! to check if any CMG connection point can service the request"): authority check,
//! strict path normalisation, then a published-URL lookup. Nothing that fails here is
//! ever forwarded.

use cmg_proto::mapping::{AuthKind, MUTUAL_AUTH_SEGMENT, SERVER_AUTH_SEGMENT, SERVICE_METADATA};
use cmg_proto::path::normalize;
use std::sync::Arc;

use http::{header, request::Parts, Method};

use crate::error::GatewayError;
use crate::state::{Endpoint, Gateway};

/// Where a request goes after filtering.
#[derive(Debug)]
pub enum Route {
    /// The `ServiceMetadata` probe, answered by the gateway.
    Metadata(AuthKind),
    /// A published URL, forwarded after authentication.
    Endpoint(Arc<Endpoint>),
    /// A content URL (`crate::content`), answered from storage after authentication;
    /// the blob path is decoded and normalised.
    Content(AuthKind, String),
}

fn host_of(authority: &str) -> &str {
    // `[v6]:port`, `host:port` or `host`
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("");
    }
    authority.rsplit_once(':').map_or(authority, |(h, _)| h)
}

/// The request must name this service: in an absolute-form target or `:authority`, and
/// in `Host` (HTTP/1.1 requires one; duplicates are a smuggling shape).
fn check_authority(gw: &Gateway, parts: &Parts) -> Result<(), GatewayError> {
    let mut hosts = parts.headers.get_all(header::HOST).iter();
    let host_header = hosts.next();
    if hosts.next().is_some() {
        return Err(GatewayError::BadRequest("duplicate_host"));
    }
    let named = match (parts.uri.authority(), host_header) {
        (Some(a), _) => a.as_str(),
        (None, Some(h)) => h
            .to_str()
            .map_err(|_| GatewayError::BadRequest("bad_host"))?,
        (None, None) => return Err(GatewayError::BadRequest("missing_host")),
    };
    if !host_of(named).eq_ignore_ascii_case(gw.service_name()) {
        return Err(GatewayError::BadRequest("host_mismatch"));
    }
    if let (Some(a), Some(h)) = (parts.uri.authority(), host_header) {
        let h = h
            .to_str()
            .map_err(|_| GatewayError::BadRequest("bad_host"))?;
        if !host_of(h).eq_ignore_ascii_case(host_of(a.as_str())) {
            return Err(GatewayError::BadRequest("host_mismatch"));
        }
    }
    Ok(())
}

fn is_metadata(path: &str) -> Option<AuthKind> {
    let rest = path.strip_prefix('/')?;
    let (seg, tail) = rest.split_once('/')?;
    if !tail.eq_ignore_ascii_case(SERVICE_METADATA) {
        return None;
    }
    if seg.eq_ignore_ascii_case(MUTUAL_AUTH_SEGMENT) {
        Some(AuthKind::MutualAuth)
    } else if seg.eq_ignore_ascii_case(SERVER_AUTH_SEGMENT) {
        Some(AuthKind::ServerAuth)
    } else {
        None
    }
}

/// Checks a request head and finds its route.
pub fn route(gw: &Gateway, parts: &Parts) -> Result<Route, GatewayError> {
    if parts.method == Method::CONNECT {
        return Err(GatewayError::MethodNotAllowed);
    }
    check_authority(gw, parts)?;
    // hyper drops Content-Length when Transfer-Encoding is present; the HTTP/1.1 head
    // guard (`h1_guard`) refuses that shape before it gets here. What remains is any
    // Transfer-Encoding on HTTP/2, where it is not allowed at all.
    if parts.version == http::Version::HTTP_2
        && parts.headers.contains_key(header::TRANSFER_ENCODING)
    {
        return Err(GatewayError::BadRequest("transfer_encoding_in_h2"));
    }
    let path = normalize(parts.uri.path(), parts.uri.query())
        .map_err(|e| GatewayError::BadRequest(e.code()))?;
    if let Some(kind) = is_metadata(path.decoded()) {
        return Ok(Route::Metadata(kind));
    }
    if let Some((kind, blob)) = crate::content::content_path(path.decoded()) {
        let blob = blob.to_owned();
        return Ok(Route::Content(kind, blob));
    }
    let endpoint = gw
        .lookup(path.decoded())
        .ok_or(GatewayError::NotPublished)?;
    Ok(Route::Endpoint(endpoint))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_parsing() {
        assert_eq!(host_of("cmg.example:443"), "cmg.example");
        assert_eq!(host_of("cmg.example"), "cmg.example");
        assert_eq!(host_of("[::1]:443"), "::1");
    }

    #[test]
    fn metadata_probe_paths() {
        assert_eq!(
            is_metadata("/CCM_Proxy_MutualAuth/ServiceMetadata"),
            Some(AuthKind::MutualAuth)
        );
        assert_eq!(
            is_metadata("/ccm_proxy_serverauth/servicemetadata"),
            Some(AuthKind::ServerAuth)
        );
        assert_eq!(is_metadata("/CCM_Proxy_MutualAuth/1/ServiceMetadata"), None);
        assert_eq!(is_metadata("/Other/ServiceMetadata"), None);
    }
}
