//! Who a client is: a certificate verified at the TLS handshake, or a bearer token
//! verified on a request. Vocabulary shared by the connection, the token checker and
//! the request path; it does no checking itself.

use http::HeaderValue;

/// How a client proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// A client certificate verified at the TLS handshake.
    Certificate,
    /// A bearer token the site signed (bulk registration or device token).
    SiteToken,
    /// A bearer token from an Entra ID / OIDC issuer.
    OidcToken,
}

impl AuthMethod {
    /// For the access log.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Certificate => "certificate",
            Self::SiteToken => "site_token",
            Self::OidcToken => "oidc_token",
        }
    }

    /// The value of `cmg-client-auth` sent to the role.
    pub fn header_value(self) -> &'static str {
        match self {
            Self::Certificate => "certificate",
            Self::SiteToken | Self::OidcToken => "token",
        }
    }
}

/// A verified client (certificate or token), as the request path needs it.
#[derive(Debug)]
pub struct ClientIdentity {
    /// Value of `cmg-client-identity` sent to the role: for a certificate its subject and
    /// SHA-256 thumbprint; for a token its issuer, type and subject.
    pub header: HeaderValue,
    /// Subject distinguished name or token subject, for the access log.
    pub subject: String,
    pub method: AuthMethod,
}

impl ClientIdentity {
    pub(crate) fn from_cert(cert: &rustls_pki_types::CertificateDer<'_>) -> Option<Self> {
        let s = cmg_pki::describe::describe(cert).ok()?;
        let full = format!(
            "subject=\"{}\"; sha256={}",
            s.subject.replace('"', "'"),
            s.sha256_hex
        );
        let header = HeaderValue::from_str(&full)
            .or_else(|_| HeaderValue::from_str(&format!("sha256={}", s.sha256_hex)))
            .ok()?;
        Some(Self {
            header,
            subject: s.subject,
            method: AuthMethod::Certificate,
        })
    }
}
