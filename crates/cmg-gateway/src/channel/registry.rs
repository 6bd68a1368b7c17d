//! The live channels of this instance, grouped by site, with round robin.
//!
//! Seed 000: the gateway "uses round-robin behavior to load-balance CMG connection
//! points in the same site". A value passed around in an `Arc`, never a global.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use cmg_proto::{ConnectionId, ConnectorId, SiteCode};
use hyper::client::conn::http2::SendRequest;
use tokio::sync::watch;

use crate::request::body::ForwardBody;

/// One live channel: the HTTP/2 client end of a connection point's TLS connection.
#[derive(Debug)]
pub struct Channel {
    pub id: ConnectionId,
    pub connector: ConnectorId,
    pub site: SiteCode,
    pub peer: SocketAddr,
    pub(crate) sender: SendRequest<ForwardBody>,
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
}

/// Live channels by site.
#[derive(Debug)]
pub struct ChannelRegistry {
    sites: RwLock<HashMap<SiteCode, SiteChannels>>,
    /// Count of live channels, for readiness and for tests to wait on.
    count: watch::Sender<usize>,
}

impl Default for ChannelRegistry {
    fn default() -> Self {
        Self {
            sites: RwLock::default(),
            count: watch::channel(0).0,
        }
    }
}

impl ChannelRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&self, ch: Arc<Channel>) {
        let mut sites = self.sites.write().unwrap_or_else(|e| e.into_inner());
        sites.entry(ch.site.clone()).or_default().list.push(ch);
        let n = sites.values().map(|s| s.list.len()).sum();
        drop(sites);
        self.count.send_replace(n);
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
        let n = sites.values().map(|s| s.list.len()).sum();
        drop(sites);
        self.count.send_replace(n);
        found
    }

    /// The next open channel of `site` in round-robin order, skipping closed ones.
    pub fn pick(&self, site: &SiteCode) -> Option<Arc<Channel>> {
        let sites = self.sites.read().unwrap_or_else(|e| e.into_inner());
        let s = sites.get(site)?;
        let n = s.list.len();
        let start = s.next.fetch_add(1, Ordering::Relaxed);
        (0..n)
            .map(|i| &s.list[(start + i) % n])
            .find(|c| !c.is_closed())
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
            })
            .collect();
        v.sort_by(|a, b| a.connector.cmp(&b.connector));
        v
    }

    /// Watches the number of live channels.
    pub fn subscribe(&self) -> watch::Receiver<usize> {
        self.count.subscribe()
    }
}
