//! The master key ring's API bodies: which key seals, which keys the site holds, how
//! many sealed values name each, and what a rewrap moved.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `GET /api/v1/keys/master`. Key ids only: the keys never leave their file.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MasterKeyStatus {
    /// The key new values are sealed with (the ring's last).
    pub sealing_key: String,
    /// The keys the running site holds, oldest first.
    pub ring: Vec<String>,
    /// How many sealed values name each key id (`v1`: values from before key ids).
    pub values: BTreeMap<String, u64>,
}

/// `POST /api/v1/keys/master/rewrap`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MasterKeyRewrap {
    /// The key every value was sealed anew with.
    pub sealing_key: String,
    /// The keys the running site holds now, oldest first: the file's, and any the file
    /// no longer has that the site held before (kept in memory until a restart).
    pub ring: Vec<String>,
    /// How many values were sealed anew.
    pub resealed: u64,
    /// How many of them each other key had sealed (`v1`: from before key ids).
    pub from: BTreeMap<String, u64>,
    /// Values still sealed with another key afterwards: 0 when the rewrap is complete
    /// and the older keys may leave the file.
    pub left: u64,
}
