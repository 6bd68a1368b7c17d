//! A bounded cache of verification results, keyed by the SHA-256 of the token, so a
//! client that sends the same bearer token on every keep-alive request costs one
//! signature check per `max_age` instead of one per request.
//!
//! The token itself is never stored. An entry lives until the earlier of the token's
//! expiry and `max_age` after it was verified; keep `max_age` short (the block list of
//! site tokens and key removal at an issuer take effect only when entries age out, or
//! call [`TokenCache::clear`] when the block list changes). Only successes are cached.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

/// Verified tokens of type `T` (`VerifiedToken`, `SiteToken`).
#[derive(Debug)]
pub struct TokenCache<T> {
    entries: Mutex<HashMap<[u8; 32], (T, SystemTime)>>,
    capacity: usize,
    max_age: Duration,
}

impl<T: Clone> TokenCache<T> {
    /// At most `capacity` entries, each trusted for at most `max_age`.
    pub fn new(capacity: usize, max_age: Duration) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
            max_age,
        }
    }

    /// The cached result for `token`, if still fresh at `now`.
    pub fn get(&self, token: &str, now: SystemTime) -> Option<T> {
        let key = digest(token);
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        match entries.get(&key) {
            Some((value, until)) if now < *until => Some(value.clone()),
            Some(_) => {
                entries.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Remembers that `token` verified to `value` at `now` and expires at `expires_at`.
    pub fn insert(&self, token: &str, value: T, expires_at: SystemTime, now: SystemTime) {
        let until = expires_at.min(now + self.max_age);
        if until <= now {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= self.capacity {
            entries.retain(|_, (_, until)| now < *until);
        }
        if entries.len() >= self.capacity {
            // Still full of fresh entries: drop an arbitrary one (HashMap order is
            // randomised per process, so a client cannot pick what is evicted).
            if let Some(victim) = entries.keys().next().copied() {
                entries.remove(&victim);
            }
        }
        entries.insert(digest(token), (value, until));
    }

    /// Forgets everything (for example after the block list changed).
    pub fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests;
