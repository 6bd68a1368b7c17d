//! Every instance's channels from every connection point, as the connection points
//! last reported them to the site: one step per connection point, failing when it does
//! not report or has fewer connected channels than the gateway has instances, and
//! naming each channel that is down with its last error.

use crate::deployment::{Channel, ConnectionPoint};
use crate::report::Step;

/// The step name for connection point `id`.
pub fn step_name(id: &str) -> String {
    format!("channels from connection point {id}")
}

/// The channel steps.
pub fn channel_steps(cps: &[ConnectionPoint], instances_expected: u32) -> Vec<Step> {
    if cps.is_empty() {
        return vec![Step::fail(
            "channels",
            "the gateway has no connection point",
            "add one (cmg site connection-point add --gateway NAME) and install it on the \
             private network",
        )];
    }
    cps.iter()
        .map(|cp| connection_point_step(cp, instances_expected))
        .collect()
}

fn label(c: &Channel) -> String {
    match &c.instance {
        Some(i) => format!("{i} ({})", c.address),
        None => c.address.clone(),
    }
}

fn connection_point_step(cp: &ConnectionPoint, expected: u32) -> Step {
    let name = step_name(&cp.id);
    if !cp.reporting {
        let last = match (&cp.last_reason, cp.last_report_age) {
            (Some(reason), Some(age)) => format!("its last report ({reason}) was {age} s ago"),
            _ => "it never reported".to_owned(),
        };
        return Step::fail(
            name,
            format!("connection point {} is not reporting: {last}", cp.id),
            format!(
                "start connection point {} (cmg connector) and check that it reaches the \
                 site API and the instances",
                cp.id
            ),
        );
    }
    let connected: Vec<&Channel> = cp
        .channels
        .iter()
        .filter(|c| c.state == "connected")
        .collect();
    let down: Vec<String> = cp
        .channels
        .iter()
        .filter(|c| c.state != "connected")
        .map(|c| {
            format!(
                "{} {}{}",
                label(c),
                c.state,
                c.last_error
                    .as_deref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            )
        })
        .collect();
    let up = connected
        .iter()
        .map(|c| label(c))
        .collect::<Vec<_>>()
        .join(", ");
    if connected.len() < expected as usize || !down.is_empty() {
        let mut detail = format!(
            "connection point {}: {} of {expected} instances connected",
            cp.id,
            connected.len()
        );
        if !up.is_empty() {
            detail.push_str(&format!(" [{up}]"));
        }
        if !down.is_empty() {
            detail.push_str(&format!("; down: {}", down.join("; ")));
        }
        return Step::fail(
            name,
            detail,
            format!(
                "let connection point {} reach every instance's channel port (outbound TCP), \
                 and check that each instance runs; an instance it does not dial is missing \
                 from its gateway list",
                cp.id
            ),
        );
    }
    Step::pass(
        name,
        format!(
            "connection point {}: {expected} of {expected} instances connected [{up}]",
            cp.id
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Status;

    fn channel(addr: &str, state: &str, err: Option<&str>) -> Channel {
        Channel {
            address: addr.into(),
            instance: Some(format!("gw-{addr}")),
            state: state.into(),
            last_error: err.map(Into::into),
        }
    }

    fn cp(id: &str, reporting: bool, channels: Vec<Channel>) -> ConnectionPoint {
        ConnectionPoint {
            id: id.into(),
            reporting,
            last_reason: Some("shutdown".into()),
            last_report_age: Some(3),
            channels,
        }
    }

    #[test]
    fn all_connected_passes() {
        let steps = channel_steps(
            &[cp(
                "cp1",
                true,
                vec![
                    channel("a", "connected", None),
                    channel("b", "connected", None),
                ],
            )],
            2,
        );
        assert_eq!(steps.len(), 1);
        assert_eq!(steps[0].status, Status::Pass, "{steps:?}");
        assert!(steps[0].detail.contains("2 of 2"), "{steps:?}");
    }

    #[test]
    fn a_stopped_connection_point_fails_by_name() {
        let steps = channel_steps(
            &[
                cp("cp1", true, vec![channel("a", "connected", None)]),
                cp("cp2", false, vec![channel("a", "connected", None)]),
            ],
            1,
        );
        assert_eq!(steps[0].status, Status::Pass);
        assert_eq!(steps[1].status, Status::Fail);
        assert_eq!(steps[1].name, "channels from connection point cp2");
        assert!(
            steps[1].detail.contains("cp2 is not reporting"),
            "{:?}",
            steps[1]
        );
        assert!(steps[1].detail.contains("(shutdown)"), "{:?}", steps[1]);
    }

    #[test]
    fn a_channel_down_or_missing_fails_with_its_error() {
        let steps = channel_steps(
            &[cp(
                "cp1",
                true,
                vec![
                    channel("a", "connected", None),
                    channel("b", "disconnected", Some("refused")),
                ],
            )],
            2,
        );
        assert_eq!(steps[0].status, Status::Fail);
        assert!(steps[0].detail.contains("1 of 2"), "{:?}", steps[0]);
        assert!(
            steps[0].detail.contains("gw-b (b) disconnected (refused)"),
            "{:?}",
            steps[0]
        );
        let missing = channel_steps(&[cp("cp1", true, vec![channel("a", "connected", None)])], 2);
        assert_eq!(missing[0].status, Status::Fail, "{missing:?}");
        assert_eq!(channel_steps(&[], 1)[0].status, Status::Fail);
    }
}
