//! TLS for both faces of the gateway, chosen per connection from the ClientHello:
//! a connection point offers ALPN `cmg-channel/1` and must present a site-CA
//! certificate; anyone else is a client (ALPN `h2` / `http/1.1`) whose certificate, when
//! presented, is verified against the uploaded roots and intermediates (restricted to
//! the certificate trust list when one is configured).
//!
//! Cipher suites are rustls's defaults: AEAD only (AES-GCM, ChaCha20-Poly1305), with
//! forward secrecy (TLS 1.2 suites are ECDHE only). [`LiveTls`] holds the current pair
//! of configs; the [`TlsManager`] rebuilds and swaps them when the files change on disk
//! ([`reload`]) or a settings bundle brings new client trust or TLS policy
//! ([`trust`]). A new handshake uses the new material; live connections keep the one
//! they started with.

pub mod manager;
pub mod reload;
pub mod trust;

use std::sync::Arc;

use cmg_pki::client_verifier::PkiClientVerifier;
use cmg_pki::revocation::RevocationChecker;
use cmg_pki::trust::TrustStore;
use rustls::server::ServerConfig;
use rustls::version::{TLS12, TLS13};

use crate::config::{Config, MinTls};
use crate::error::SetupError;
pub use manager::TlsManager;
use trust::load_certs;
pub use trust::{ClientTrust, TrustSource};

/// The two server configs of a gateway instance.
#[derive(Clone, Debug)]
pub struct TlsConfigs {
    /// For internet clients: client certificate optional, verified when presented.
    pub client: Arc<ServerConfig>,
    /// For connection points: site-CA client certificate required.
    pub channel: Arc<ServerConfig>,
    /// The verifier inside `client` (`None` without client trust): a resumed session
    /// skips it in rustls, so the listener runs it again on the session's certificates
    /// (`listener::recheck_resumed`), with the revocation status known now.
    pub client_verifier: Option<Arc<PkiClientVerifier>>,
    /// The verifier inside `channel`, run again on a resumed channel session likewise.
    pub channel_verifier: Arc<PkiClientVerifier>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn load_crls(
    files: &[std::path::PathBuf],
) -> Result<Vec<rustls::pki_types::CertificateRevocationListDer<'static>>, SetupError> {
    let mut crls = Vec::new();
    for p in files {
        crls.extend(cmg_pki::pem::load_crls(p)?);
    }
    Ok(crls)
}

/// A revocation checker for `trust` (its CAs, the config's CRL files and fetch
/// settings). Created once and kept across reloads and bundles, so its CRL cache and
/// fetches survive them.
pub fn revocation(config: &Config, trust: &ClientTrust) -> Result<RevocationChecker, SetupError> {
    Ok(RevocationChecker::new(
        config.client_auth.revocation.clone(),
        trust.cas(),
        load_crls(&config.client_auth.crl_files)?,
    )?)
}

/// A revocation checker for connection point certificates (`[channel]
/// verify_revocation`): the site CAs, the channel CRL files, `[client_auth]`'s fetch
/// settings with a cache directory of its own. Created once, like the client one.
pub fn channel_revocation(config: &Config) -> Result<RevocationChecker, SetupError> {
    let mut settings = config.client_auth.revocation.clone();
    settings.cache_dir = settings.cache_dir.map(|d| d.join("channel"));
    Ok(RevocationChecker::new(
        settings,
        load_certs(&config.channel.site_ca)?,
        load_crls(&config.channel.crl_files)?,
    )?)
}

/// Builds both server configs: the server certificate, CRL files and site CA from the
/// files the config names, the client trust and TLS policy from `trust`. With a
/// revocation checker (used when `trust.verify_revocation` is on), its configured CRLs
/// and trusted CAs are refreshed too; so are the channel checker's (connection point
/// certificates, when `[channel] verify_revocation` is on).
pub fn build(
    config: &Config,
    trust: &ClientTrust,
    revocation: Option<&RevocationChecker>,
    channel_revocation: Option<&RevocationChecker>,
) -> Result<TlsConfigs, SetupError> {
    let chain = cmg_pki::pem::load_certs(&config.tls.cert)?;
    let key = cmg_pki::pem::load_key(&config.tls.key)?;

    let versions: &[&'static rustls::SupportedProtocolVersion] = match trust.min_version {
        MinTls::Tls12 => &[&TLS13, &TLS12],
        MinTls::Tls13 => &[&TLS13],
    };

    // Clients: certificate optional here; MutualAuth URLs demand one at the HTTP layer.
    let mut client_verifier = None;
    let client = if trust.roots.is_empty() {
        ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(versions)
            .map_err(SetupError::Tls)?
            .with_no_client_auth()
    } else {
        let mut store = TrustStore::new(trust.roots.clone(), trust.intermediates.clone())?;
        if let Some(checker) = revocation.filter(|_| trust.verify_revocation) {
            checker.set_configured(&load_crls(&config.client_auth.crl_files)?)?;
            checker.trust_cas(&trust.cas());
            store = store.with_revocation(checker.clone());
        }
        let verifier = Arc::new(PkiClientVerifier::new(Arc::new(store), false));
        client_verifier = Some(verifier.clone());
        ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(versions)
            .map_err(SetupError::Tls)?
            .with_client_cert_verifier(verifier)
    };
    let mut client = client
        .with_single_cert(chain.clone(), key.clone_key())
        .map_err(SetupError::Tls)?;
    client.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];

    // Connection points: mandatory site-CA certificate, channel ALPN only, TLS 1.2+.
    let site_cas = load_certs(&config.channel.site_ca)?;
    let mut site = TrustStore::new(site_cas.clone(), Vec::new())?;
    if let Some(checker) = channel_revocation {
        checker.set_configured(&load_crls(&config.channel.crl_files)?)?;
        checker.trust_cas(&site_cas);
        site = site.with_revocation(checker.clone());
    }
    let channel_verifier = Arc::new(PkiClientVerifier::new(Arc::new(site), true));
    let mut channel = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&TLS13, &TLS12])
        .map_err(SetupError::Tls)?
        .with_client_cert_verifier(channel_verifier.clone())
        .with_single_cert(chain, key)
        .map_err(SetupError::Tls)?;
    channel.alpn_protocols = vec![cmg_proto::channel::ALPN.to_vec()];

    Ok(TlsConfigs {
        client: Arc::new(client),
        channel: Arc::new(channel),
        client_verifier,
        channel_verifier,
    })
}

/// The gateway's current TLS configs, replaced as a whole on reload.
#[derive(Debug)]
pub struct LiveTls {
    current: std::sync::RwLock<TlsConfigs>,
}

impl LiveTls {
    pub fn new(configs: TlsConfigs) -> Self {
        Self {
            current: std::sync::RwLock::new(configs),
        }
    }

    /// The configs for a new handshake (two `Arc` clones).
    pub fn get(&self) -> TlsConfigs {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn replace(&self, configs: TlsConfigs) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = configs;
    }
}
