//! The site's token and bundle signing keys: RSA 2048 generated with aws-lc-rs, kept as
//! PKCS#8 PEM (sealed in the database), public half as SubjectPublicKeyInfo PEM.

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;
use cmg_token::{SiteGuid, SiteSigner};

use crate::secret::Secret;

/// A new signing key: its private PEM, public PEM and key id (the RFC 7638 thumbprint
/// the tokens and bundles it signs carry as `kid`).
#[derive(Debug)]
pub struct NewKey {
    pub private_pem: Secret,
    pub public_pem: String,
    pub kid: String,
}

/// Generates an RSA 2048 key.
pub fn generate(site: &SiteGuid) -> Result<NewKey, String> {
    let pair = KeyPair::generate(KeySize::Rsa2048).map_err(|_| "RSA key generation failed")?;
    let private: Pkcs8V1Der<'static> = pair.as_der().map_err(|_| "RSA key encoding failed")?;
    let public: PublicKeyX509Der<'static> = pair
        .public_key()
        .as_der()
        .map_err(|_| "RSA public key encoding failed")?;
    let private_pem = Secret::new(to_pem("PRIVATE KEY", private.as_ref()));
    let public_pem = to_pem("PUBLIC KEY", public.as_ref());
    let signer = SiteSigner::from_pem(private_pem.expose().as_bytes(), site)
        .map_err(|e| format!("generated key refused: {e}"))?;
    Ok(NewKey {
        kid: signer.public_key().kid().to_owned(),
        private_pem,
        public_pem,
    })
}

/// PEM text for `der` under `label`, 64 characters a line.
pub fn to_pem(label: &str, der: &[u8]) -> String {
    cmg_pki::pem::to_pem(label, der)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cmg_token::{BundleVerifier, SitePublicKey};

    #[test]
    fn generated_key_signs_and_its_public_half_verifies() {
        let guid: SiteGuid = "6f1c7a6e-0000-4000-8000-000000000001"
            .parse()
            .expect("guid");
        let key = generate(&guid).expect("generate");
        let public = SitePublicKey::from_pem(key.public_pem.as_bytes()).expect("public");
        assert_eq!(public.kid(), key.kid);
        assert!(BundleVerifier::from_pems(&[key.public_pem.as_bytes()]).is_ok());
    }
}
