//! Secrets at rest: the master key, sealing with AES-256-GCM, and the [`Secret`] newtype.
//!
//! Every secret the site keeps (CA private keys, site signing keys, gateway server keys,
//! storage credentials) is stored as `v2:<key id>:<base64(nonce ‖ ciphertext ‖ tag)>`,
//! sealed with the master key and a random 96-bit nonce. The key id (hex of the first 8
//! bytes of SHA-256 over a label and the key) names the master key that sealed it, so a
//! value sealed under another key is refused by name rather than as damaged. Values
//! written before key ids (`v1:<base64>`) are opened with the key in force. The associated data names what the value is
//! (`ca-key`, `signing-key:<kid>`, `gateway-key:<name>`...), so a sealed value copied into
//! another row does not open (seed 001: "The secret keys ... are encrypted and stored in
//! the Configuration Manager site database").
//!
//! The master key never enters the database. It comes from a file (`--master-key-file`)
//! or the environment (`CMG_SITE_MASTER_KEY`): 32 bytes written as 64 hex digits or as
//! base64. Either may hold several keys, a key ring ([`crate::keyring`]): the last seals,
//! the others only open, so the site can move its secrets to a new key while it runs.

use std::fmt;

use zeroize::Zeroizing;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

/// The environment variable that may hold the master key.
pub const MASTER_KEY_ENV: &str = "CMG_SITE_MASTER_KEY";

const PREFIX_V1: &str = "v1:";
const PREFIX_V2: &str = "v2:";

/// A secret value (a PEM private key, a token, a password). `Debug` prints a mask; there
/// is no `Display`, so it cannot end up in a log line by accident; the memory is
/// zeroized when it is dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(Zeroizing::new(value.into()))
    }

    /// The clear value; use it where it is needed and nowhere else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Read from API requests (a storage key); never serialised back.
impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret::new)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Why sealing, opening or loading a key failed. Never carries secret material.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("master key: {0}")]
    MasterKey(String),
    #[error("sealed value {0:?} cannot be opened: wrong master key or damaged value")]
    Open(String),
    #[error(
        "sealed value {purpose:?} names master key {key_id}, which is not in the key ring \
         (it holds {ring}): put that key back in the master key file"
    )]
    NotInRing {
        purpose: String,
        key_id: String,
        ring: String,
    },
    #[error(
        "{count} sealed value(s) (first {first:?}) name master key {key_id}, which is not in \
         the key ring (it holds {ring}): put that key back in the master key file, start the \
         site and run `cmg site key rewrap` before removing it"
    )]
    MissingKey {
        key_id: String,
        count: usize,
        first: String,
        ring: String,
    },
    #[error("sealing failed")]
    Seal,
}

/// The key that seals every secret in the database, and its id.
pub struct MasterKey {
    key: LessSafeKey,
    id: String,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(***)")
    }
}

