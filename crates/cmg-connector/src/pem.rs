//! Reading certificates and private keys from PEM files.
//!
//! A small private stand-in for the PEM helpers of `cmg-pki`; callers only see
//! [`rustls_pki_types::pem::Error`], so switching over changes nothing outside this file.

use std::path::Path;

use rustls::RootCertStore;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Every certificate in `path`, in file order; a file without one is an error.
pub(crate) fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, pem::Error> {
    let certs = CertificateDer::pem_file_iter(path)?.collect::<Result<Vec<_>, _>>()?;
    if certs.is_empty() {
        return Err(pem::Error::NoItemsFound);
    }
    Ok(certs)
}

/// The first private key (PKCS#8, PKCS#1 or SEC1) in `path`.
pub(crate) fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, pem::Error> {
    PrivateKeyDer::from_pem_file(path)
}

/// Adds every certificate of `path` to `roots`.
pub(crate) fn add_roots(roots: &mut RootCertStore, path: &Path) -> Result<(), RootsError> {
    for cert in load_certs(path)? {
        roots.add(cert)?;
    }
    Ok(())
}

/// Why a CA file could not be used as trust anchors.
#[derive(Debug, thiserror::Error)]
pub enum RootsError {
    #[error(transparent)]
    Pem(#[from] pem::Error),
    #[error("not a usable trust anchor: {0}")]
    Anchor(#[from] rustls::Error),
}
