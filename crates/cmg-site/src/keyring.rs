//! The master key ring: the keys a site may open its sealed values with, and the one it
//! seals with, read from a file or the environment ([`KeySource`]).
//!
//! A ring holds one or more master keys, each 32 bytes as 64 hex digits or base64,
//! separated by white space; `#` starts a comment to the end of the line. The **last**
//! key seals every new value; the others only open values that name them
//! (`v2:<key id>:...`, see [`crate::secret`]). Adding a key is appending a line; `cmg
//! site key rewrap` then moves every sealed value to it while the site runs
//! ([`Store::rewrap_secrets`](crate::store::Store::rewrap_secrets)), after which the older
//! lines can be deleted. A value that names a key the ring does not hold is refused with
//! that key's id.
//!
//! It does not decide where the ring is kept (the `cmg site` commands do) and never
//! writes it.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use zeroize::Zeroizing;

use crate::secret::{sealed_key_id, MasterKey, Secret, SecretError, MASTER_KEY_ENV};

/// One or more master keys; the last seals (see the module docs).
#[derive(Clone)]
pub struct KeyRing {
    /// Oldest first; never empty; no two with the same id.
    keys: Vec<Arc<MasterKey>>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyRing({})", self.describe())
    }
}

impl From<MasterKey> for KeyRing {
    fn from(key: MasterKey) -> Self {
        Self {
            keys: vec![Arc::new(key)],
        }
    }
}

impl KeyRing {
    /// A ring of `keys`, oldest first (the last seals). A key given twice counts once, at
    /// its last place.
    pub fn new(keys: Vec<MasterKey>) -> Result<Self, SecretError> {
        let mut ring: Vec<Arc<MasterKey>> = Vec::with_capacity(keys.len());
        for k in keys {
            ring.retain(|old| old.id() != k.id());
            ring.push(Arc::new(k));
        }
        if ring.is_empty() {
            return Err(SecretError::MasterKey("the key ring holds no key".into()));
        }
        Ok(Self { keys: ring })
    }

    /// Parses the text of a ring (see the module docs).
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let mut keys = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or_default();
            for word in line.split_whitespace() {
                keys.push(MasterKey::parse(word).map_err(|e| {
                    SecretError::MasterKey(format!(
                        "key {} (line {}): {}",
                        keys.len() + 1,
                        n + 1,
                        strip(e)
                    ))
                })?);
            }
        }
        Self::new(keys)
    }

    /// The key that seals.
    pub fn sealing(&self) -> &MasterKey {
        // `keys` is never empty (see `new`).
        &self.keys[self.keys.len() - 1]
    }

    /// The ids of the keys, oldest first.
    pub fn ids(&self) -> Vec<String> {
        self.keys.iter().map(|k| k.id().to_owned()).collect()
    }

    pub fn contains(&self, id: &str) -> bool {
        self.keys.iter().any(|k| k.id() == id)
    }

    /// The ids, comma separated, for messages.
    pub(crate) fn describe(&self) -> String {
        self.ids().join(", ")
    }

    /// This ring with the keys of `older` it lacks put before its own: what a running
    /// site holds after reading its ring again, so that a value not yet moved to the new
    /// key still opens although its key left the file.
    pub fn keeping(&self, older: &KeyRing) -> KeyRing {
        let mut keys: Vec<Arc<MasterKey>> = older
            .keys
            .iter()
            .filter(|k| !self.contains(k.id()))
            .cloned()
            .collect();
        keys.extend(self.keys.iter().cloned());
        KeyRing { keys }
    }

    /// Seals `plain` for `purpose` with the [sealing](Self::sealing) key.
    pub fn seal(&self, purpose: &str, plain: &[u8]) -> Result<String, SecretError> {
        self.sealing().seal(purpose, plain)
    }

    /// Opens `sealed` with the key it names; a value from before key ids with whichever
    /// key of the ring opens it (newest first).
    pub fn open(&self, purpose: &str, sealed: &str) -> Result<Secret, SecretError> {
        match sealed_key_id(sealed) {
            Some(id) => match self.keys.iter().find(|k| k.id() == id) {
                Some(k) => k.open_unchecked(purpose, sealed),
                None => Err(SecretError::NotInRing {
                    purpose: purpose.to_owned(),
                    key_id: id.to_owned(),
                    ring: self.describe(),
                }),
            },
            None => self
                .keys
                .iter()
                .rev()
                .find_map(|k| k.open_unchecked(purpose, sealed).ok())
                .ok_or_else(|| SecretError::Open(purpose.to_owned())),
        }
    }
}

