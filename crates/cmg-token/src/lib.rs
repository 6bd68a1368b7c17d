//! Bearer-token authentication for the gateway's `CCM_Proxy_ServerAuth` paths.
//!
//! - [`oidc`]: tokens from Entra ID or any OpenID Connect issuer: discovery, a cached
//!   JWKS refreshed (rate-limited) on an unknown key id, RS256/ES256 only, `iss`, `aud`,
//!   `exp`/`nbf` with skew, tenant allow-list.
//! - [`site`]: tokens the site signs itself (bulk registration and device tokens), with
//!   several verification keys for rollover and a caller-supplied block list.
//! - [`bundle`]: signing and verifying the site's settings bundles (same keys, distinct
//!   JWS type).
//! - [`seal`]: secrets the bundle carries sealed to each gateway instance's own key
//!   (HPKE), so only instances read them.
//! - [`location`]: signing and verifying the site's location answers for clients (same
//!   keys, a JWS type of its own).
//! - [`fetch`]: cmg-core's bounded HTTP GET (total deadline, streamed size cap), set up
//!   for discovery and JWKS documents.
//!
//! Every refusal is a [`TokenError`] with a stable [`code`](TokenError::code) under
//! [`INVALID_TOKEN`]; no error, log line or `Debug` output contains a token.
//!
//! - [`cache`]: a bounded per-token cache of verification results (keyed by the token's
//!   SHA-256), so keep-alive clients do not pay a signature check per request.
//!
//! This crate does not parse HTTP requests or decide which paths need which token: that
//! is the gateway's request path. Nor does it store
//! issued tokens or the block list: that is the site's.

pub mod bundle;
pub mod cache;
pub mod error;
pub mod fetch;
mod jws;
pub mod location;
pub mod oidc;
pub mod seal;
pub mod site;

pub use bundle::{BundleError, BundleVerifier};
pub use cache::TokenCache;
pub use error::{TokenError, INVALID_TOKEN};
pub use fetch::{FetchError, FetchLimits, HttpFetcher};
pub use jws::peek_issuer;
pub use location::{LocationError, LocationVerifier};
pub use oidc::{OidcConfig, OidcVerifier, VerifiedToken};
pub use seal::{InstanceKey, InstancePublicKey, SealError};
pub use site::{
    IssuedToken, SiteGuid, SitePublicKey, SiteSigner, SiteToken, SiteVerifier, TokenKind,
};
