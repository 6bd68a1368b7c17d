//! Secrets sealed to gateway instances: HPKE (RFC 9180) base mode with
//! DHKEM(X25519, HKDF-SHA256), HKDF-SHA256 and ChaCha20-Poly1305 (the `hpke` crate).
//!
//! Each gateway instance has its own X25519 key pair. The site keeps the public half
//! (recorded at export, when it writes the private half into the instance's package) and
//! seals a secret the settings bundle carries (the storage account key) once per
//! instance; the instance opens the copy addressed to it with its private key. The
//! associated data names what the secret is and for whom (`purpose`: gateway, instance,
//! account, key name), so a sealed copy moved to another field or instance does not
//! open. Connection points relay the bundle without being able to read it.
//!
//! The instance key file is `cmg-instance-key-v1:<base64 of the 32-byte private key>`,
//! written 0600 and refused when others may read it ([`cmg_core::private_file`]).
//!
//! This module does not decide what is sealed or which instances exist (the site does),
//! and does not verify bundles (the signature over the whole bundle, sealed parts
//! included, is [`crate::bundle`]'s).

use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use cmg_proto::settings::SealedSecret;
use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable as _, Kem as _, OpModeR, OpModeS, Serializable as _};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

type Kem = X25519HkdfSha256;

/// HPKE `info`: binds every sealed value to this protocol and its version.
const INFO: &[u8] = b"cmg sealed secret v1";
const KEY_FILE_PREFIX: &str = "cmg-instance-key-v1:";

/// Why sealing, opening or loading an instance key failed. Never carries secret bytes.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("instance public key: {0}")]
    PublicKey(&'static str),
    #[error(transparent)]
    KeyFile(#[from] cmg_core::private_file::PrivateFileError),
    #[error("instance key file {0}: not a cmg instance key")]
    KeyFormat(String),
    #[error("no copy of the secret is sealed to this instance ({instance}, key {key_id})")]
    NotForUs { instance: String, key_id: String },
    #[error("the sealed secret does not open with this instance's key (damaged, or sealed for another purpose)")]
    Open,
    #[error("sealing failed")]
    Seal,
}

/// An instance's public key: what the site seals to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstancePublicKey(<Kem as hpke::Kem>::PublicKey);

impl InstancePublicKey {
    /// From its base64 text (32 bytes), as the site stores it.
    pub fn from_base64(text: &str) -> Result<Self, SealError> {
        let raw = STANDARD
            .decode(text.trim())
            .map_err(|_| SealError::PublicKey("not base64"))?;
        <Kem as hpke::Kem>::PublicKey::from_bytes(&raw)
            .map(Self)
            .map_err(|_| SealError::PublicKey("not an X25519 public key"))
    }

    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0.to_bytes())
    }

    /// A short stable name for the key: hex of the first 8 bytes of its SHA-256.
    pub fn key_id(&self) -> String {
        let digest = Sha256::digest(self.0.to_bytes());
        hex_lower(&digest[..8])
    }

    /// Seals `plain` to this key for `instance`, bound to `purpose`.
    pub fn seal(
        &self,
        instance: &str,
        purpose: &str,
        plain: &[u8],
    ) -> Result<SealedSecret, SealError> {
        let aad = aad(instance, purpose);
        let (enc, ciphertext) = hpke::single_shot_seal::<ChaCha20Poly1305, HkdfSha256, Kem>(
            &OpModeS::Base,
            &self.0,
            INFO,
            plain,
            &aad,
        )
        .map_err(|_| SealError::Seal)?;
        Ok(SealedSecret {
            instance: instance.to_owned(),
            key_id: self.key_id(),
            enc: STANDARD.encode(enc.to_bytes()),
            ciphertext: STANDARD.encode(ciphertext),
        })
    }
}

/// An instance's private key (zeroized on drop by x25519-dalek).
pub struct InstanceKey {
    private: <Kem as hpke::Kem>::PrivateKey,
    public: InstancePublicKey,
}

impl std::fmt::Debug for InstanceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "InstanceKey({})", self.public.key_id())
    }
}

impl InstanceKey {
    /// A new random key pair and the text of its key file (keep it secret).
    pub fn generate() -> (Self, Zeroizing<String>) {
        let (private, public) = Kem::gen_keypair();
        let text = Zeroizing::new(format!(
            "{KEY_FILE_PREFIX}{}\n",
            STANDARD.encode(Zeroizing::new(private.to_bytes().to_vec()).as_slice())
        ));
        (
            Self {
                private,
                public: InstancePublicKey(public),
            },
            text,
        )
    }

