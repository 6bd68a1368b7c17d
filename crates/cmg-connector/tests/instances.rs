//! The instances a connection point keeps channels to: the bundle's list followed live
//! (an instance added is dialled, one removed drained and dropped, host names resolved),
//! the fallback to a later address and the move back once the preferred one answers,
//! and channels through a real HTTP CONNECT proxy (Debian's tinyproxy) on loopback.

mod support;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use cmg_connector::config::{Instance, ProxySetting, SettingsSource};
use cmg_connector::{wait_until, ChannelState, ConnectorStatus};
use cmg_test_support::patience;

use support::*;

/// A bundle as the connection point reads it: it orders bundles by version and takes
/// the instance list without verifying the signature (the gateway verifies), so the
/// signature part here is a placeholder.
fn bundle(version: u64, instances: &[&[String]]) -> String {
    let list: Vec<serde_json::Value> = instances
        .iter()
        .enumerate()
        .map(|(i, addrs)| serde_json::json!({"name": format!("cmg1-{}", i + 1), "channel": addrs}))
        .collect();
    let payload = serde_json::json!({"version": version, "instances": list});
    format!(
        "{}.{}.c2ln",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"cmg-settings+jws"}"#),
        URL_SAFE_NO_PAD.encode(payload.to_string())
    )
}

fn write_bundle(path: &Path, text: &str) -> Result<()> {
    // Written aside and renamed, so the poller never reads half a file; owner only, as
    // the connection point requires of a bundle file.
    cmg_core::private_file::write(path, text.as_bytes())?;
    Ok(())
}

fn up(s: &ConnectorStatus, key: &str) -> bool {
    s.channel(key).is_some_and(ChannelState::is_up)
}

#[tokio::test]
async fn instances_follow_the_bundle_without_restart() -> Result<()> {
    let _t = tracing_guard();
    let pki = Pki::new()?;
    let mut a = FakeGateway::start(&pki, NORMAL).await?;
    let mut b = FakeGateway::start(&pki, NORMAL).await?;
    let (mut config, dir, held) = connector_parts(&pki, &[a.addr]).await?;
    let bundle_file = dir.path().join("bundle.jws");
    config.settings = Some(SettingsSource::File {
        bundle_file: bundle_file.clone(),
        poll_interval: Duration::from_millis(50),
    });
    let mut cp = run_connector(config, dir, held).await?;

    // Before any bundle: the config's list.
    let a_key = a.addr.to_string();
    a.next_channel().await?;
    wait_until(&mut cp.status, patience(WAIT), |s| up(s, &a_key)).await?;

    // The site adds an instance, by host name: dialled without a restart.
    let b_key = format!("localhost:{}", b.addr.port());
    write_bundle(
        &bundle_file,
        &bundle(
            1,
            &[std::slice::from_ref(&a_key), std::slice::from_ref(&b_key)],
        ),
    )?;
    let mut b_channel = b.next_channel().await?;
    let s = wait_until(&mut cp.status, patience(WAIT), |s| {
        up(s, &a_key) && up(s, &b_key)
    })
    .await?;
    let keys: Vec<&str> = s.channels.iter().map(|c| c.gateway.as_str()).collect();
    assert_eq!(keys, [a_key.as_str(), b_key.as_str()], "the bundle's order");

    // The site removes the first: it is dropped, the other stays up on its channel.
    write_bundle(&bundle_file, &bundle(2, &[std::slice::from_ref(&b_key)]))?;
    let s = wait_until(&mut cp.status, patience(WAIT), |s| s.channels.len() == 1).await?;
    assert_eq!(s.channels[0].gateway, b_key);
    assert!(s.channels[0].state.is_up());
    let reply = b_channel
        .send(
            http::Method::GET,
            &format!("{MP_PREFIX}/ping"),
            Default::default(),
        )
        .await?;
    assert_eq!(
        reply.status(),
        http::StatusCode::OK,
        "the kept channel still serves"
    );

    cp.stop().await
}

#[tokio::test]
async fn falls_back_to_a_later_address_and_moves_back() -> Result<()> {
    let _t = tracing_guard();
    let pki = Pki::new()?;
    // The instance's channel port is down; its client port (here: another listener of
    // the fake gateway) answers the channel too.
    let channel_port = dead_addr().await?;
    let mut client_port = FakeGateway::start(&pki, NORMAL).await?;
    let (mut config, dir, held) = connector_parts(&pki, &[client_port.addr]).await?;
    config.gateways = vec![Instance::parse(&[
        channel_port.to_string(),
        client_port.addr.to_string(),
    ])
    .map_err(anyhow::Error::msg)?];
    config.timing.fallback_probe = Duration::from_millis(100);
    let mut cp = run_connector(config, dir, held).await?;
    let key = channel_port.to_string();

    client_port.next_channel().await?;
    let s = wait_until(&mut cp.status, patience(WAIT), |s| up(s, &key)).await?;
    assert_eq!(s.channels[0].via, Some(client_port.addr.to_string()));

    // The channel port comes back: the probe finds it and the channel moves there.
    let mut preferred = FakeGateway::start_at(&pki, NORMAL, channel_port).await?;
    let mut moved = preferred.next_channel().await?;
    let s = wait_until(&mut cp.status, patience(WAIT), |s| {
        up(s, &key) && s.channels[0].via.is_none()
    })
    .await?;
    assert_eq!(
        s.channel(&key).and_then(ChannelState::connection_id),
        Some(moved.connection_id.as_str())
    );
    let reply = moved
        .send(
            http::Method::GET,
            &format!("{MP_PREFIX}/ping"),
            Default::default(),
        )
        .await?;
    assert_eq!(reply.status(), http::StatusCode::OK);
    cp.stop().await
}

