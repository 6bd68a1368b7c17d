//! Authentication by published URL kind. The TLS layer already verified any presented
//! client certificate (chain to the uploaded roots and intermediates, validity time,
//! Client Authentication EKU, CRL when configured); here the URL's kind decides whether
//! that is enough.

use cmg_proto::mapping::AuthKind;

use super::respond::GatewayError;
use crate::conn::{ClientIdentity, ConnInfo};

/// Authenticates a request for a URL of `kind` arriving on `conn`.
pub fn authenticate(kind: AuthKind, conn: &ConnInfo) -> Result<&ClientIdentity, GatewayError> {
    match kind {
        AuthKind::MutualAuth => conn
            .identity
            .as_ref()
            .ok_or(GatewayError::Forbidden("client_certificate_required")),
        // Config validation refuses ServerAuth URLs until token authentication exists;
        // should one get here anyway, refuse it rather than forward it unauthenticated.
        AuthKind::ServerAuth => Err(GatewayError::Forbidden(
            "token_authentication_not_implemented",
        )),
    }
}
