//! The live channels of this instance, grouped by site, with round robin.
//!
//! Seed 000: the gateway "uses round-robin behavior to load-balance CMG connection
//! points in the same site". A value passed around in an `Arc`, never a global.
//!
//! Requests with an affinity key (a BITS upload's `BITS-Session-Id`) skip the round
//! robin: the key picks a connection point by rendezvous hashing (FNV-1a of key and
//! connection point id, highest wins) among those with an open channel, so every
//! fragment of one session goes through the same connection point, on every gateway
//! instance alike (they all see the same connection points), with no shared state. When
//! that connection point loses its channels the next-highest takes over, and only the
//! sessions it held move.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use cmg_proto::{ConnectionId, ConnectorId, SiteCode};
use tokio::sync::watch;

use crate::upstream::ChannelSender;

/// One live channel: the HTTP/2 client end of a connection point's TLS connection.
#[derive(Debug)]
pub struct Channel {
    pub id: ConnectionId,
    pub connector: ConnectorId,
    pub site: SiteCode,
    pub peer: SocketAddr,
    /// The shard whose thread drives this channel's connection.
    pub shard: usize,
    pub(crate) sender: ChannelSender,
}

impl Channel {
    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }
}

#[derive(Debug, Default)]
struct SiteChannels {
    list: Vec<Arc<Channel>>,
    next: AtomicUsize,
}

/// What a test or health check sees of one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelInfo {
    pub id: ConnectionId,
    pub connector: ConnectorId,
    pub site: SiteCode,
    pub peer: SocketAddr,
    /// The data-path thread the channel runs on.
    pub shard: usize,
}

/// Live channels by site.
#[derive(Debug)]
pub struct ChannelRegistry {
    sites: RwLock<HashMap<SiteCode, SiteChannels>>,
    /// Channels of each connection point on each shard, from placement to the end of
    /// the channel (so two channels of one connection point that arrive together still
    /// land on different shards).
    placed: Mutex<HashMap<ConnectorId, Vec<usize>>>,
    /// Connection points with at least one live channel, for readiness and for tests
    /// to wait on.
    count: watch::Sender<usize>,
    /// Live channels (a connection point keeps one per data-path thread).
    channels: watch::Sender<usize>,
}

impl Default for ChannelRegistry {
    fn default() -> Self {
        Self {
            sites: RwLock::default(),
            placed: Mutex::default(),
            count: watch::channel(0).0,
            channels: watch::channel(0).0,
        }
    }
}

/// A channel's shard, held for as long as the channel lives.
#[derive(Debug)]
pub struct Placement {
    registry: Arc<ChannelRegistry>,
    connector: ConnectorId,
    shard: usize,
}

impl Placement {
    pub fn shard(&self) -> usize {
        self.shard
    }
}

impl Drop for Placement {
    fn drop(&mut self) {
        let mut placed = self
            .registry
            .placed
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(counts) = placed.get_mut(&self.connector) {
            counts[self.shard] = counts[self.shard].saturating_sub(1);
            if counts.iter().all(|&n| n == 0) {
                placed.remove(&self.connector);
            }
        }
    }
}

fn connection_points(sites: &HashMap<SiteCode, SiteChannels>) -> usize {
    sites
        .values()
        .flat_map(|s| s.list.iter().map(|c| &c.connector))
        .collect::<HashSet<_>>()
        .len()
}

