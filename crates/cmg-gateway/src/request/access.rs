//! The access record of one request: `CMGHttpHandler.log` gets one line per request
//! (method, path, auth result, connection point, status, bytes, duration), written when
//! the response body ends or is dropped, so the byte count and duration are final.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use cmg_proto::ConnectorId;
use http::{Method, Uri};

use crate::body::BodyStats;
use crate::client::ConnInfo;
use crate::identity::ClientIdentity;
use crate::metrics::EndpointStats;

/// Log target routed to `CMGHttpHandler.log` by the binary.
pub const TARGET: &str = "cmg_gateway::access";

/// Everything the access line says about one request.
#[derive(Debug)]
pub struct AccessRecord {
    start: Instant,
    pub request_id: u64,
    pub method: Method,
    pub uri: Uri,
    pub auth: &'static str,
    pub connection_point: Option<ConnectorId>,
    pub status: u16,
    pub reason: Option<String>,
    pub bytes_out: u64,
    pub body: Option<Arc<BodyStats>>,
    pub complete: bool,
    pub endpoint: Option<Arc<EndpointStats>>,
    /// The token client, when the request was authenticated by a bearer token.
    pub token_identity: Option<Arc<ClientIdentity>>,
    conn: Arc<ConnInfo>,
}

impl AccessRecord {
    pub fn new(method: Method, uri: Uri, conn: Arc<ConnInfo>) -> Self {
        conn.activity.request_started();
        Self {
            start: Instant::now(),
            request_id: rand::random(),
            method,
            uri,
            auth: "none",
            connection_point: None,
            status: 0,
            reason: None,
            bytes_out: 0,
            body: None,
            complete: false,
            endpoint: None,
            token_identity: None,
            conn,
        }
    }

    /// The shard the request's connection is served on.
    pub fn shard(&self) -> usize {
        self.conn.shard
    }

    pub fn note_upstream_error(&mut self, e: String) {
        if self.reason.is_none() {
            self.reason = Some(format!("response body aborted: {e}"));
        }
    }
}

impl Drop for AccessRecord {
    fn drop(&mut self) {
        self.conn.activity.request_finished();
        let bytes_in = self
            .body
            .as_ref()
            .map_or(0, |b| b.bytes.load(Ordering::Relaxed));
        let elapsed = self.start.elapsed();
        if let Some(ep) = &self.endpoint {
            ep.record(self.status, bytes_in, self.bytes_out, elapsed);
        }
        let identity = self
            .token_identity
            .as_deref()
            .or(self.conn.identity.as_ref())
            .map(|i| i.subject.as_str());
        let cp = self.connection_point.as_ref().map(|c| c.as_str());
        tracing::info!(
            target: TARGET,
            request_id = %format_args!("{:016x}", self.request_id),
            peer = %self.conn.peer,
            method = %self.method,
            path = ?self.uri.path_and_query().map(|p| p.as_str()).unwrap_or("-"),
            auth = %self.auth,
            client = ?identity.unwrap_or("-"),
            connection_point = %cp.unwrap_or("-"),
            status = self.status,
            bytes_in,
            bytes_out = self.bytes_out,
            duration_ms = %format_args!("{:.3}", elapsed.as_secs_f64() * 1000.0),
            complete = self.complete,
            reason = ?self.reason.as_deref().unwrap_or("-"),
        );
    }
}
