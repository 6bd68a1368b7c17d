//! The client face's trust material: which roots a client chain may end at, which
//! intermediates help build it, whether revocation is checked, and the minimum TLS
//! version. It comes from the config files until the site's first settings bundle is in
//! force, and from the bundle after that ([`ClientTrust::from_bundle`]).

use std::path::PathBuf;

use cmg_pki::describe::describe;
use cmg_proto::settings::SettingsBundle;
use rustls::pki_types::CertificateDer;

use crate::config::{Config, MinTls};
use crate::error::SetupError;

/// Where the material in force came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrustSource {
    Files,
    /// A settings bundle of this version.
    Bundle(u64),
}

/// Client trust and TLS policy, loaded and checked.
#[derive(Clone, Debug)]
pub struct ClientTrust {
    /// Anchors a client chain may end at: the uploaded roots, already restricted to the
    /// certificate trust list when there is one.
    pub roots: Vec<CertificateDer<'static>>,
    pub intermediates: Vec<CertificateDer<'static>>,
    /// "Verify client certificate revocation".
    pub verify_revocation: bool,
    pub min_version: MinTls,
    pub source: TrustSource,
}

impl ClientTrust {
    /// Every CA certificate whose CRLs are accepted (roots and intermediates).
    pub fn cas(&self) -> Vec<CertificateDer<'static>> {
        self.roots
            .iter()
            .chain(&self.intermediates)
            .cloned()
            .collect()
    }

    /// From the files the config names.
    pub fn from_files(config: &Config) -> Result<Self, SetupError> {
        let auth = &config.client_auth;
        let mut roots = load_certs(&auth.trusted_roots)?;
        if !auth.trust_list.is_empty() {
            // The certificate trust list (seed 001) restricts which uploaded roots a
            // client chain may end at: a root outside the list is not an anchor.
            let listed = load_certs(&auth.trust_list)?;
            restrict(&mut roots, |r| {
                listed.iter().any(|l| l.as_ref() == r.as_ref())
            });
            if roots.is_empty() {
                return Err(SetupError::File {
                    path: auth.trust_list[0].clone(),
                    message: "no uploaded trusted root is in the certificate trust list".into(),
                });
            }
        }
        Ok(Self {
            roots,
            intermediates: load_certs(&auth.trusted_intermediates)?,
            verify_revocation: auth.verify_revocation,
            min_version: config.tls.min_version,
            source: TrustSource::Files,
        })
    }

    /// From a verified settings bundle. A bundle whose trust list excludes every
    /// uploaded root is refused whole, like the same mistake in the config files.
    pub fn from_bundle(b: &SettingsBundle) -> Result<Self, String> {
        let parse = |what: &str, pems: &[String]| -> Result<Vec<CertificateDer<'static>>, String> {
            let mut certs = Vec::new();
            for (i, pem) in pems.iter().enumerate() {
                let parsed = cmg_pki::pem::parse_certs(pem)
                    .map_err(|e| format!("client_auth.{what}[{i}]: {e}"))?;
                if parsed.is_empty() {
                    return Err(format!("client_auth.{what}[{i}]: no certificate"));
                }
                certs.extend(parsed);
            }
            Ok(certs)
        };
        let auth = &b.client_auth;
        let mut roots = parse("trusted_roots_pem", &auth.trusted_roots_pem)?;
        if let Some(list) = &auth.trust_list_sha256 {
            let mut fingerprints = Vec::with_capacity(roots.len());
            for r in &roots {
                let d = describe(r).map_err(|e| format!("client_auth.trusted_roots_pem: {e}"))?;
                fingerprints.push(d.sha256_hex);
            }
            let mut i = 0;
            restrict(&mut roots, |_| {
                let fp = &fingerprints[i];
                i += 1;
                list.iter().any(|l| l.eq_ignore_ascii_case(fp))
            });
            if roots.is_empty() && !auth.trusted_roots_pem.is_empty() {
                return Err(
                    "client_auth.trust_list_sha256 excludes every uploaded trusted root".into(),
                );
            }
        }
        let min_version = match b.tls.min_version.as_str() {
            "1.2" => MinTls::Tls12,
            "1.3" => MinTls::Tls13,
            other => {
                return Err(format!(
                    "tls.min_version {other:?}: expected \"1.2\" or \"1.3\""
                ))
            }
        };
        Ok(Self {
            roots,
            intermediates: parse("intermediates_pem", &auth.intermediates_pem)?,
            verify_revocation: auth.verify_revocation,
            min_version,
            source: TrustSource::Bundle(b.version),
        })
    }
}

fn restrict(
    roots: &mut Vec<CertificateDer<'static>>,
    keep: impl FnMut(&CertificateDer<'static>) -> bool,
) {
    let before = roots.len();
    roots.retain(keep);
    if roots.len() != before {
        tracing::info!(
            uploaded = before,
            trusted = roots.len(),
            "certificate trust list excludes some uploaded roots"
        );
    }
}

pub(super) fn load_certs(files: &[PathBuf]) -> Result<Vec<CertificateDer<'static>>, SetupError> {
    let mut certs = Vec::new();
    for p in files {
        certs.extend(cmg_pki::pem::load_certs(p)?);
    }
    Ok(certs)
}
