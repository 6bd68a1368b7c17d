//! Network change notifications (seed 004 / FACTS: location is refreshed "on a network
//! configuration change"): a `NETLINK_ROUTE` socket subscribed to the kernel's link,
//! address and route groups (IPv4 and IPv6). Every message the kernel multicasts there
//! (an address added or removed, a route added, removed or replaced, a link going up or
//! down) bumps a generation counter on a `watch`; the agent waits for the counter to
//! move, lets it settle, and decides again. Nothing is polled: the task sleeps in
//! `recv` until the kernel sends something. Messages are not parsed: any change is a
//! reason to probe again, and a lost message (`ENOBUFS` when the socket buffer
//! overflows) counts as a change too.
//!
//! Linux only; elsewhere (or where the socket cannot be opened) the agent runs without
//! it and says so, and still re-decides on its 24-hour cycle and at start.

use cmg_core::shutdown::Shutdown;
use netlink_sys::{protocols::NETLINK_ROUTE, AsyncSocket, AsyncSocketExt, SocketAddr, TokioSocket};
use tokio::sync::watch;

// Multicast groups of <linux/rtnetlink.h> (the legacy RTMGRP_* bit masks).
const RTMGRP_LINK: u32 = 0x1;
const RTMGRP_IPV4_IFADDR: u32 = 0x10;
const RTMGRP_IPV4_ROUTE: u32 = 0x40;
const RTMGRP_IPV6_IFADDR: u32 = 0x100;
const RTMGRP_IPV6_ROUTE: u32 = 0x400;

/// Groups the agent listens to.
pub const GROUPS: u32 =
    RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_IFADDR | RTMGRP_IPV6_ROUTE;

/// Opens the socket and starts the listening task (tracked by `shutdown`, ended by its
/// token). The receiver's value is the number of changes seen so far.
pub fn watch_changes(shutdown: &Shutdown) -> std::io::Result<watch::Receiver<u64>> {
    let mut socket = TokioSocket::new(NETLINK_ROUTE)?;
    socket.socket_mut().bind(&SocketAddr::new(0, GROUPS))?;
    let (tx, rx) = watch::channel(0u64);
    let stop = shutdown.token.clone();
    shutdown.tracker.spawn(async move {
        loop {
            let got = tokio::select! {
                _ = stop.cancelled() => return,
                got = socket.recv_from_full() => got,
            };
            match got {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(105) => {
                    // ENOBUFS: messages were dropped; that is a change too.
                }
                Err(e) => {
                    tracing::warn!(error = %e, "netlink socket failed; network changes are no longer watched");
                    return;
                }
            }
            tx.send_modify(|n| *n += 1);
        }
    });
    Ok(rx)
}
