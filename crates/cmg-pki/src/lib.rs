//! cmg-pki: certificate material for every cmg role. It loads certificates, keys
//! and CRLs from PEM ([`pem`]), holds what a role trusts ([`trust::TrustStore`]),
//! validates chains for a purpose, time, name and revocation status
//! ([`verify::verify_chain`]), plugs that check into rustls as a client certificate
//! verifier ([`client_verifier::PkiClientVerifier`]), reads a connection point's
//! identity from its certificate ([`describe`]), backs `cmg cert verify` ([`cli`]),
//! and mints a throw-away demo PKI ([`demo`]). [`revocation`] fetches, caches and
//! refreshes CRLs from distribution points, and asks OCSP responders for certificates
//! no usable CRL covers, for fail-closed revocation checking. With the `pkcs12` feature,
//! `pkcs12` (a module present with the feature) reads a `.pfx` server certificate and key.
//!
//! It does not check the site's certificate trust list, and does not handle tokens
//! (Entra ID or the site's own); those belong to the roles that use it.

pub mod cli;
pub mod client_verifier;
pub mod demo;
pub mod describe;
pub mod error;
pub mod pem;
#[cfg(feature = "pkcs12")]
pub mod pkcs12;
pub mod revocation;
pub mod site_ca;
pub mod trust;
pub mod verify;

pub use error::PkiError;
pub use trust::TrustStore;
pub use verify::{verify_chain, Purpose, VerifyError, VerifyOptions};
