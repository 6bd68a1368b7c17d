//! Intranet or internet (seed 004: "If the client can contact a domain controller or an
//! on-premises management point, it sets its connection type to Currently intranet.
//! Otherwise, it switches to Currently Internet"). cmg has no domain controller, so the
//! probe is the other half of that sentence: one bounded, unauthenticated
//! `GET <intranet MP>/SMS_MP/.sms_aut?MPLIST` (the request every client makes first to
//! find management points). Only a `200` whose body is an `<MPList>` counts, so a
//! captive portal or a proxy's error page on the same name is not taken for the
//! intranet. The whole exchange (connect, head, body of at most 64 KiB) is bounded by
//! `timing.probe_timeout`, so a silently dropped route costs that long at most.
//! `always_internet` (the product's `ClientAlwaysOnInternet = 1`) decides without a probe.

use std::time::{Duration, Instant};

use crate::endpoint::BaseUrl;
use crate::state::ConnectionKind;
use crate::transport::{self, Transport};

/// The probe's path and query on the intranet management point.
pub const PROBE_PATH: &str = "/SMS_MP/.sms_aut?MPLIST";
/// Largest MP list the probe reads.
const PROBE_MAX_BYTES: usize = 64 * 1024;

/// What the probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// The management point answered with its list.
    Reached { elapsed: Duration },
    /// It did not (the reason names the server and what failed).
    Failed(String),
}

/// Probes `mp` once, within `timeout`.
pub async fn probe(transport: &Transport, mp: &BaseUrl, timeout: Duration) -> Probe {
    let started = Instant::now();
    let req = match transport::get(&mp.path(PROBE_PATH)) {
        Ok(r) => r,
        Err(e) => return Probe::Failed(e.to_string()),
    };
    match transport.fetch(mp, req, PROBE_MAX_BYTES, timeout).await {
        Ok(a) if a.status.is_success() && looks_like_mp_list(&a.body) => Probe::Reached {
            elapsed: started.elapsed(),
        },
        Ok(a) if a.status.is_success() => Probe::Failed(format!(
            "{mp} answered {}, but not with an MP list",
            a.status
        )),
        Ok(a) => Probe::Failed(format!("{mp} answered {}", a.status)),
        Err(e) => Probe::Failed(e.to_string()),
    }
}

fn looks_like_mp_list(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body);
    text.trim_start().starts_with("<MPList")
}

/// The decision and its reason, as `status` shows it.
pub fn decide(
    always_internet: bool,
    probe: Option<&Probe>,
    mp: &BaseUrl,
) -> (ConnectionKind, String) {
    match (always_internet, probe) {
        (true, _) => (
            ConnectionKind::Internet,
            "always_internet is set (ClientAlwaysOnInternet)".into(),
        ),
        (false, Some(Probe::Reached { elapsed })) => (
            ConnectionKind::Intranet,
            format!(
                "intranet management point {mp} answered MPLIST in {} ms",
                elapsed.as_millis()
            ),
        ),
        (false, Some(Probe::Failed(why))) => (
            ConnectionKind::Internet,
            format!("intranet management point unreachable: {why}"),
        ),
        (false, None) => (ConnectionKind::Internet, "not probed yet".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn always_internet_wins_over_a_reachable_mp() {
        let mp = BaseUrl::parse("http://mp.corp.example").expect("url");
        let reached = Probe::Reached {
            elapsed: Duration::from_millis(3),
        };
        assert_eq!(
            decide(true, Some(&reached), &mp).0,
            ConnectionKind::Internet
        );
        let (kind, why) = decide(false, Some(&reached), &mp);
        assert_eq!(kind, ConnectionKind::Intranet);
        assert!(why.contains("http://mp.corp.example"), "{why}");
        let (kind, why) = decide(false, Some(&Probe::Failed("timed out".into())), &mp);
        assert_eq!(kind, ConnectionKind::Internet);
        assert!(why.contains("timed out"), "{why}");
    }

    #[test]
    fn only_an_mp_list_counts() {
        assert!(looks_like_mp_list(b"  <MPList><MP Name=\"MP1\"/></MPList>"));
        assert!(!looks_like_mp_list(b"<html>captive portal</html>"));
    }
}