    /// Parses a key file's text.
    pub fn parse(text: &str, origin: &str) -> Result<Self, SealError> {
        let bad = || SealError::KeyFormat(origin.to_owned());
        let b64 = text.trim().strip_prefix(KEY_FILE_PREFIX).ok_or_else(bad)?;
        let raw = Zeroizing::new(STANDARD.decode(b64).map_err(|_| bad())?);
        let private = <Kem as hpke::Kem>::PrivateKey::from_bytes(&raw).map_err(|_| bad())?;
        let public = InstancePublicKey(Kem::sk_to_pk(&private));
        Ok(Self { private, public })
    }

    /// Reads the key file at `path`, refusing it when group or others may read it.
    pub fn load(path: &Path) -> Result<Self, SealError> {
        let text = Zeroizing::new(cmg_core::private_file::read_to_string(path)?);
        Self::parse(&text, &path.display().to_string())
    }

    pub fn public(&self) -> &InstancePublicKey {
        &self.public
    }

    /// Opens the copy in `sealed` addressed to `instance` and this key, bound to `purpose`.
    pub fn open(
        &self,
        instance: &str,
        purpose: &str,
        sealed: &[SealedSecret],
    ) -> Result<Zeroizing<Vec<u8>>, SealError> {
        let key_id = self.public.key_id();
        let copy = sealed
            .iter()
            .find(|s| s.instance == instance && s.key_id == key_id)
            .ok_or_else(|| SealError::NotForUs {
                instance: instance.to_owned(),
                key_id: key_id.clone(),
            })?;
        let enc = STANDARD.decode(&copy.enc).map_err(|_| SealError::Open)?;
        let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&enc).map_err(|_| SealError::Open)?;
        let ciphertext = STANDARD
            .decode(&copy.ciphertext)
            .map_err(|_| SealError::Open)?;
        hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, Kem>(
            &OpModeR::Base,
            &self.private,
            &enc,
            INFO,
            &ciphertext,
            &aad(instance, purpose),
        )
        .map(Zeroizing::new)
        .map_err(|_| SealError::Open)
    }
}

fn aad(instance: &str, purpose: &str) -> Vec<u8> {
    format!("{instance}\n{purpose}").into_bytes()
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_instance_addressed_opens_its_copy() {
        let (a, a_text) = InstanceKey::generate();
        let (b, _) = InstanceKey::generate();
        let sealed = vec![
            a.public()
                .seal("cmg1-1", "storage:cmg1", b"c2VjcmV0")
                .expect("seal a"),
            b.public()
                .seal("cmg1-2", "storage:cmg1", b"c2VjcmV0")
                .expect("seal b"),
        ];
        assert!(!sealed[0].ciphertext.contains("c2VjcmV0"));
        let again = InstanceKey::parse(&a_text, "test").expect("parse");
        assert_eq!(again.public(), a.public());
        assert_eq!(
            again
                .open("cmg1-1", "storage:cmg1", &sealed)
                .expect("open")
                .as_slice(),
            b"c2VjcmV0"
        );
        assert_eq!(
            b.open("cmg1-2", "storage:cmg1", &sealed)
                .expect("open b")
                .as_slice(),
            b"c2VjcmV0"
        );
        // Another purpose, another instance's name, a key with no copy: refused.
        assert!(matches!(
            a.open("cmg1-1", "storage:cmg2", &sealed),
            Err(SealError::Open)
        ));
        assert!(matches!(
            a.open("cmg1-2", "storage:cmg1", &sealed),
            Err(SealError::NotForUs { .. })
        ));
        let (c, _) = InstanceKey::generate();
        assert!(matches!(
            c.open("cmg1-1", "storage:cmg1", &sealed),
            Err(SealError::NotForUs { .. })
        ));
        // A copy relabelled for another instance does not open there.
        let mut moved = sealed[0].clone();
        moved.instance = "cmg1-2".into();
        moved.key_id = b.public().key_id();
        assert!(matches!(
            b.open("cmg1-2", "storage:cmg1", &[moved]),
            Err(SealError::Open)
        ));
    }

    #[test]
    fn public_key_text_round_trips_and_debug_shows_no_secret() {
        let (k, text) = InstanceKey::generate();
        let b64 = k.public().to_base64();
        assert_eq!(
            &InstancePublicKey::from_base64(&b64).expect("parse"),
            k.public()
        );
        assert!(InstancePublicKey::from_base64("AAAA").is_err());
        assert!(InstanceKey::parse("nope", "t").is_err());
        let shown = format!("{k:?}");
        assert!(!shown.contains(text.trim().trim_start_matches(KEY_FILE_PREFIX)));
    }
}
