//! Health and traffic reports: what a gateway instance tells its connection points, and
//! what a connection point tells the site (seed 002: the connection point reports the
//! channel status and the traffic the instances gave it; docs/architecture.md,
//! "Traffic snapshots").
//!
//! Counters are **cumulative since the instance started** and carry the instance's
//! `boot_id` and a per-boot `seq`: every connection point relays the same snapshots, so
//! the site must count each one once. It keeps, per (gateway, instance, boot), the
//! highest `seq` it has counted and adds only the difference to the newest snapshot;
//! a new `boot_id` starts from zero. A lost report therefore loses no traffic (the next
//! one carries it), and a snapshot relayed twice is counted once.

use serde::{Deserialize, Serialize};

/// Where a gateway instance posts its [`TrafficSnapshot`] over a channel (JSON body,
/// answered `204`). A control path: never forwarded for a client.
pub const TRAFFIC_PATH: &str = "/_cmg/traffic";

/// Where a connection point posts its [`ConnectionPointReport`] at the site (publishing
/// API, connection point client certificate): `POST` with the gateway name substituted.
pub const SITE_REPORT_PATH: &str = "/api/v1/publish/gateways/{name}/report";

/// Largest report body either side accepts.
pub const MAX_REPORT_BYTES: usize = 1 << 20;

/// One gateway instance's traffic counters since it started.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrafficSnapshot {
    /// The instance name (the gateway's `instance` setting, as sent in the hello).
    pub instance: String,
    /// Random per process start; counters restart from zero with a new one.
    pub boot_id: String,
    /// Increases with each snapshot of one boot.
    pub seq: u64,
    /// Unix seconds when the snapshot was taken.
    pub taken_at: u64,
    /// One entry per published endpoint that has seen traffic.
    pub endpoints: Vec<EndpointTraffic>,
}

/// Cumulative counters of one published endpoint on one instance.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndpointTraffic {
    /// The published prefix, e.g. `/CCM_Proxy_MutualAuth/72057594037927939/CCM_System`.
    pub prefix: String,
    /// Responses by status class: index 0 is 1xx, ..., index 4 is 5xx.
    pub status_classes: [u64; 5],
    /// Request body bytes received from clients.
    pub bytes_in: u64,
    /// Response body bytes sent to clients (the egress the traffic alert counts).
    pub bytes_out: u64,
    /// Sum of request durations, microseconds (mean latency = sum / requests).
    pub latency_us_sum: u64,
}

impl EndpointTraffic {
    /// Requests answered, all classes.
    pub fn requests(&self) -> u64 {
        self.status_classes.iter().sum()
    }
}

/// State of one channel as its connection point sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelState {
    /// Hello exchanged, PINGs answered.
    Connected,
    /// Dialling or waiting for a reconnect.
    Connecting,
    /// Failed; retried with backoff.
    Disconnected,
}

/// One gateway instance's channel, as the connection point reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelStatus {
    /// The configured channel address of the instance.
    pub address: String,
    /// The instance name from the hello, once one was received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    pub state: ChannelState,
    /// Unix seconds since the channel has been in this state.
    pub since: u64,
    /// The connection ID of the live channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_id: Option<String>,
    /// Why the last attempt or channel failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// Why a report was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportReason {
    /// The connection point just started.
    Startup,
    /// The report interval (default 5 minutes) elapsed.
    Periodic,
    /// A channel changed state.
    StateChange,
    /// The connection point is shutting down.
    Shutdown,
}

/// What a connection point sends the site.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionPointReport {
    /// Must match the identity of the client certificate it is sent with.
    pub connection_point: String,
    pub gateway: String,
    pub reason: ReportReason,
    /// Unix seconds.
    pub sent_at: u64,
    /// The settings version this connection point relays (0: none).
    pub settings_version: u64,
    /// One entry per configured instance address.
    pub channels: Vec<ChannelStatus>,
    /// The newest snapshot received from each instance (cumulative; see module docs).
    pub traffic: Vec<TrafficSnapshot>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_round_trips_and_refuses_unknown_fields() {
        let report = ConnectionPointReport {
            connection_point: "cp1".into(),
            gateway: "cmg1".into(),
            reason: ReportReason::StateChange,
            sent_at: 1_700_000_000,
            settings_version: 4,
            channels: vec![ChannelStatus {
                address: "127.0.0.1:4443".into(),
                instance: Some("cmg1-0".into()),
                state: ChannelState::Connected,
                since: 1_700_000_000,
                connection_id: Some("c-1".into()),
                last_error: None,
            }],
            traffic: vec![TrafficSnapshot {
                instance: "cmg1-0".into(),
                boot_id: "b".into(),
                seq: 2,
                taken_at: 1_700_000_000,
                endpoints: vec![EndpointTraffic {
                    prefix: "/CCM_Proxy_MutualAuth/1/CCM_System".into(),
                    status_classes: [0, 3, 0, 1, 0],
                    bytes_in: 10,
                    bytes_out: 20,
                    latency_us_sum: 300,
                }],
            }],
        };
        let json = serde_json::to_value(&report).expect("serialize");
        assert_eq!(json["reason"], "state_change");
        assert_eq!(json["channels"][0]["state"], "connected");
        let back: ConnectionPointReport = serde_json::from_value(json.clone()).expect("parse");
        assert_eq!(back, report);
        assert_eq!(back.traffic[0].endpoints[0].requests(), 4);
        let mut bad = json;
        bad["traffic"][0]["extra"] = serde_json::json!(1);
        assert!(serde_json::from_value::<ConnectionPointReport>(bad).is_err());
    }
}