/// A tinyproxy on loopback with `extra` config lines; stopped (by its PID) on drop.
struct Tinyproxy {
    child: Child,
    addr: std::net::SocketAddr,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tinyproxy_bin() -> Result<std::path::PathBuf> {
    ["/usr/bin/tinyproxy", "/usr/sbin/tinyproxy"]
        .iter()
        .map(std::path::PathBuf::from)
        .find(|p| p.exists())
        .context("tinyproxy is not installed: apt-get install tinyproxy (.ci/run does)")
}

async fn tinyproxy(extra: &str) -> Result<Tinyproxy> {
    let bin = tinyproxy_bin()?;
    let dir = tempfile::tempdir()?;
    // tinyproxy takes a port number, not a listener: take a free one from the kernel.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let log = dir.path().join("tinyproxy.log");
    let conf = dir.path().join("tinyproxy.conf");
    std::fs::write(
        &conf,
        format!(
            "Port {port}\nListen 127.0.0.1\nTimeout 60\nLogFile \"{}\"\nLogLevel Connect\n\
             MaxClients 20\nAllow 127.0.0.1\n{extra}\n",
            log.display()
        ),
    )?;
    let child = Command::new(bin)
        .arg("-d")
        .arg("-c")
        .arg(&conf)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("start tinyproxy")?;
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse()?;
    cmg_test_support::eventually("tinyproxy to listen")
        .within(patience(WAIT))
        .every(Duration::from_millis(20))
        .until_async(move || tokio::net::TcpStream::connect(addr), |r| r.is_ok())
        .await?;
    Ok(Tinyproxy {
        child,
        addr,
        log,
        _dir: dir,
    })
}

#[tokio::test]
async fn channels_go_through_a_connect_proxy_and_a_refusal_is_clear() -> Result<()> {
    let _t = tracing_guard();
    let pki = Pki::new()?;
    let mut gw = FakeGateway::start(&pki, NORMAL).await?;
    let key = gw.addr.to_string();

    // tinyproxy without ConnectPort lines tunnels to every port.
    let proxy = tinyproxy("").await?;
    let (mut config, dir, held) = connector_parts(&pki, &[gw.addr]).await?;
    config.proxy = ProxySetting::Via(Arc::new(cmg_core::proxy::Proxy::new(
        &format!("http://{}", proxy.addr),
        &[] as &[&str],
    )?));
    let mut cp = run_connector(config, dir, held).await?;
    let mut ch = gw.next_channel().await?;
    wait_until(&mut cp.status, patience(WAIT), |s| up(s, &key)).await?;
    let reply = ch
        .send(
            http::Method::GET,
            &format!("{MP_PREFIX}/ping"),
            Default::default(),
        )
        .await?;
    assert_eq!(reply.status(), http::StatusCode::OK);
    let log = std::fs::read_to_string(&proxy.log)?;
    assert!(
        log.contains(&format!("CONNECT {key}"))
            || log.contains(&format!("CONNECT {}", gw.addr.ip())),
        "the channel did not go through the proxy: {log}"
    );
    cp.stop().await?;

    // A proxy that refuses the gateway's port: the status says so, by the proxy's words.
    let strict = tinyproxy("ConnectPort 443").await?;
    let (mut config, dir, held) = connector_parts(&pki, &[gw.addr]).await?;
    config.proxy = ProxySetting::Via(Arc::new(cmg_core::proxy::Proxy::new(
        &format!("http://{}", strict.addr),
        &[] as &[&str],
    )?));
    let mut cp = run_connector(config, dir, held).await?;
    let s = wait_until(&mut cp.status, patience(WAIT), |s| {
        matches!(s.channel(&key), Some(ChannelState::Down { .. }))
    })
    .await?;
    let Some(ChannelState::Down { last_error }) = s.channel(&key) else {
        unreachable!("matched above")
    };
    assert!(
        last_error.contains(&format!(
            "proxy {} refused CONNECT {key}: HTTP/1.",
            strict.addr
        )) && last_error.contains("403"),
        "{last_error}"
    );
    cp.stop().await
}
