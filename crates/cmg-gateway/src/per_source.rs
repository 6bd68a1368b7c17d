//! Caps on what one source address may hold at once: open connections, and TLS
//! handshakes in progress (the expensive part a flood goes for). Off unless
//! configured (`[limits] max_connections_per_source`, `max_handshakes_per_source`):
//! behind a load balancer every connection comes from the balancer's address, so a cap
//! only makes sense for direct clients or with PROXY protocol giving the real source.
//!
//! One entry per address with a live connection, removed with its last connection, so
//! the table is bounded by the connection limit. A lock per admission and per release;
//! nothing on the request path.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// The caps; `None` leaves that count unbounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct SourceCaps {
    pub connections: Option<usize>,
    pub handshakes: Option<usize>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    connections: usize,
    handshakes: usize,
}

/// The live counts by source.
#[derive(Debug)]
pub(crate) struct PerSource {
    caps: SourceCaps,
    map: Mutex<HashMap<IpAddr, Counts>>,
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SourceRefusal {
    Connections,
    Handshakes,
}

impl SourceRefusal {
    pub fn code(self) -> &'static str {
        match self {
            Self::Connections => "per_source_connections",
            Self::Handshakes => "per_source_handshakes",
        }
    }
}

/// One admitted connection; releases its counts when dropped.
#[derive(Debug)]
pub(crate) struct SourceSlot {
    owner: Arc<PerSource>,
    ip: IpAddr,
    handshaking: bool,
}

impl PerSource {
    /// `None` when no cap is set: nothing to count.
    pub fn new(caps: SourceCaps) -> Option<Arc<Self>> {
        (caps.connections.is_some() || caps.handshakes.is_some()).then(|| {
            Arc::new(Self {
                caps,
                map: Mutex::default(),
            })
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Counts>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Admits a new connection from `ip`, in its handshake, or refuses it.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<SourceSlot, SourceRefusal> {
        let ip = ip.to_canonical();
        let mut map = self.lock();
        let c = map.entry(ip).or_default();
        if self
            .caps
            .connections
            .is_some_and(|max| c.connections >= max)
        {
            cleanup(&mut map, ip);
            return Err(SourceRefusal::Connections);
        }
        if self.caps.handshakes.is_some_and(|max| c.handshakes >= max) {
            cleanup(&mut map, ip);
            return Err(SourceRefusal::Handshakes);
        }
        c.connections += 1;
        c.handshakes += 1;
        Ok(SourceSlot {
            owner: self.clone(),
            ip,
            handshaking: true,
        })
    }

    /// The number of sources with a live connection (tests, metrics).
    #[cfg(test)]
    fn sources(&self) -> usize {
        self.lock().len()
    }
}

fn cleanup(map: &mut HashMap<IpAddr, Counts>, ip: IpAddr) {
    if map
        .get(&ip)
        .is_some_and(|c| c.connections == 0 && c.handshakes == 0)
    {
        map.remove(&ip);
    }
}

impl SourceSlot {
    /// The handshake is over (either way); the connection keeps its place.
    pub fn handshake_done(&mut self) {
        if std::mem::take(&mut self.handshaking) {
            let mut map = self.owner.lock();
            if let Some(c) = map.get_mut(&self.ip) {
                c.handshakes = c.handshakes.saturating_sub(1);
            }
        }
    }
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        let mut map = self.owner.lock();
        if let Some(c) = map.get_mut(&self.ip) {
            c.connections = c.connections.saturating_sub(1);
            if self.handshaking {
                c.handshakes = c.handshakes.saturating_sub(1);
            }
        }
        cleanup(&mut map, self.ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn off_without_caps() {
        assert!(PerSource::new(SourceCaps::default()).is_none());
    }

    #[test]
    fn connections_per_source_are_capped_and_released() {
        let p = PerSource::new(SourceCaps {
            connections: Some(2),
            handshakes: None,
        })
        .expect("on");
        let a = p.admit(ip("192.0.2.1")).expect("first");
        let _b = p.admit(ip("192.0.2.1")).expect("second");
        assert_eq!(
            p.admit(ip("192.0.2.1")).expect_err("third"),
            SourceRefusal::Connections
        );
        let _other = p
            .admit(ip("192.0.2.2"))
            .expect("another source is not affected");
        assert_eq!(
            p.admit(ip("::ffff:192.0.2.1"))
                .expect_err("the same source as IPv4-mapped"),
            SourceRefusal::Connections
        );
        drop(a);
        let _c = p.admit(ip("192.0.2.1")).expect("a place was freed");
        assert_eq!(p.sources(), 2);
    }

    #[test]
    fn handshakes_per_source_are_capped_until_done() {
        let p = PerSource::new(SourceCaps {
            connections: None,
            handshakes: Some(1),
        })
        .expect("on");
        let mut a = p.admit(ip("198.51.100.7")).expect("first");
        assert_eq!(
            p.admit(ip("198.51.100.7")).expect_err("second handshake"),
            SourceRefusal::Handshakes
        );
        a.handshake_done();
        a.handshake_done();
        let b = p
            .admit(ip("198.51.100.7"))
            .expect("handshake finished: room again");
        drop(b);
        drop(a);
        assert_eq!(p.sources(), 0, "entries leave with their last connection");
    }
}
