//! Which gateway instances the connection point keeps channels to, followed live.
//!
//! The list is the settings bundle's `instances` as soon as the connection point holds a
//! bundle that lists some (from the site or the bundle file, read without verifying the
//! signature: see `cmg_token::bundle::peek_instances`), else the config file's
//! `gateways` (the bootstrap list, and the whole story without a site). Each time the
//! bundle changes the list is compared with the running one: a new instance gets its
//! supervisors (one per lane) at once, a removed one has its supervisors cancelled (each
//! channel is sent a GOAWAY and drains) and its status entry dropped; an instance whose
//! addresses changed counts as removed and added. Nothing restarts.
//!
//! Every `check_interval` the follower also checks the lane-0 channels, warns about the
//! missing ones and cuts their backoff short; the other lanes redial on their own backoff.
//! It does not dial, serve or decide fallbacks: [`crate::supervisor`] does.

use std::sync::Arc;

use cmg_core::shards::ShardHandles;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn, Instrument};

use cmg_proto::settings::InstanceAddrs;

use crate::channel::{ChannelCtx, Dialer};
use crate::config::{Instance, Timing};
use crate::forward::Forwarder;
use crate::relay::Relay;
use crate::settings::SignedBundle;
use crate::status::{ChannelState, ChannelStatus, ConnectorStatus};
use crate::supervisor::Supervisor;

/// What a supervisor needs, shared by all.
#[derive(Debug, Clone)]
pub(crate) struct Spawner {
    pub shards: ShardHandles,
    pub dialer: Arc<Dialer>,
    pub forwarder: Arc<Forwarder>,
    pub relay: Arc<Relay>,
    pub status: Arc<watch::Sender<ConnectorStatus>>,
    pub timing: Timing,
    pub tracker: TaskTracker,
}

/// The supervisors of one instance.
#[derive(Debug)]
struct Running {
    instance: Instance,
    token: CancellationToken,
    /// Wakes lane 0 from its backoff.
    retry: Arc<Notify>,
    tasks: Vec<JoinHandle<()>>,
}

