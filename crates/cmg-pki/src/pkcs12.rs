//! Reading a PKCS#12 (`.pfx`) server certificate, as the product's console takes it
//! (seed 004, "Create a server authentication certificate ... export it as a .pfx"):
//! the private key and its certificate chain, leaf first, as PEM.
//!
//! Parsing and decryption (PBES2 with AES, as OpenSSL 3 and Windows write by default;
//! the legacy RC2/3DES PBES1 schemes are not enabled) are the `p12-keystore` crate's;
//! this module only picks the key's chain and orders it.

use p12_keystore::{KeyStore, Pkcs12ImportPolicy};

use crate::pem::to_pem;
use crate::PkiError;

/// A server certificate chain and its key, PEM.
#[derive(Clone)]
pub struct PemIdentity {
    /// Leaf first, then its issuers as the file holds them.
    pub chain_pem: String,
    /// PKCS#8 `PRIVATE KEY`.
    pub key_pem: String,
}

impl std::fmt::Debug for PemIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PemIdentity")
            .field("chain_pem", &self.chain_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// The (first) private key of `pfx` and its certificate chain. A wrong password, a
/// file without a key, or a key without its certificate is an error that says which.
pub fn read_pkcs12(pfx: &[u8], password: &str) -> Result<PemIdentity, PkiError> {
    let store = KeyStore::from_pkcs12(pfx, password, Pkcs12ImportPolicy::Strict).map_err(|e| {
        PkiError::PemData(format!(
            "PKCS#12: {e} (wrong password, or an encryption other than PBES2/AES)"
        ))
    })?;
    let (_, chain) = store
        .private_key_chain()
        .ok_or_else(|| PkiError::PemData("PKCS#12: no private key with its certificate".into()))?;
    if chain.certs().is_empty() {
        return Err(PkiError::PemData(
            "PKCS#12: the private key has no certificate".into(),
        ));
    }
    Ok(PemIdentity {
        chain_pem: chain
            .certs()
            .iter()
            .map(|c| to_pem("CERTIFICATE", c.as_der()))
            .collect(),
        key_pem: to_pem("PRIVATE KEY", chain.key().as_der()),
    })
}
