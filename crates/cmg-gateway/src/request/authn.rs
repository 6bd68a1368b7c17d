//! Authentication by published URL kind. The TLS layer already verified any presented
//! client certificate (chain to the uploaded roots and intermediates, validity time,
//! Client Authentication EKU, revocation when configured); here the URL's kind decides
//! what is required: a certificate for `CCM_Proxy_MutualAuth`, a bearer token for
//! `CCM_Proxy_ServerAuth` ([`crate::tokens`]). A token never stands in for a
//! certificate, nor a certificate for a token.

use std::ops::Deref;
use std::sync::Arc;

use cmg_proto::mapping::AuthKind;
use http::header;
use tracing::info;

use super::access;
use crate::client::ConnInfo;
use crate::error::GatewayError;
use crate::identity::ClientIdentity;
use crate::state::Gateway;
use crate::tokens::TokenRefusal;

/// The verified client of one request: the connection's certificate, or a token.
#[derive(Debug)]
pub enum Identity<'a> {
    Certificate(&'a ClientIdentity),
    Token(Arc<ClientIdentity>),
}

impl Deref for Identity<'_> {
    type Target = ClientIdentity;
    fn deref(&self) -> &ClientIdentity {
        match self {
            Self::Certificate(c) => c,
            Self::Token(t) => t,
        }
    }
}

/// Authenticates a request for a URL of `kind` arriving on `conn`.
pub async fn authenticate<'a>(
    gw: &Gateway,
    kind: AuthKind,
    conn: &'a ConnInfo,
    headers: &http::HeaderMap,
) -> Result<Identity<'a>, GatewayError> {
    match kind {
        AuthKind::MutualAuth => conn
            .identity
            .as_ref()
            .map(Identity::Certificate)
            .ok_or(GatewayError::Forbidden("client_certificate_required")),
        AuthKind::ServerAuth => {
            let mut values = headers.get_all(header::AUTHORIZATION).iter();
            let first = values.next();
            if values.next().is_some() {
                return Err(GatewayError::BadRequest("duplicate_authorization"));
            }
            // Boxed: checking a token may fetch signing keys, and that future (1.5 KB)
            // would otherwise be part of every request's, certificate clients' too, and
            // be copied whole at each level it is moved through.
            match Box::pin(gw.tokens().authenticate(first, &conn.token)).await {
                Ok(identity) => Ok(Identity::Token(identity)),
                Err(refusal) => {
                    // The reason, never the token.
                    info!(target: access::TARGET, peer = %conn.peer, reason = %refusal, "bearer token refused");
                    Err(match refusal {
                        TokenRefusal::Undecided(_) => GatewayError::TokenUndecided(refusal.code()),
                        TokenRefusal::Missing | TokenRefusal::Invalid(_) => {
                            GatewayError::Unauthorized(refusal.code())
                        }
                    })
                }
            }
        }
    }
}