/// The instances a bundle lists, parsed; `None` when it lists none (or none usable), so
/// the config's list applies.
pub(crate) fn from_bundle(listed: &[InstanceAddrs]) -> Option<Vec<Instance>> {
    let mut out: Vec<Instance> = Vec::with_capacity(listed.len());
    for i in listed {
        match Instance::parse(&i.channel) {
            Ok(inst) if out.iter().any(|o| o.key() == inst.key()) => {
                warn!(instance = %i.name, "instance listed twice in the bundle; ignored");
            }
            Ok(inst) => out.push(inst),
            Err(e) => {
                warn!(instance = %i.name, error = %e, "instance in the bundle not usable; ignored")
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Follows the instance list until `token` is cancelled, then waits for every
/// supervisor to drain.
pub(crate) async fn follow(
    spawner: Spawner,
    config: Vec<Instance>,
    mut bundles: watch::Receiver<Option<Arc<SignedBundle>>>,
    token: CancellationToken,
) {
    let mut running: Vec<Running> = Vec::new();
    let mut leaving: Vec<JoinHandle<()>> = Vec::new();
    let interval = spawner.timing.check_interval;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut feed_open = true;
    loop {
        let desired = {
            let held = bundles.borrow_and_update();
            held.as_ref()
                .and_then(|b| from_bundle(&b.instances))
                .unwrap_or_else(|| config.clone())
        };
        reconcile(&spawner, &mut running, &mut leaving, desired, &token);
        tokio::select! {
            r = bundles.changed(), if feed_open => feed_open = r.is_ok(),
            _ = tick.tick() => check(&spawner.status.borrow(), &running),
            _ = token.cancelled() => break,
        }
    }
    for r in running {
        leaving.extend(r.tasks);
    }
    for t in leaving {
        // A supervisor only ends on its token; a panic in one is not ours to re-raise.
        let _ = t.await;
    }
}

/// Starts the supervisors of the instances added, stops those of the ones removed.
fn reconcile(
    spawner: &Spawner,
    running: &mut Vec<Running>,
    leaving: &mut Vec<JoinHandle<()>>,
    desired: Vec<Instance>,
    token: &CancellationToken,
) {
    leaving.retain(|t| !t.is_finished());
    let (keep, gone): (Vec<Running>, Vec<Running>) = std::mem::take(running)
        .into_iter()
        .partition(|r| desired.contains(&r.instance));
    for r in gone {
        info!(gateway = %r.instance.key(), "instance no longer listed; draining its channels");
        r.token.cancel();
        leaving.extend(r.tasks);
    }
    let mut keep = keep;
    for inst in &desired {
        if keep.iter().any(|r| r.instance == *inst) {
            continue;
        }
        if !token.is_cancelled() {
            info!(gateway = %inst.key(), addresses = inst.channel.len(), "instance listed; dialling it");
            keep.push(start(spawner, inst.clone(), token));
        }
    }
    // Keep the list order, and the status in the same order.
    keep.sort_by_key(|r| desired.iter().position(|d| *d == r.instance));
    spawner.status.send_if_modified(|s| {
        let next: Vec<ChannelStatus> = keep
            .iter()
            .map(|r| {
                let key = r.instance.key();
                s.channels
                    .iter()
                    .find(|c| c.gateway == key)
                    .cloned()
                    .unwrap_or(ChannelStatus {
                        gateway: key,
                        via: None,
                        state: ChannelState::Connecting,
                    })
            })
            .collect();
        let changed = next != s.channels;
        s.channels = next;
        changed
    });
    *running = keep;
}

fn start(spawner: &Spawner, instance: Instance, parent: &CancellationToken) -> Running {
    let token = parent.child_token();
    let retry = Arc::new(Notify::new());
    let lanes = spawner.shards.len();
    let key = instance.key();
    let tasks = (0..lanes)
        .map(|lane| {
            let ctx = ChannelCtx {
                key: key.clone(),
                lane,
                lanes,
                dialer: spawner.dialer.clone(),
                forwarder: spawner.forwarder.clone(),
                relay: spawner.relay.clone(),
                status: spawner.status.clone(),
                timing: spawner.timing,
            };
            let lane_retry = if lane == 0 {
                retry.clone()
            } else {
                Arc::new(Notify::new())
            };
            let sup = Supervisor::new(ctx, instance.channel.clone(), lane_retry);
            let span = tracing::info_span!("channel", gateway = %key, lane);
            spawner.shards.spawn_on(
                lane,
                spawner
                    .tracker
                    .track_future(sup.run(token.clone()).instrument(span)),
            )
        })
        .collect();
    Running {
        instance,
        token,
        retry,
        tasks,
    }
}

/// Logs the instances without a channel and wakes their supervisors.
fn check(status: &ConnectorStatus, running: &[Running]) {
    let missing: Vec<&str> = status
        .channels
        .iter()
        .filter(|c| !c.state.is_up())
        .map(|c| c.gateway.as_str())
        .collect();
    if missing.is_empty() {
        info!(
            channels = status.channels.len(),
            "channel check: connected to every gateway instance"
        );
        return;
    }
    warn!(
        up = status.up(),
        total = status.channels.len(),
        missing = %missing.join(", "),
        "channel check: no channel to some gateway instances; retrying them now"
    );
    for r in running {
        let key = r.instance.key();
        let down = status
            .channels
            .iter()
            .any(|c| c.gateway == key && matches!(c.state, ChannelState::Down { .. }));
        if down {
            r.retry.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(name: &str, addrs: &[&str]) -> InstanceAddrs {
        InstanceAddrs {
            name: name.into(),
            channel: addrs.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn bundle_lists_replace_the_config_only_when_usable() {
        assert_eq!(from_bundle(&[]), None, "no list: the config's");
        assert_eq!(
            from_bundle(&[listed("a", &["nope"])]),
            None,
            "nothing usable"
        );
        let got = from_bundle(&[
            listed("a", &["gw-1.test:10140", "gw-1.test:443"]),
            listed("b", &["gw-1.test:10140"]),
            listed("c", &["10.0.0.3:10142"]),
        ])
        .expect("usable");
        let keys: Vec<String> = got.iter().map(Instance::key).collect();
        assert_eq!(
            keys,
            ["gw-1.test:10140", "10.0.0.3:10142"],
            "the duplicate dropped"
        );
        assert_eq!(got[0].channel.len(), 2);
    }
}
