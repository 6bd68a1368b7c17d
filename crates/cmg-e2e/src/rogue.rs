//! A rogue connection point: a peer holding a real connection point certificate that
//! opens a channel to a gateway instance and then misbehaves in raw HTTP/2 frames
//! ([`crate::h2raw`]). On a channel the gateway is the HTTP/2 client, so the rogue plays
//! the server: it answers the gateway's hello so the channel is registered and takes
//! client requests, and attacks from there.

use std::time::Duration;

use anyhow::Context as _;
use cmg_client::ClientTls;
use cmg_cluster::Cluster;
use cmg_proto::channel;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::h2raw::{self, flag, kind, Frames, Reading, Role, Seen};
use crate::spec;

/// A registered rogue channel.
pub struct Rogue {
    pub frames: Frames<TlsStream<TcpStream>>,
    pub seen: watch::Receiver<Seen>,
}

impl std::fmt::Debug for Rogue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rogue")
            .field("seen", &*self.seen.borrow())
            .finish()
    }
}

/// Dials gateway `gw`'s channel port as connection point `connector` (its certificate
/// from the cluster's PKI), answers the hello, and returns once the gateway has sent it
/// (the channel is registered right after the answer). Reads and answers PINGs until
/// the caller says otherwise ([`Frames::stop_reading`]).
pub async fn open(cluster: &Cluster, gw: usize, connector: usize) -> anyhow::Result<Rogue> {
    let cp = cluster
        .pki
        .connectors
        .get(connector)
        .context("no such connection point in the PKI")?;
    let tls = ClientTls {
        ca: vec![cluster.pki.root_ca.clone()],
        identity: Some((cp.cert.clone(), cp.key.clone())),
    };
    let config = cmg_client::tls_config(&tls, vec![channel::ALPN.to_vec()])?;
    let tcp = TcpStream::connect(cluster.gateways[gw].channel)
        .await
        .context("connect to the channel port")?;
    let name = ServerName::try_from(spec::SERVICE_NAME)?.to_owned();
    let stream = TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .context("channel TLS handshake")?;
    let (mut frames, mut seen) = h2raw::start(stream, Role::Server, Reading::CountAndPong).await?;
    tokio::time::timeout(Duration::from_secs(10), seen.wait_for(|s| s.headers >= 1))
        .await
        .context("no hello from the gateway")?
        .context("the gateway closed before its hello")?;
    let mut answer = Vec::new();
    h2raw::literal(&mut answer, ":status", b"200");
    h2raw::literal(
        &mut answer,
        "cmg-connection-point",
        cp.id.as_str().as_bytes(),
    );
    frames
        .send(
            &h2raw::frame(
                kind::HEADERS,
                flag::END_HEADERS | flag::END_STREAM,
                1,
                &answer,
            ),
            Duration::from_secs(5),
        )
        .await?;
    Ok(Rogue { frames, seen })
}

/// The header block of a response with `status` and no other header.
pub fn response_head(status: u16) -> Vec<u8> {
    let mut block = Vec::new();
    h2raw::literal(&mut block, ":status", status.to_string().as_bytes());
    block
}
