//! The site's internal CA: created once by `cmg site init`, it issues the connection
//! point certificates (seed 003, "CMG connection point certificate") and the site API's
//! server certificate. Unlike [`demo`](crate::demo), the CA key is kept: the caller
//! stores it (the site seals it in its database).

use std::fmt;

use cmg_proto::{ConnectorId, SiteCode};
use rcgen::{Issuer, KeyPair};
use time::OffsetDateTime;

use crate::demo::{connector_cert, gen_err, root_ca, server_cert, Ca};
use crate::error::PkiError;

/// A certificate and its private key, both PEM. `Debug` shows neither.
#[derive(Clone)]
pub struct CertAndKey {
    pub cert_pem: String,
    pub key_pem: String,
}

impl fmt::Debug for CertAndKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CertAndKey { .. }")
    }
}

/// A site CA loaded with its key, ready to issue.
pub struct SiteCa {
    ca: Ca,
}

impl fmt::Debug for SiteCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SiteCa { .. }")
    }
}

impl SiteCa {
    /// A new self-signed CA (ECDSA P-256, ten years) for `site`.
    pub fn generate(site: &SiteCode) -> Result<CertAndKey, PkiError> {
        // The organisation names the site, so two sites' CAs never share a name.
        let ca = root_ca(
            &format!("cmg site CA {site}"),
            &format!("cmg site {site}"),
            OffsetDateTime::now_utc(),
        )?;
        Ok(CertAndKey {
            cert_pem: ca.pem,
            key_pem: ca.issuer.key().serialize_pem(),
        })
    }

    /// Loads a CA from its certificate and key.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, PkiError> {
        let key = KeyPair::from_pem(key_pem).map_err(gen_err("site CA key"))?;
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key).map_err(gen_err("site CA"))?;
        Ok(Self {
            ca: Ca {
                issuer,
                pem: cert_pem.to_owned(),
                // Only used when this CA issues a subordinate CA, which the site never does.
                generation: String::new(),
            },
        })
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.ca.pem
    }

    /// A connection point certificate naming `site` and `id` (URI SAN
    /// `urn:cmg:connection-point:<site>:<id>`), two years.
    pub fn issue_connector(
        &self,
        site: &SiteCode,
        id: &ConnectorId,
    ) -> Result<CertAndKey, PkiError> {
        let (issued, _) = connector_cert(&self.ca, site, id, OffsetDateTime::now_utc())?;
        Ok(CertAndKey {
            cert_pem: issued.cert_pem,
            key_pem: issued.key_pem,
        })
    }

    /// A server certificate for `names` (DNS names or IP addresses), two years.
    pub fn issue_server(&self, names: &[String]) -> Result<CertAndKey, PkiError> {
        if names.is_empty() {
            return Err(PkiError::Generate(
                "a server certificate needs a name".into(),
            ));
        }
        let issued = server_cert(&self.ca, names, OffsetDateTime::now_utc())?;
        Ok(CertAndKey {
            cert_pem: issued.cert_pem,
            key_pem: issued.key_pem,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::describe::connector_identity;
    use crate::pem::parse_certs;

    #[test]
    fn issues_connector_and_server_certificates_from_a_reloaded_ca() {
        let site = SiteCode::new("PS1").expect("site");
        let made = SiteCa::generate(&site).expect("generate");
        let ca = SiteCa::from_pem(&made.cert_pem, &made.key_pem).expect("load");
        let id = ConnectorId::new("cp1").expect("id");
        let cp = ca.issue_connector(&site, &id).expect("issue");
        let certs = parse_certs(&cp.cert_pem).expect("parse");
        assert_eq!(connector_identity(&certs[0]).expect("identity"), (site, id));
        let server = ca
            .issue_server(&["localhost".into(), "127.0.0.1".into()])
            .expect("server");
        assert!(server.cert_pem.contains("BEGIN CERTIFICATE"));
    }
}
