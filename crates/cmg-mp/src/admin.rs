//! What the management point serves on the shared admin listener (`[admin] listen`;
//! [`cmg_core::admin`] does the HTTP, the cap and the drain): its request counters and
//! `/ready`, 200 while it serves (it has nothing to wait for once bound).

use std::net::SocketAddr;
use std::sync::Arc;

use cmg_core::admin::{AdminRoutes, Readiness};

use crate::service::State;

/// The management point's [`AdminRoutes`].
#[derive(Debug)]
pub(crate) struct MpAdmin {
    pub state: Arc<State>,
    /// The address clients' traffic arrives on, named in `/ready`.
    pub serving: SocketAddr,
}

impl AdminRoutes for MpAdmin {
    const ROLE: &'static str = "mp";

    async fn ready(&self) -> Readiness {
        Readiness::Ready(format!("serving on {}", self.serving))
    }

    async fn encode_metrics(&self, out: &mut String) {
        self.state.metrics.encode_into(out);
    }
}