/// Where a site reads its key ring, at start and again when it rewraps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A file readable by its owner only.
    File(PathBuf),
    /// [`MASTER_KEY_ENV`] (read again on rewrap, but a running process's environment
    /// does not change: a new key there takes a restart first).
    Env,
}

impl KeySource {
    /// Reads the ring.
    pub fn load(&self) -> Result<KeyRing, SecretError> {
        match self {
            KeySource::File(path) => {
                let text = Zeroizing::new(
                    cmg_core::private_file::read_to_string(path)
                        .map_err(|e| SecretError::MasterKey(e.to_string()))?,
                );
                KeyRing::parse(&text).map_err(|e| {
                    SecretError::MasterKey(format!("{}: {}", path.display(), strip(e)))
                })
            }
            KeySource::Env => match std::env::var(MASTER_KEY_ENV) {
                Ok(text) => KeyRing::parse(&Zeroizing::new(text))
                    .map_err(|e| SecretError::MasterKey(format!("{MASTER_KEY_ENV}: {}", strip(e)))),
                Err(_) => Err(SecretError::MasterKey(format!(
                    "no master key: give --master-key-file or set {MASTER_KEY_ENV}"
                ))),
            },
        }
    }
}

/// The message of a `MasterKey` error without its `master key: ` prefix.
fn strip(e: SecretError) -> String {
    match e {
        SecretError::MasterKey(m) => m,
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> (MasterKey, String) {
        let (k, text) = MasterKey::generate().expect("key");
        (k, text.expose().to_owned())
    }

    #[test]
    fn the_last_key_seals_and_every_key_opens_what_names_it() {
        let (old, old_text) = key();
        let (_, new_text) = key();
        let sealed_old = old.seal("ca-key", b"secret").expect("seal");
        let ring = KeyRing::parse(&format!(
            "# rotated 2026-12\n{old_text}\n\n{new_text}  # the new one\n"
        ))
        .expect("ring");
        assert_eq!(ring.ids().len(), 2);
        assert_eq!(ring.ids()[0], old.id());
        assert_ne!(ring.sealing().id(), old.id());
        assert_eq!(
            ring.open("ca-key", &sealed_old).expect("open").expose(),
            "secret"
        );
        let sealed_new = ring.seal("ca-key", b"secret").expect("seal");
        assert_eq!(
            crate::secret::sealed_key_id(&sealed_new),
            Some(ring.sealing().id())
        );

        // The old key alone: the new value names a key it lacks, by id.
        let alone = KeyRing::parse(&old_text).expect("ring");
        let err = alone.open("ca-key", &sealed_new).expect_err("missing key");
        let msg = err.to_string();
        assert!(
            msg.contains(ring.sealing().id()) && msg.contains(old.id()),
            "names the missing key and the ring: {msg}"
        );
        // A running site that re-reads a file without the old key keeps it in memory.
        let kept = KeyRing::parse(&new_text).expect("ring").keeping(&ring);
        assert_eq!(kept.ids(), ring.ids());
        assert!(kept.open("ca-key", &sealed_old).is_ok());
    }

    #[test]
    fn a_value_from_before_key_ids_opens_with_any_key_of_the_ring() {
        let (old, old_text) = key();
        let (_, new_text) = key();
        let sealed = old.seal("api-key", b"x").expect("seal");
        let v1 = format!("v1:{}", sealed.rsplit(':').next().expect("b64"));
        let ring = KeyRing::parse(&format!("{old_text} {new_text}")).expect("ring");
        assert_eq!(ring.open("api-key", &v1).expect("open").expose(), "x");
        assert!(KeyRing::parse(&new_text)
            .expect("ring")
            .open("api-key", &v1)
            .is_err());
    }

    #[test]
    fn bad_rings_are_refused_with_the_place() {
        assert!(KeyRing::parse("# nothing\n").is_err());
        let (_, good) = key();
        let err = KeyRing::parse(&format!("{good}\nnot-a-key\n")).expect_err("bad");
        assert!(err.to_string().contains("key 2 (line 2)"), "{err}");
        // The same key twice counts once.
        assert_eq!(
            KeyRing::parse(&format!("{good}\n{good}"))
                .expect("ring")
                .ids()
                .len(),
            1
        );
    }
}
