//! Header names cmg owns, and the hop-by-hop set.
//!
//! Everything in the `cmg-` namespace is cmg's own: the gateway strips any such header a
//! client sends before it adds its own, so a role behind the connection point can trust
//! them (the gateway is the only writer).

use http::header::{HeaderMap, HeaderName};

/// Prefix of cmg's internal header namespace (header names are case-insensitive; `http`
/// stores them lower-case).
pub const INTERNAL_PREFIX: &str = "cmg-";

/// The verified client identity, e.g. `cert; subject="CN=client1"; sha256=ab12..`.
pub const CLIENT_IDENTITY: HeaderName = HeaderName::from_static("cmg-client-identity");
/// How the client was authenticated: `certificate`, `token` or `anonymous`.
pub const CLIENT_AUTH: HeaderName = HeaderName::from_static("cmg-client-auth");
/// The request ID the gateway gave the request; in its access log and the role's.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("cmg-request-id");
/// Response header naming the gateway instance that served (when route headers are on).
pub const GATEWAY_INSTANCE: HeaderName = HeaderName::from_static("cmg-gateway-instance");
/// On the channel hello: how many data-path threads the gateway instance has. A
/// connection point keeps one channel per thread of its own; with fewer than the
/// instance's, some of the instance's threads have no channel of it to use locally.
pub const GATEWAY_THREADS: HeaderName = HeaderName::from_static("cmg-gateway-threads");
/// Response header naming the connection point that served.
pub const CONNECTION_POINT: HeaderName = HeaderName::from_static("cmg-connection-point");
/// On the channel's control requests: the gateway's connection ID for the channel.
pub const CONNECTION_ID: HeaderName = HeaderName::from_static("cmg-connection-id");
/// On settings control responses: the version of the bundle in the body.
pub const SETTINGS_VERSION: HeaderName = HeaderName::from_static("cmg-settings-version");
/// `X-Forwarded-For`, appended by the gateway.
pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// Hop-by-hop headers (RFC 9110 section 7.6.1) plus the legacy ones proxies drop.
pub const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// True for a header in cmg's internal namespace.
pub fn is_internal(name: &HeaderName) -> bool {
    name.as_str().starts_with(INTERNAL_PREFIX)
}

/// True for a name in [`HOP_BY_HOP`].
pub fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
    )
}

/// Removes hop-by-hop headers, including those the `Connection` header names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Most messages carry none (HTTP/2 forbids them): one pass over the names is
    // cheaper than nine hashed removals, and this runs twice per request per proxy.
    if !headers.keys().any(is_hop_by_hop) {
        return;
    }
    let named: Vec<HeaderName> = headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// Removes every header in cmg's internal namespace; returns how many were removed.
pub fn strip_internal(headers: &mut HeaderMap) -> usize {
    let names: Vec<HeaderName> = headers.keys().filter(|n| is_internal(n)).cloned().collect();
    let mut removed = 0;
    for name in names {
        removed += headers.get_all(&name).iter().count();
        headers.remove(name);
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn hop_by_hop_names_match_the_list() {
        for name in HOP_BY_HOP {
            assert!(is_hop_by_hop(&HeaderName::from_static(name)), "{name}");
        }
        for name in [
            "content-type",
            "authorization",
            "host",
            "cmg-request-id",
            "tee",
        ] {
            assert!(!is_hop_by_hop(&HeaderName::from_static(name)), "{name}");
        }
        // Without a `Connection` header only the listed names go.
        let mut h = HeaderMap::new();
        h.append("x-secret", HeaderValue::from_static("1"));
        h.append("te", HeaderValue::from_static("trailers"));
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-secret"));
    }

    #[test]
    fn strips_internal_and_hop_by_hop() {
        let mut h = HeaderMap::new();
        h.append("cmg-client-identity", HeaderValue::from_static("forged"));
        h.append("CMG-Request-Id", HeaderValue::from_static("x"));
        h.append("connection", HeaderValue::from_static("close, x-secret"));
        h.append("x-secret", HeaderValue::from_static("1"));
        h.append("keep-alive", HeaderValue::from_static("timeout=5"));
        h.append("content-type", HeaderValue::from_static("text/plain"));
        assert_eq!(strip_internal(&mut h), 2);
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("content-type"));
    }
}