impl MasterKey {
    /// A new random key and its text form (hex), for a new site.
    pub fn generate() -> Result<(Self, Secret), SecretError> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        aws_lc_rs::rand::fill(bytes.as_mut())
            .map_err(|_| SecretError::MasterKey("no randomness".into()))?;
        let text = Secret::new(hex::encode(bytes.as_ref()));
        Ok((Self::from_bytes(bytes.as_ref())?, text))
    }

    /// Parses 32 bytes written as 64 hex digits or base64 (surrounding white space ignored).
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let text = text.trim();
        let bytes = Zeroizing::new(
            if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
                hex::decode(text).map_err(|_| SecretError::MasterKey("bad hex".into()))?
            } else {
                STANDARD.decode(text).map_err(|_| {
                    SecretError::MasterKey("expected 32 bytes as 64 hex digits or base64".into())
                })?
            },
        );
        Self::from_bytes(&bytes)
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, SecretError> {
        if bytes.len() != 32 {
            return Err(SecretError::MasterKey(format!(
                "expected 32 bytes, got {}",
                bytes.len()
            )));
        }
        let key = UnboundKey::new(&AES_256_GCM, bytes)
            .map_err(|_| SecretError::MasterKey("unusable key".into()))?;
        let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        ctx.update(b"cmg master key id\0");
        ctx.update(bytes);
        let id = hex::encode(&ctx.finish().as_ref()[..8]);
        Ok(Self {
            key: LessSafeKey::new(key),
            id,
        })
    }

    /// The key's id, as sealed values name it (not secret).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Seals `plain`, bound to `purpose`.
    pub fn seal(&self, purpose: &str, plain: &[u8]) -> Result<String, SecretError> {
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| SecretError::Seal)?;
        let mut buf = Zeroizing::new(plain.to_vec());
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(purpose.as_bytes()),
                &mut *buf,
            )
            .map_err(|_| SecretError::Seal)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(format!("{PREFIX_V2}{}:{}", self.id, STANDARD.encode(out)))
    }

    /// Opens a value [`seal`](Self::seal)ed for the same `purpose`.
    pub fn open(&self, purpose: &str, sealed: &str) -> Result<Secret, SecretError> {
        if let Some(id) = sealed_key_id(sealed) {
            if id != self.id {
                return Err(SecretError::NotInRing {
                    purpose: purpose.to_owned(),
                    key_id: id.to_owned(),
                    ring: self.id.clone(),
                });
            }
        }
        self.open_unchecked(purpose, sealed)
    }

    /// Opens `sealed` without looking at the key id it names (a `v1` value names none).
    pub(crate) fn open_unchecked(
        &self,
        purpose: &str,
        sealed: &str,
    ) -> Result<Secret, SecretError> {
        let err = || SecretError::Open(purpose.to_owned());
        let b64 = match sealed.strip_prefix(PREFIX_V2) {
            Some(rest) => rest.split_once(':').ok_or_else(err)?.1,
            None => sealed.strip_prefix(PREFIX_V1).ok_or_else(err)?,
        };
        let raw = STANDARD.decode(b64).map_err(|_| err())?;
        if raw.len() < NONCE_LEN {
            return Err(err());
        }
        let (nonce, rest) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| err())?;
        let mut buf = Zeroizing::new(rest.to_vec());
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(purpose.as_bytes()), &mut buf)
            .map_err(|_| err())?;
        std::str::from_utf8(plain)
            .map(Secret::new)
            .map_err(|_| err())
    }
}

/// The id of the master key a sealed value names; `None` for a value sealed before key ids
/// (`v1:`) or one that is not a sealed value at all.
pub fn sealed_key_id(sealed: &str) -> Option<&str> {
    sealed
        .strip_prefix(PREFIX_V2)
        .and_then(|rest| rest.split_once(':'))
        .map(|(id, _)| id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_bound_to_purpose_and_key() {
        let (key, text) = MasterKey::generate().expect("key");
        let sealed = key
            .seal("ca-key", b"-----BEGIN PRIVATE KEY-----")
            .expect("seal");
        assert!(!sealed.contains("BEGIN"));
        assert!(sealed.starts_with(&format!("v2:{}:", key.id())), "{sealed}");
        assert_eq!(
            key.open("ca-key", &sealed).expect("open").expose(),
            "-----BEGIN PRIVATE KEY-----"
        );
        assert!(key.open("signing-key:x", &sealed).is_err());
        let again = MasterKey::parse(text.expose()).expect("parse");
        assert!(again.open("ca-key", &sealed).is_ok());
        let (other, _) = MasterKey::generate().expect("key");
        assert_ne!(other.id(), key.id());
        let refused = other.open("ca-key", &sealed).expect_err("other key");
        assert!(
            refused.to_string().contains(key.id()) && refused.to_string().contains(other.id()),
            "names both keys: {refused}"
        );
        // A value sealed before key ids (v1) opens with the key in force.
        let v1 = format!("v1:{}", sealed.rsplit(':').next().expect("b64"));
        assert!(key.open("ca-key", &v1).is_ok());
        assert!(other.open("ca-key", &v1).is_err());
        let b64 = STANDARD.encode(hex::decode(text.expose()).expect("hex"));
        assert!(MasterKey::parse(&b64).is_ok());
        assert!(MasterKey::parse("short").is_err());
    }

    #[test]
    fn debug_masks() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        let (k, _) = MasterKey::generate().expect("key");
        assert_eq!(format!("{k:?}"), "MasterKey(***)");
    }
}