/// The rendezvous score of `connector` for `key`: FNV-1a 64 over both, stable across
/// processes and builds, so every gateway instance scores alike.
fn rendezvous(key: &str, connector: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes().chain([0xff]).chain(connector.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

impl ChannelRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&self, ch: Arc<Channel>) {
        let mut sites = self.sites.write().unwrap_or_else(|e| e.into_inner());
        sites.entry(ch.site.clone()).or_default().list.push(ch);
        let n = connection_points(&sites);
        let total = sites.values().map(|s| s.list.len()).sum();
        drop(sites);
        self.count.send_replace(n);
        self.channels.send_replace(total);
    }

    /// Removes a channel; returns whether it was present.
    pub fn remove(&self, id: ConnectionId) -> bool {
        let mut sites = self.sites.write().unwrap_or_else(|e| e.into_inner());
        let mut found = false;
        for s in sites.values_mut() {
            let before = s.list.len();
            s.list.retain(|c| c.id != id);
            found |= s.list.len() != before;
        }
        sites.retain(|_, s| !s.list.is_empty());
        let n = connection_points(&sites);
        let total = sites.values().map(|s| s.list.len()).sum();
        drop(sites);
        self.count.send_replace(n);
        self.channels.send_replace(total);
        found
    }

    /// Chooses the shard for a new channel of `connector` among `shards`: the one with
    /// the fewest channels of that connection point, then the fewest channels at all,
    /// then the lowest index.
    pub fn place(self: &Arc<Self>, connector: &ConnectorId, shards: usize) -> Placement {
        let shards = shards.max(1);
        let mut placed = self.placed.lock().unwrap_or_else(|e| e.into_inner());
        let mut total = vec![0usize; shards];
        for counts in placed.values() {
            for (t, n) in total.iter_mut().zip(counts) {
                *t += n;
            }
        }
        let mine = placed
            .entry(connector.clone())
            .or_insert_with(|| vec![0; shards]);
        let shard = (0..shards)
            .min_by_key(|&i| (mine[i], total[i], i))
            .unwrap_or(0);
        mine[shard] += 1;
        Placement {
            registry: self.clone(),
            connector: connector.clone(),
            shard,
        }
    }

    /// The next open channel of `site` in round-robin order, skipping closed ones;
    /// a channel on `shard` (the caller's thread) when the site has one, so the
    /// request never wakes another thread, any other open one otherwise.
    pub fn pick(&self, site: &SiteCode, shard: usize) -> Option<Arc<Channel>> {
        let sites = self.sites.read().unwrap_or_else(|e| e.into_inner());
        let s = sites.get(site)?;
        let n = s.list.len();
        let start = s.next.fetch_add(1, Ordering::Relaxed);
        let order = || (0..n).map(|i| &s.list[(start + i) % n]);
        order()
            .find(|c| c.shard == shard && !c.is_closed())
            .or_else(|| order().find(|c| !c.is_closed()))
            .cloned()
    }

    /// As [`Self::pick`], but a request with an `affinity` key always goes to the same
    /// connection point while it has an open channel (rendezvous hashing; see the
    /// module doc); the caller's shard is preferred among that connection point's
    /// channels.
    pub fn pick_with(
        &self,
        site: &SiteCode,
        shard: usize,
        affinity: Option<&str>,
    ) -> Option<Arc<Channel>> {
        let Some(key) = affinity else {
            return self.pick(site, shard);
        };
        let sites = self.sites.read().unwrap_or_else(|e| e.into_inner());
        let s = sites.get(site)?;
        let chosen = s
            .list
            .iter()
            .filter(|c| !c.is_closed())
            .max_by_key(|c| (rendezvous(key, c.connector.as_str()), c.connector.as_str()))?
            .connector
            .clone();
        let mine = || {
            s.list
                .iter()
                .filter(|c| c.connector == chosen && !c.is_closed())
        };
        mine()
            .find(|c| c.shard == shard)
            .or_else(|| mine().next())
            .cloned()
    }

    /// An open channel of any site (control traffic: every connection point relays the
    /// same settings).
    pub fn any(&self) -> Option<Arc<Channel>> {
        let sites = self.sites.read().unwrap_or_else(|e| e.into_inner());
        let open: Vec<&Arc<Channel>> = sites
            .values()
            .flat_map(|s| s.list.iter())
            .filter(|c| !c.is_closed())
            .collect();
        if open.is_empty() {
            return None;
        }
        // Spread polls over the channels rather than always using the first.
        Some(open[rand::random::<u32>() as usize % open.len()].clone())
    }

    /// Every open channel (traffic snapshots go to every connection point).
    pub fn open_channels(&self) -> Vec<Arc<Channel>> {
        let sites = self.sites.read().unwrap_or_else(|e| e.into_inner());
        sites
            .values()
            .flat_map(|s| s.list.iter())
            .filter(|c| !c.is_closed())
            .cloned()
            .collect()
    }

    /// Every live channel.
    pub fn snapshot(&self) -> Vec<ChannelInfo> {
        let sites = self.sites.read().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<ChannelInfo> = sites
            .values()
            .flat_map(|s| s.list.iter())
            .map(|c| ChannelInfo {
                id: c.id,
                connector: c.connector.clone(),
                site: c.site.clone(),
                peer: c.peer,
                shard: c.shard,
            })
            .collect();
        v.sort_by(|a, b| a.connector.cmp(&b.connector));
        v
    }

    /// Watches the number of connection points with a live channel.
    pub fn subscribe(&self) -> watch::Receiver<usize> {
        self.count.subscribe()
    }

    /// Watches the number of live channels.
    pub fn subscribe_channels(&self) -> watch::Receiver<usize> {
        self.channels.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cp(name: &str) -> ConnectorId {
        ConnectorId::new(name).expect("valid id")
    }

    #[test]
    fn channels_of_one_connection_point_spread_over_the_shards() {
        let reg = Arc::new(ChannelRegistry::new());
        let a1 = reg.place(&cp("a"), 2);
        let a2 = reg.place(&cp("a"), 2);
        assert_eq!((a1.shard(), a2.shard()), (0, 1));
        // Another connection point: same rule, its own counts.
        let b1 = reg.place(&cp("b"), 2);
        let b2 = reg.place(&cp("b"), 2);
        assert_eq!((b1.shard(), b2.shard()), (0, 1));
        // A third channel of `a` goes where the fewest channels are overall.
        drop(b2);
        let a3 = reg.place(&cp("a"), 2);
        assert_eq!(a3.shard(), 1);
        // Ended channels give their place back.
        drop((a1, a2, a3, b1));
        assert!(reg.placed.lock().expect("not poisoned").is_empty());
    }

    /// A real HTTP/2 client end over an in-memory pipe, with its connection task.
    async fn channel(id: u64, connector: &str, shard: usize) -> Arc<Channel> {
        let (client, _server) = tokio::io::duplex(64 * 1024);
        let (h2, conn) = h2::client::handshake(client)
            .await
            .expect("client handshake");
        let (sender, closed) = ChannelSender::new(h2);
        tokio::spawn(async move {
            let _server = _server;
            let _closed = closed;
            let _ = conn.await;
        });
        Arc::new(Channel {
            id: ConnectionId(id),
            connector: cp(connector),
            site: SiteCode::new("DEM").expect("site"),
            peer: "127.0.0.1:1".parse().expect("addr"),
            shard,
            sender,
        })
    }

    #[tokio::test]
    async fn pick_prefers_the_callers_shard_and_round_robins_there() {
        let reg = ChannelRegistry::new();
        let site = SiteCode::new("DEM").expect("site");
        for (id, name, shard) in [(1, "a", 0), (2, "a", 1), (3, "b", 0), (4, "b", 1)] {
            reg.insert(channel(id, name, shard).await);
        }
        assert_eq!(*reg.subscribe().borrow(), 2, "two connection points");
        assert_eq!(*reg.subscribe_channels().borrow(), 4);
        let picks: Vec<(String, usize)> = (0..4)
            .map(|_| {
                let c = reg.pick(&site, 1).expect("a channel");
                (c.connector.to_string(), c.shard)
            })
            .collect();
        assert!(picks.iter().all(|(_, s)| *s == 1), "{picks:?}");
        let a = picks.iter().filter(|(c, _)| c == "a").count();
        assert_eq!(a, 2, "round robin over both connection points: {picks:?}");

        // No channel on the caller's shard: any other open one.
        reg.remove(ConnectionId(2));
        reg.remove(ConnectionId(4));
        let c = reg.pick(&site, 1).expect("falls back to another shard");
        assert_eq!(c.shard, 0);
        assert_eq!(*reg.subscribe().borrow(), 2);
        reg.remove(ConnectionId(1));
        reg.remove(ConnectionId(3));
        assert!(reg.pick(&site, 1).is_none());
        assert_eq!(*reg.subscribe().borrow(), 0);
    }

    #[tokio::test]
    async fn an_affinity_key_sticks_to_one_connection_point_until_it_goes() {
        let reg = ChannelRegistry::new();
        let site = SiteCode::new("DEM").expect("site");
        for (id, name, shard) in [(1, "a", 0), (2, "a", 1), (3, "b", 0), (4, "b", 1)] {
            reg.insert(channel(id, name, shard).await);
        }
        let mut by_cp: HashMap<String, usize> = HashMap::new();
        for n in 0..64 {
            let key = format!("{{{n:08x}-0000-4000-8000-000000000000}}");
            let first = reg.pick_with(&site, n % 2, Some(&key)).expect("a channel");
            for shard in [0, 1, 0, 1] {
                let again = reg.pick_with(&site, shard, Some(&key)).expect("a channel");
                assert_eq!(again.connector, first.connector, "session {key} moved");
                assert_eq!(
                    again.shard, shard,
                    "the caller's shard of that connection point"
                );
            }
            *by_cp.entry(first.connector.to_string()).or_default() += 1;
        }
        assert_eq!(by_cp.len(), 2, "sessions spread over both: {by_cp:?}");

        // The chosen connection point goes: its sessions move, the others stay.
        let key = "{00000001-0000-4000-8000-000000000000}";
        let other_key = (0..64)
            .map(|n| format!("{{{n:08x}-0000-4000-8000-000000000000}}"))
            .find(|k| {
                reg.pick_with(&site, 0, Some(k))
                    .expect("a channel")
                    .connector
                    != reg
                        .pick_with(&site, 0, Some(key))
                        .expect("a channel")
                        .connector
            })
            .expect("a session on the other connection point");
        let gone = reg
            .pick_with(&site, 0, Some(key))
            .expect("a channel")
            .connector
            .clone();
        let kept = reg
            .pick_with(&site, 0, Some(&other_key))
            .expect("a channel")
            .connector
            .clone();
        for c in reg.open_channels() {
            if c.connector == gone {
                reg.remove(c.id);
            }
        }
        assert_eq!(
            reg.pick_with(&site, 0, Some(key)).expect("moved").connector,
            kept
        );
        assert_eq!(
            reg.pick_with(&site, 0, Some(&other_key))
                .expect("stays")
                .connector,
            kept
        );
        assert_eq!(rendezvous("k", "a"), rendezvous("k", "a"));
    }
}
