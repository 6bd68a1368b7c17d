//! rustls client configurations: one for the channels to the gateway instances, one for
//! the HTTPS roles (and the site's own services). Both use the ring provider and TLS 1.3
//! or 1.2.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::ResolvesClientCert;
use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls::version::{TLS12, TLS13};
use rustls::{ClientConfig, DistinguishedName, RootCertStore};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use crate::config::{ChannelTls, RoleTls, SiteLink};
use crate::error::ConnectorError;
use cmg_pki::pem;

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(what: &'static str, files: &[PathBuf]) -> Result<RootCertStore, ConnectorError> {
    let mut roots = RootCertStore::empty();
    for f in files {
        pem::add_roots(&mut roots, f).map_err(|e| ConnectorError::tls_material(what, e))?;
    }
    Ok(roots)
}

fn cert_and_key(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), ConnectorError> {
    let chain =
        pem::load_certs(cert).map_err(|e| ConnectorError::tls_material("certificate", e))?;
    let key = pem::load_key(key).map_err(|e| ConnectorError::tls_material("private key", e))?;
    Ok((chain, key))
}

/// The channel's client config: our certificate, gateway CA roots, ALPN `cmg-channel/1`.
pub(crate) fn channel_config(tls: &ChannelTls) -> Result<ClientConfig, ConnectorError> {
    let roots = roots("gateway CA", &tls.gateway_ca)?;
    let (chain, key) = cert_and_key(&tls.cert, &tls.key)?;
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&TLS13, &TLS12])?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)?;
    config.alpn_protocols = vec![cmg_proto::channel::ALPN.to_vec()];
    Ok(config)
}

/// The SNI and expected certificate name of the gateway.
pub(crate) fn server_name(service_name: &str) -> Result<ServerName<'static>, ConnectorError> {
    ServerName::try_from(service_name.to_owned())
        .map_err(|_| ConnectorError::ServiceName(service_name.to_owned()))
}

/// The role client config: role CA roots (and the site CA, for the site's own token and
/// location services), and the role client certificate if any. With a site link, the
/// connection point's own certificate is presented to the site (see [`RoleOrSiteCert`]),
/// so the site can believe the gateway's client identity headers on what it forwards.
pub(crate) fn role_config(
    tls: &RoleTls,
    site: Option<&SiteLink>,
) -> Result<ClientConfig, ConnectorError> {
    let site_ca = match site {
        Some(link) => roots("site CA", &link.ca)?,
        None => RootCertStore::empty(),
    };
    let mut trusted = roots("role CA", &tls.ca)?;
    for f in site.map_or(&[][..], |l| &l.ca[..]) {
        pem::add_roots(&mut trusted, f).map_err(|e| ConnectorError::tls_material("site CA", e))?;
    }
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&TLS13, &TLS12])?
        .with_root_certificates(trusted);
    let certified = |ck: &crate::config::CertKey| -> Result<Arc<CertifiedKey>, ConnectorError> {
        let (chain, key) = cert_and_key(&ck.cert, &ck.key)?;
        Ok(Arc::new(CertifiedKey::from_der(chain, key, &provider())?))
    };
    let role = tls.client_cert.as_ref().map(&certified).transpose()?;
    Ok(match site {
        Some(link) => builder.with_client_cert_resolver(Arc::new(RoleOrSiteCert {
            site_ca_subjects: site_ca.subjects(),
            site: certified(&link.client)?,
            role,
        })),
        None => match role {
            Some(key) => builder.with_client_cert_resolver(Arc::new(RoleOrSiteCert {
                site_ca_subjects: Vec::new(),
                site: key.clone(),
                role: Some(key),
            })),
            None => builder.with_no_client_auth(),
        },
    })
}

/// Chooses the client certificate by the issuers the server asks for: the connection
/// point's own certificate when the server names the site CA (the site's listener does),
/// the `[roles]` certificate (if any) otherwise.
#[derive(Debug)]
struct RoleOrSiteCert {
    site_ca_subjects: Vec<DistinguishedName>,
    site: Arc<CertifiedKey>,
    role: Option<Arc<CertifiedKey>>,
}

impl ResolvesClientCert for RoleOrSiteCert {
    fn resolve(
        &self,
        root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        let asks_for_site = root_hint_subjects
            .iter()
            .any(|h| self.site_ca_subjects.iter().any(|s| s.as_ref() == *h));
        if asks_for_site {
            Some(self.site.clone())
        } else {
            self.role.clone()
        }
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// The site API client config: site CA roots and the connection point's certificate.
pub(crate) fn site_config(link: &SiteLink) -> Result<ClientConfig, ConnectorError> {
    let roots = roots("site CA", &link.ca)?;
    let (chain, key) = cert_and_key(&link.client.cert, &link.client.key)?;
    // hyper-rustls sets ALPN (http/1.1) itself.
    Ok(ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&TLS13, &TLS12])?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)?)
}
