//! Primitives every cmg role shares: loading a TOML config file with errors that name
//! the file and the field, the shutdown handle a role's `run` takes, socket setup, and
//! the admin listener (`/metrics`, `/ready`, `/live`) with the metrics common to all,
//! the one-line error chain every crate puts in its messages and logs, and the bounded
//! HTTP(S) fetcher for CRLs, OCSP answers and OIDC key documents, and the one way
//! files holding secrets are written (0600, atomically) and checked before use.
//!
//! It holds no role logic and installs no tracing subscriber (only the binary does).

pub mod admin;
pub mod coalesce;
pub mod config;
pub mod error_chain;
pub mod fetch;
pub mod net;
pub mod private_file;
pub mod proxy;
pub mod shards;
pub mod shutdown;

pub use config::{load_toml, ConfigError};
pub use shutdown::Shutdown;
