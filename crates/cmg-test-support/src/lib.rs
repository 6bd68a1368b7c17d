//! What cmg's tests share (a dev-dependency only; `publish = false`):
//!
//! - [`eventually`] and [`patience`]: bounded waits whose bound CI scales with the
//!   `CMG_TEST_PATIENCE` environment variable (a multiplier, read at each call), and
//!   whose panic names what was awaited and the last value observed;
//! - [`oidc::OidcProvider`]: a real OpenID Connect provider (npm `oidc-provider`) on
//!   loopback;
//! - [`ocsp`]: OpenSSL's OCSP responder behind a loopback HTTP server, and a PKI made for it;
//! - [`azurite`]: the Azure Storage emulator (npm `azurite`) and a proxy that can make
//!   storage hang or refuse;
//! - [`tls::TestClient`]: rustls clients for tests that do their own handshakes.
//!
//! Each handle is owned by the test that starts it and stops on drop; nothing here is a
//! shared or global server. It depends on no cmg crate, so every cmg crate's tests can
//! use it. It does not start cmg roles (tests call the roles' own `bind`/`run`), and
//! holds no assertions of its own beyond "this helper worked".

pub mod azurite;
mod eventually;
mod npm;
pub mod ocsp;
pub mod oidc;
pub mod tls;

pub use eventually::{
    eventually, factor, patience, Eventually, DEFAULT_EVERY, DEFAULT_WITHIN, PATIENCE_VAR,
};
