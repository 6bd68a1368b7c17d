//! The admin listener every role serves (plain HTTP/1.1; bind it to loopback or a private
//! address): `GET /metrics` (OpenMetrics text), `GET /ready` (200 or 503 with a one-line
//! reason, decided by the role), `GET /live` (200 while the process serves) and the
//! role's own read-only routes (the gateway's and the connection point's `/channels`).
//! `HEAD` is allowed wherever `GET` is; other methods get 405 with `Allow`, unknown paths
//! 404.
//!
//! The listener caps the connections served at once (more wait in the accept queue),
//! closes a connection whose request head does not arrive within a timeout, pauses with
//! backoff when `accept` fails (out of file descriptors) instead of spinning, and tracks
//! every connection task so that [`AdminListener::serve`] returns only once they have
//! drained.
//!
//! Every scrape carries, after the role's own families, `cmg_build_info{version,role} 1`
//! and the process metrics read from `/proc` at scrape time (`process.rs`), then `# EOF`.
//! The role keeps its registry and counters; this module holds no global state.
//!
//! It does not authenticate (the address is the access control), serve HTTP/2 or TLS,
//! or accept request bodies.

mod answer;
mod common;
mod listener;
mod process;

#[cfg(test)]
mod tests;

use std::future::Future;

pub use http::StatusCode;
pub use listener::{AdminListener, Limits};

/// `Content-Type` of `/metrics`. Prometheus 3 refuses a scrape without one; the text
/// prometheus-client writes is OpenMetrics 1.0 (ending in `# EOF`).
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `Content-Type` of every other answer.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; charset=utf-8";

/// What `/ready` answers: 200 `ready: <reason>` or 503 `not ready: <reason>`. The reason
/// is one line (line breaks are replaced by spaces).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready(String),
    NotReady(String),
}

/// What a role plugs into the admin listener.
pub trait AdminRoutes: Send + Sync + 'static {
    /// The role's name in `cmg_build_info{role=..}`: `gateway`, `connector`, `site`, `mp`.
    const ROLE: &'static str;

    /// Decides `/ready`; called on every probe.
    fn ready(&self) -> impl Future<Output = Readiness> + Send;

    /// Appends the role's metric families to `out` in OpenMetrics text, without the
    /// closing `# EOF` (the listener adds the common families, then the EOF): use
    /// [`encode_registry`].
    fn encode_metrics(&self, out: &mut String) -> impl Future<Output = ()> + Send;

    /// The role's own `GET` routes: `Some((status, text body))` for a path it serves,
    /// `None` for 404. `/metrics`, `/ready` and `/live` never reach it.
    fn route(&self, path: &str) -> Option<(StatusCode, String)> {
        let _ = path;
        None
    }
}

/// Appends `registry`'s families to `out` without `# EOF`, for
/// [`AdminRoutes::encode_metrics`].
pub fn encode_registry(out: &mut String, registry: &prometheus_client::registry::Registry) {
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode_registry(out, registry);
}
