//! The shared, I/O-free model of cmg: identifiers, published URLs and URL mappings,
//! strict request-path normalisation, the internal header namespace, the channel
//! protocol constants, the settings bundle the site publishes to gateways, and the
//! client location rules (boundary groups, management point candidates) and the device
//! contract (`device`: location request and answer, policy listing).
//!
//! Every role links this crate; it performs no I/O and holds no state, so the gateway,
//! the connection point and (later) the site agree on one definition of each concept.
//! It does not parse certificates (`cmg-pki`) or speak HTTP (the role crates).

pub mod addr;
pub mod channel;
pub mod device;
pub mod headers;
pub mod ids;
pub mod location;
pub mod mapping;
pub mod path;
pub mod report;
pub mod settings;

pub use ids::{ConnectionId, ConnectorId, RoleId, SiteCode};
pub use mapping::{AuthKind, ExternalPrefix, PrefixTable, PublishedUrl, UrlMapping};
pub use path::{NormalizedPath, PathRejected};
