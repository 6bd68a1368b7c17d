//! cmg-agent: the `cmg client` agent, the device half of the system (seed 004,
//! "Configure clients for CMG"). On top of cmg-client's HTTPS client it registers
//! (certificate clients by their certificate; token clients trade a bulk registration
//! token for a device token and renew it), decides on its own whether it is on the
//! intranet or the internet (a bounded probe of the intranet management point, again
//! at start, every 24 hours and when the kernel reports an address, route or link
//! change), asks the site where to go (a signed location answer, verified with the
//! site's keys; a refused answer keeps the last good one), picks its management point
//! by locality and moves on after 5 failures in 10 minutes, polls policy at the
//! interval the site sets (downloading only changed bodies, each checked by SHA-256),
//! and downloads content through the gateway with hash checking and resumption. Its
//! state (`state.json`) survives restarts; `status` reads it.
//!
//! It does not install software, evaluate policy, report inventory or state messages,
//! or use a domain controller for the intranet decision (cmg has none).

mod agent;
mod clock;
mod config;
mod content;
mod decide;
mod endpoint;
mod location;
mod netwatch;
mod policy;
mod run;
mod select;
mod state;
mod status;
#[cfg(feature = "test-util")]
pub mod testing;
mod token;
mod transport;

pub use agent::{split, Agent, AgentError, DEFAULT_POLICY_INTERVAL_SECS};
pub use content::{ContentFailure, Downloaded};
pub use location::{host_addresses, LocationFailure};
pub use policy::{PolicyFailure, Polled};
pub use run::Progress;
pub use status::{CandidateView, ConnectionView, ErrorView, StatusView};
pub use token::{needs_renewal, TokenFailure, RENEW_AFTER};

pub use clock::{rfc3339, unix, Clock, ManualClock, SystemClock};
pub use config::{Config, Credential, Timing};
pub use decide::{decide, probe, Probe, PROBE_PATH};
pub use endpoint::{BadEndpoint, BaseUrl, GatewayName};
pub use netwatch::watch_changes;
pub use select::{Selection, Tracked, FAILURES_TO_MOVE, FAILURE_WINDOW};
pub use state::{
    Connection, ConnectionKind, DeviceToken, HeldPolicy, PolicyRoute, PolicyState, RecordedError,
    State, StateError, STATE_FILE, STATE_FORMAT,
};
pub use transport::{Answer, Transport, TransportError};
