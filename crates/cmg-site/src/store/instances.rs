//! Where a gateway's instances are reached: each instance's channel addresses
//! (`host:port`, host names allowed), set with `PATCH /api/v1/gateways/{name}`
//! (`instance_channels`) and published in the settings bundle, from which the connection
//! points take the instances they dial (docs/architecture.md, "Instances from the
//! site"). The list's length is the gateway's instance count.
//!
//! It checks and stores the lists; it does not resolve names or probe ports.

use cmg_proto::addr::HostPort;
use cmg_proto::settings::InstanceAddrs;

use super::gateway::MAX_INSTANCES;
use super::{Result, StoreError};

/// Most addresses one instance may list (its channel port and a few fallbacks).
pub const MAX_ADDRS_PER_INSTANCE: usize = 4;

fn bad(message: String) -> StoreError {
    StoreError::invalid("bad_instance_channels", message)
}

/// Checks and normalises the lists (lower-case host names); an empty list clears them.
pub(crate) fn check(lists: &[Vec<String>]) -> Result<Vec<Vec<String>>> {
    if lists.len() > MAX_INSTANCES as usize {
        return Err(bad(format!(
            "{} instances listed; a gateway has at most {MAX_INSTANCES}",
            lists.len()
        )));
    }
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(lists.len());
    for (i, addrs) in lists.iter().enumerate() {
        let n = i + 1;
        if addrs.is_empty() || addrs.len() > MAX_ADDRS_PER_INSTANCE {
            return Err(bad(format!(
                "instance {n}: 1 to {MAX_ADDRS_PER_INSTANCE} channel addresses"
            )));
        }
        let mut parsed = Vec::with_capacity(addrs.len());
        for a in addrs {
            let hp = HostPort::parse(a).map_err(|e| bad(format!("instance {n}: {e}")))?;
            if !seen.insert(hp.clone()) {
                return Err(bad(format!("instance {n}: {hp} is listed twice")));
            }
            parsed.push(hp.to_string());
        }
        out.push(parsed);
    }
    Ok(out)
}

/// The bundle's instance list: instance `n` (from 1) is named `<gateway>-<n>`, as its
/// deployment package names it.
pub(crate) fn for_bundle(gateway: &str, lists: &[Vec<String>]) -> Vec<InstanceAddrs> {
    lists
        .iter()
        .enumerate()
        .map(|(i, channel)| InstanceAddrs {
            name: format!("{gateway}-{}", i + 1),
            channel: channel.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lists(v: &[&[&str]]) -> Vec<Vec<String>> {
        v.iter()
            .map(|l| l.iter().map(|s| (*s).to_owned()).collect())
            .collect()
    }

    #[test]
    fn checked_and_normalised() {
        let ok = check(&lists(&[
            &["GW-1.test:10140", "gw-1.test:443"],
            &["10.0.0.2:10141"],
        ]))
        .expect("valid");
        assert_eq!(
            ok,
            lists(&[&["gw-1.test:10140", "gw-1.test:443"], &["10.0.0.2:10141"]])
        );
        assert_eq!(check(&[]).expect("clear"), Vec::<Vec<String>>::new());
        let b = for_bundle("cmg1", &ok);
        assert_eq!(b[1].name, "cmg1-2");
        assert_eq!(b[0].channel, ok[0]);
    }

    #[test]
    fn refused() {
        assert!(
            check(&lists(&[&[]])).is_err(),
            "an instance without address"
        );
        assert!(check(&lists(&[&["gw1"]])).is_err(), "no port");
        assert!(check(&lists(&[&["gw1:1"], &["GW1:1"]])).is_err(), "twice");
        let many: Vec<Vec<String>> = (0..17).map(|i| vec![format!("gw{i}:1")]).collect();
        assert!(check(&many).is_err(), "17 instances");
        assert!(check(&lists(&[&["a:1", "a:2", "a:3", "a:4", "a:5"]])).is_err());
    }
}
