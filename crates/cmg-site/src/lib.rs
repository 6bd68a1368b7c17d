//! The site: cmg's control plane. It holds everything durable in a database (SQLite by
//! default, PostgreSQL for larger sites): the site's CA and signing keys (sealed with a
//! master key), gateways, connection points, roles and their generated URL mappings,
//! boundary groups, client settings, bulk tokens and the audit log. It serves an admin
//! REST API (bearer admin token) and a publishing API for connection points (client
//! certificate from the site CA): each gateway's signed, versioned settings bundle by
//! long poll, the URL mappings, and the connection points' health and traffic reports,
//! from which it derives each gateway's status, traffic per endpoint and the 14-day
//! traffic alert (which may stop the service; [`alerts`]). It answers clients'
//! location requests ([`location`]) from its boundary groups and client settings.
//!
//! It also serves the web console ([`ui`]) under `/ui` on the same listener.
//!
//! It does not run gateways or connection points.

mod admin;
pub mod alerts;
pub mod analyze;
pub mod api;
pub mod certs;
pub mod client;
pub mod db;
pub mod files;
pub mod keyring;
pub mod keys;
pub mod location;
pub mod mappings;
pub mod metrics;
pub mod model;
pub mod names;
pub mod secret;
pub mod server;
pub mod store;
pub mod ui;

pub use keyring::{KeyRing, KeySource};
pub use secret::{MasterKey, Secret};
pub use store::{Actor, Store, StoreError};

/// Unix seconds now.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
