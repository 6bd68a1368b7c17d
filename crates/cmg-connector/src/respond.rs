//! Every answer the connection point makes itself, in one place: the status, the
//! `cmg-error` code the gateway and the client see, and the short body. The detail goes
//! to the log, never to the client.

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Response, StatusCode};
use http_body_util::{Either, Full};

use cmg_proto::headers;

use crate::role_pool::RoleBody;

/// The body of every response on a channel: a role's streamed body, or a short one of
/// our own.
pub(crate) type ChannelBody = Either<RoleBody, Full<Bytes>>;

/// Header carrying the reason of a response the connection point made itself.
pub(crate) const CMG_ERROR: HeaderName = HeaderName::from_static("cmg-error");

/// Why the connection point answered instead of a role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// No URL mapping covers the path.
    NoMapping,
    /// The role could not be reached (connect, TLS, or the connection failed).
    RoleUnreachable,
    /// The role did not send its response headers within `timing.role_timeout`.
    RoleTimeout,
    /// An HTTPS role asked for a client certificate and `[roles]` has none.
    ClientCertificateRequired,
    /// A control path that does not exist.
    UnknownControl,
    /// A hello without the connection ID or instance name.
    BadHello,
    /// A traffic snapshot that is not one (bad JSON, wrong instance).
    BadReport,
    /// A traffic snapshot above `MAX_REPORT_BYTES`.
    ReportTooLarge,
}

impl Refusal {
    pub fn status(self) -> StatusCode {
        match self {
            Self::NoMapping | Self::UnknownControl => StatusCode::NOT_FOUND,
            Self::RoleUnreachable => StatusCode::BAD_GATEWAY,
            Self::RoleTimeout => StatusCode::GATEWAY_TIMEOUT,
            Self::ClientCertificateRequired => StatusCode::FORBIDDEN,
            Self::BadHello | Self::BadReport => StatusCode::BAD_REQUEST,
            Self::ReportTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        }
    }

    /// The `cmg-error` code, in the product's `CMGConnector_<reason>` form.
    pub fn code(self) -> &'static str {
        match self {
            Self::NoMapping => "CMGConnector_NoMapping",
            Self::RoleUnreachable => "CMGConnector_RoleUnreachable",
            Self::RoleTimeout => "CMGConnector_RoleTimeout",
            Self::ClientCertificateRequired => "CMGConnector_Clientcertificaterequired",
            Self::UnknownControl => "CMGConnector_UnknownControl",
            Self::BadHello => "CMGConnector_BadHello",
            Self::BadReport => "CMGConnector_BadReport",
            Self::ReportTooLarge => "CMGConnector_ReportTooLarge",
        }
    }

    /// The response, naming this connection point.
    pub fn response(self, connection_point: &HeaderValue) -> Response<ChannelBody> {
        let mut resp = Response::new(Either::Right(Full::new(Bytes::from_static(
            self.code().as_bytes(),
        ))));
        *resp.status_mut() = self.status();
        let h = resp.headers_mut();
        h.insert(CMG_ERROR, HeaderValue::from_static(self.code()));
        h.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        h.insert(headers::CONNECTION_POINT, connection_point.clone());
        resp
    }
}

/// An empty 200 naming this connection point (the answer to the hello).
pub(crate) fn ok(connection_point: &HeaderValue) -> Response<ChannelBody> {
    let mut resp = Response::new(Either::Right(Full::new(Bytes::new())));
    resp.headers_mut()
        .insert(headers::CONNECTION_POINT, connection_point.clone());
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_the_reason_and_the_connection_point() {
        let cp = HeaderValue::from_static("cp1");
        let r = Refusal::NoMapping.response(&cp);
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert_eq!(r.headers()[CMG_ERROR], "CMGConnector_NoMapping");
        assert_eq!(r.headers()[headers::CONNECTION_POINT], "cp1");
        assert_eq!(Refusal::RoleUnreachable.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(Refusal::RoleTimeout.status(), StatusCode::GATEWAY_TIMEOUT);
    }
}
