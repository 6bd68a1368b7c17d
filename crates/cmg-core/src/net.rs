//! Socket setup shared by every listener and dialer.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};

/// Binds a listener with a deep accept backlog (the default 128 drops SYNs under a
/// reconnect storm of thousands of clients).
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    TcpListener::from_std(socket.into())
}

/// Prepares an accepted or dialled stream: TCP_NODELAY always (small responses must not
/// wait 40 ms for Nagle), keep-alive probes so a vanished peer is eventually noticed.
pub fn tune(stream: &TcpStream) {
    let _ = stream.set_nodelay(true);
    let sock = socket2::SockRef::from(stream);
    let ka = socket2::TcpKeepalive::new().with_time(std::time::Duration::from_secs(60));
    let _ = sock.set_tcp_keepalive(&ka);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn binds_ephemeral_and_sets_nodelay() {
        let l = bind("127.0.0.1:0".parse().expect("addr")).expect("bind");
        let addr = l.local_addr().expect("addr");
        assert_ne!(addr.port(), 0);
        let c = TcpStream::connect(addr).await.expect("connect");
        tune(&c);
        assert!(c.nodelay().expect("nodelay"));
    }
}
