//! TLS for both faces of the gateway, chosen per connection from the ClientHello:
//! a connection point offers ALPN `cmg-channel/1` and must present a site-CA
//! certificate; anyone else is a client (ALPN `h2` / `http/1.1`) whose certificate, when
//! presented, is verified against the uploaded roots and intermediates (restricted to
//! the certificate trust list when one is configured).
//!
//! Cipher suites are rustls's defaults: AEAD only (AES-GCM, ChaCha20-Poly1305), with
//! forward secrecy (TLS 1.2 suites are ECDHE only). [`LiveTls`] holds the current pair
//! of configs; [`reload`] swaps in new ones when the files change on disk. A new
//! handshake uses the new material; live connections keep the one they started with.

pub mod reload;

use std::sync::Arc;

use cmg_pki::client_verifier::PkiClientVerifier;
use cmg_pki::revocation::RevocationChecker;
use cmg_pki::trust::TrustStore;
use rustls::pki_types::CertificateDer;
use rustls::server::ServerConfig;
use rustls::version::{TLS12, TLS13};

use crate::config::{Config, MinTls};
use crate::error::SetupError;

/// The two server configs of a gateway instance.
#[derive(Clone, Debug)]
pub struct TlsConfigs {
    /// For internet clients: client certificate optional, verified when presented.
    pub client: Arc<ServerConfig>,
    /// For connection points: site-CA client certificate required.
    pub channel: Arc<ServerConfig>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn load_certs(files: &[std::path::PathBuf]) -> Result<Vec<CertificateDer<'static>>, SetupError> {
    let mut certs = Vec::new();
    for p in files {
        certs.extend(cmg_pki::pem::load_certs(p)?);
    }
    Ok(certs)
}

/// The revocation checker of the client face: `None` when `verify_revocation` is off
/// or no client roots are trusted. Created once per instance and kept across TLS
/// reloads, so its CRL cache and fetches survive them.
pub fn revocation(config: &Config) -> Result<Option<RevocationChecker>, SetupError> {
    let auth = &config.client_auth;
    if !auth.verify_revocation || auth.trusted_roots.is_empty() {
        if !auth.crl_files.is_empty() {
            tracing::warn!("client_auth.verify_revocation is off: crl_files are ignored");
        }
        return Ok(None);
    }
    let mut cas = load_certs(&auth.trusted_roots)?;
    cas.extend(load_certs(&auth.trusted_intermediates)?);
    let checker =
        RevocationChecker::new(auth.revocation.clone(), cas, load_crls(&auth.crl_files)?)?;
    Ok(Some(checker))
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

fn load_store(
    roots: &[std::path::PathBuf],
    intermediates: &[std::path::PathBuf],
    trust_list: &[std::path::PathBuf],
) -> Result<TrustStore, SetupError> {
    let mut root_certs = load_certs(roots)?;
    if !trust_list.is_empty() {
        // The certificate trust list (seed 001) restricts which uploaded roots a client
        // chain may end at: a root outside the list is not an anchor, uploaded or not.
        let listed = load_certs(trust_list)?;
        let before = root_certs.len();
        root_certs.retain(|r| listed.iter().any(|l| l.as_ref() == r.as_ref()));
        if root_certs.len() != before {
            tracing::info!(
                uploaded = before,
                trusted = root_certs.len(),
                "certificate trust list excludes some uploaded roots"
            );
        }
        if root_certs.is_empty() {
            return Err(SetupError::File {
                path: trust_list[0].clone(),
                message: "no uploaded trusted root is in the certificate trust list".into(),
            });
        }
    }
    let inter = load_certs(intermediates)?;
    Ok(TrustStore::new(root_certs, inter)?)
}

/// Builds both server configs from the files the config names. With a revocation
/// checker, its configured CRLs and trusted CAs are refreshed from the files too.
pub fn build(
    config: &Config,
    revocation: Option<&RevocationChecker>,
) -> Result<TlsConfigs, SetupError> {
    let chain = cmg_pki::pem::load_certs(&config.tls.cert)?;
    let key = cmg_pki::pem::load_key(&config.tls.key)?;

    let versions: &[&'static rustls::SupportedProtocolVersion] = match config.tls.min_version {
        MinTls::Tls12 => &[&TLS13, &TLS12],
        MinTls::Tls13 => &[&TLS13],
    };

    // Clients: certificate optional here; MutualAuth URLs demand one at the HTTP layer.
    let client = if config.client_auth.trusted_roots.is_empty() {
        ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(versions)
            .map_err(SetupError::Tls)?
            .with_no_client_auth()
    } else {
        let auth = &config.client_auth;
        let mut store = load_store(
            &auth.trusted_roots,
            &auth.trusted_intermediates,
            &auth.trust_list,
        )?;
        if let Some(checker) = revocation {
            checker.set_configured(&load_crls(&auth.crl_files)?)?;
            let mut cas = load_certs(&auth.trusted_roots)?;
            cas.extend(load_certs(&auth.trusted_intermediates)?);
            checker.trust_cas(&cas);
            store = store.with_revocation(checker.clone());
        }
        ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(versions)
            .map_err(SetupError::Tls)?
            .with_client_cert_verifier(Arc::new(PkiClientVerifier::new(Arc::new(store), false)))
    };
    let mut client = client
        .with_single_cert(chain.clone(), key.clone_key())
        .map_err(SetupError::Tls)?;
    client.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];

    // Connection points: mandatory site-CA certificate, channel ALPN only, TLS 1.2+.
    let site = load_store(&config.channel.site_ca, &[], &[])?;
    let mut channel = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&TLS13, &TLS12])
        .map_err(SetupError::Tls)?
        .with_client_cert_verifier(Arc::new(PkiClientVerifier::new(Arc::new(site), true)))
        .with_single_cert(chain, key)
        .map_err(SetupError::Tls)?;
    channel.alpn_protocols = vec![cmg_proto::channel::ALPN.to_vec()];

    Ok(TlsConfigs {
        client: Arc::new(client),
        channel: Arc::new(channel),
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
