//! cmg-mp: a small reference management point, the internal role the connection point
//! forwards client traffic to. `cmg demo`, the end-to-end tests and the benchmark run it
//! in place of a ConfigMgr management point.
//!
//! It serves the handful of endpoints a client's traffic through the gateway exercises:
//! `CCM_POST .../CCM_System/request` (echoes the body byte for byte, with its SHA-256),
//! `GET .../SMS_MP/.sms_aut?MPLIST|MPLIST2|MPCERT`, `GET .../SMS_MP/.sms_pol?size=N`
//! (deterministic download), and uploads to `.../CCM_Incoming/<name>` by `PUT`/`POST`
//! or the BITS upload protocol. Path segments match without regard to case and after
//! any prefix, so both `/CCM_System/request` and
//! `/CCM_Proxy_MutualAuth/72057594037927939/CCM_System/request` work. Every request is
//! journaled as one JSON line once its body has been read, with a `complete` flag that
//! is false for a cut-off body.
//!
//! With `[admin] listen` it also serves the shared admin listener (`/metrics` with its
//! request counters, `/ready`, `/live`).
//!
//! With `[site]` it answers `.sms_aut?MPLIST` (intranet) and `MPLIST2` through a gateway
//! (internet) from the site's management point list, read from the site and kept
//! current (`mplist.rs`); with `[policy] dir` it serves real policy: the assignment list
//! with versions and hashes, and the bodies (`policy.rs`).
//!
//! It does not implement inventory processing, client registration or any site
//! database: other answers are fixed or echoed. `SITESIGNCERT` and `MPKEYINFORMATION`
//! are not served (404).

mod admin;
mod bits;
mod body;
mod config;
mod error;
mod incoming;
mod journal;
mod metrics;
mod mplist;
mod policy;
mod respond;
mod server;
mod service;
mod sms;

pub use bits::BITS_PROTOCOL;
pub use config::{Config, SiteLink, TlsFiles};
pub use error::MpError;
pub use journal::{read_journal, JournalEntry};
pub use server::{bind, Bound};
pub use sms::{policy_byte, MAX_POLICY_SIZE};
