//! Why a token was refused, as stable reason codes (a key document that could not be
//! fetched is cmg-core's `FetchError`). No variant ever holds the token (or any part of
//! it) so that `Display` and `Debug` are safe to log.

use cmg_core::fetch::FetchError;
use std::time::Duration;

/// The product's reason for a refused bearer token; [`TokenError::code`] is the sub-code.
pub const INVALID_TOKEN: &str = "CMGService_Invalid_Token";

/// A token that was refused, or a verifier / signer that could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token audience is not accepted")]
    BadAudience,
    #[error("token issuer is not accepted")]
    BadIssuer,
    #[error("token signature does not verify")]
    BadSignature,
    /// `alg` is a sanitised, shortened copy of the header value.
    #[error("token algorithm {alg:?} is not accepted")]
    UnsupportedAlg { alg: String },
    #[error("no trusted key matches the token's key id")]
    UnknownKid,
    #[error("token tenant is not allowed")]
    TenantNotAllowed,
    #[error("token has been blocked")]
    Blocked,
    #[error("token type is not accepted here")]
    WrongKind,
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    #[error("token issuer unreachable: {0}")]
    IssuerUnreachable(#[source] FetchError),
    #[error("token issuer metadata is invalid: {0}")]
    IssuerMetadata(String),
    #[error("invalid token configuration: {0}")]
    Config(String),
    #[error("invalid key material: {0}")]
    Key(String),
    #[error("token lifetime {requested:?} is outside the allowed range (at most {max:?})")]
    Lifetime { requested: Duration, max: Duration },
    #[error("could not sign the token: {0}")]
    Signing(String),
}

impl TokenError {
    /// Stable sub-code of [`INVALID_TOKEN`], for logs and the `WWW-Authenticate` header.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Expired => "token_expired",
            Self::NotYetValid => "token_not_yet_valid",
            Self::BadAudience => "bad_audience",
            Self::BadIssuer => "bad_issuer",
            Self::BadSignature => "bad_signature",
            Self::UnsupportedAlg { .. } => "unsupported_alg",
            Self::UnknownKid => "unknown_kid",
            Self::TenantNotAllowed => "tenant_not_allowed",
            Self::Blocked => "token_blocked",
            Self::WrongKind => "wrong_token_type",
            Self::Malformed(_) => "malformed",
            Self::IssuerUnreachable(_) => "issuer_unreachable",
            Self::IssuerMetadata(_) => "issuer_metadata_invalid",
            Self::Config(_) => "config_invalid",
            Self::Key(_) => "key_invalid",
            Self::Lifetime { .. } => "lifetime_out_of_range",
            Self::Signing(_) => "signing_failed",
        }
    }

    /// `CMGService_Invalid_Token/<code>`: the full reason for the log line.
    pub fn reason(&self) -> String {
        format!("{INVALID_TOKEN}/{}", self.code())
    }

    /// True when the token itself is at fault (answer 401); false when the verifier
    /// could not decide (issuer unreachable or misconfigured: the gateway may answer
    /// 503 and the client may retry) or for signer-side errors.
    pub fn is_token_fault(&self) -> bool {
        !matches!(
            self,
            Self::IssuerUnreachable(_)
                | Self::IssuerMetadata(_)
                | Self::Config(_)
                | Self::Key(_)
                | Self::Lifetime { .. }
                | Self::Signing(_)
        )
    }

    pub(crate) fn unsupported_alg(alg: &str) -> Self {
        let alg = alg
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .take(16)
            .collect();
        Self::UnsupportedAlg { alg }
    }
}
