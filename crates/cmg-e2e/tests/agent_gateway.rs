//! The `cmg client` agent end to end through a real gateway and a real connection
//! point: a cluster built from a real site (gateway instance, connection point and
//! management point role through its API, the instance from its export, bundles and
//! mappings from the site), real TLS on loopback, content from a real Azure Storage
//! emulator (Azurite) whose account is set at the site. Two devices with
//! `always_internet = true`, a certificate client and a token client, each:
//! - decides internet without probing;
//! - (token client) trades its bulk token for a device token through the gateway
//!   (`CCM_Proxy_ServerAuth/<role>/CCM_STS/token`);
//! - gets a location answer through the gateway that the site signed, says came
//!   `via: gateway` and authenticated as the device;
//! - lists its policy assignments and downloads every body through the gateway, each
//!   body's SHA-256 as the management point's file has it, the answer naming the
//!   instance and connection point;
//! - downloads content through the gateway, hash checked;
//!
//! and the gateway's own account shows it: its request counters for the location,
//! policy and content endpoints grew by what the agents sent, and the management point's
//! journal has the policy requests with the gateway's marks (`cmg-request-id`,
//! `cmg-client-auth` of the device's kind).
//!
//! Needs node (20 or later) and npm, as `content.rs`: Azurite is installed from the
//! committed lock file when missing.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cmg_agent::{Agent, ConnectionKind, SystemClock};
use cmg_cluster::devices::{DeviceCredential, DeviceNetwork, DeviceSpec};
use cmg_cluster::layout::POLICY;
use cmg_cluster::{Cluster, ClusterSpec};
use cmg_e2e::{journal, pattern, sha256_hex};
use cmg_proto::device::{ClientAuth, Via};
use cmg_site::model::{StorageSet, StorageView};
use cmg_site::Secret;
use cmg_test_support::azurite::{self, Azurite};
use cmg_test_support::patience;
use http::Method;
use object_store::{ObjectStoreExt, PutPayload};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BLOB: &str = "pkg/PS100001/app.bin";

/// `GET /metrics` on a gateway's admin listener (plain HTTP).
async fn metrics(admin: std::net::SocketAddr) -> anyhow::Result<String> {
    let mut s = tokio::net::TcpStream::connect(admin).await?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n")
        .await?;
    let mut out = Vec::new();
    tokio::time::timeout(patience(Duration::from_secs(5)), s.read_to_end(&mut out)).await??;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// The gateway's `cmg_gateway_requests_total` 2xx series, summed per endpoint label.
async fn requests_2xx(admin: std::net::SocketAddr) -> anyhow::Result<Vec<(String, u64)>> {
    let text = metrics(admin).await?;
    let mut out: Vec<(String, u64)> = Vec::new();
    for line in text
        .lines()
        .filter(|l| l.starts_with("cmg_gateway_requests_total{") && l.contains("\"2xx\""))
    {
        let endpoint = line
            .split("endpoint=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or_default()
            .to_owned();
        let n: u64 = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse::<f64>().ok())
            .map_or(0, |v| v as u64);
        match out.iter_mut().find(|(e, _)| *e == endpoint) {
            Some((_, c)) => *c += n,
            None => out.push((endpoint, n)),
        }
    }
    Ok(out)
}

fn count(series: &[(String, u64)], endpoint_ends: &str) -> u64 {
    series
        .iter()
        .filter(|(e, _)| e.ends_with(endpoint_ends))
        .map(|(_, n)| n)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_and_token_clients_get_location_policy_and_content_through_the_gateway(
) -> anyhow::Result<()> {
    let azurite = Azurite::start().await?;
    let dir = tempfile::tempdir()?;
    let mut spec = ClusterSpec::demo(dir.path().join("cluster"));
    spec.gateways = 1;
    spec.connectors = 1;
    spec.site = true;
    let mut cluster = Cluster::start(spec).await?;

    // The content account at the site; the bundle carrying it reaches the instance.
    let set = StorageSet {
        account: azurite::ACCOUNT.into(),
        endpoint: Some(azurite.endpoint()),
        container: azurite::CONTAINER.into(),
        key1: Secret::new(&azurite.keys[0]),
        key2: Secret::new(&azurite.keys[1]),
        rotation_days: None,
    };
    let _: StorageView = cluster
        .site()?
        .admin_send(Method::PUT, "/api/v1/gateways/cmg1/storage", &set)
        .await?;
    let version = cluster.site_settings_version().await?;
    cluster
        .wait_settings(version, patience(Duration::from_secs(20)))
        .await?;
    let blob = pattern(300_000, 11);
    azurite
        .store(0)?
        .put(
            &object_store::path::Path::parse(BLOB)?,
            PutPayload::from(blob.clone()),
        )
        .await?;
    let blob_sha = sha256_hex(&blob);

    let before = requests_2xx(cluster.gateways[0].admin).await?;
    let mut devices = Vec::new();
    for (name, credential) in [
        ("cert-device", DeviceCredential::Certificate),
        ("token-device", DeviceCredential::BulkToken),
    ] {
        let i = cluster
            .add_device(DeviceSpec {
                name: name.into(),
                credential,
                network: DeviceNetwork::AlwaysInternet,
                gateway: 0,
            })
            .await?;
        devices.push((i, credential));
    }

    for (i, credential) in devices {
        let node = &cluster.devices[i];
        let name = node.spec.name.clone();
        let config = cmg_agent::Config::from_file(&node.config)?;
        let mut agent = Agent::open(config, Arc::new(SystemClock))?;

        // Internet without a probe.
        agent.evaluate().await;
        assert_eq!(agent.kind(), ConnectionKind::Internet, "{name}");
        let reason = &agent.state().connection.as_ref().expect("decided").reason;
        assert!(reason.contains("always_internet"), "{name}: {reason}");

        // The token client's device token, from the site through the gateway.
        agent.ensure_token().await?;
        match credential {
            DeviceCredential::BulkToken => {
                let t = agent.state().device_token.as_ref().expect("device token");
                assert!(t.expires_at > t.issued_at, "{name}");
            }
            DeviceCredential::Certificate => {
                assert!(agent.state().device_token.is_none(), "{name}: no token");
            }
        }

        // Location through the gateway: signed by the site, verified by the agent.
        let answer = agent.refresh_location(None).await?;
        assert_eq!(answer.via, Via::Gateway, "{name}");
        // The device as the site saw it: the token's device ID, or the certificate
        // the gateway verified.
        let (auth, client) = match credential {
            DeviceCredential::Certificate => (ClientAuth::Certificate, "client01.corp.example"),
            DeviceCredential::BulkToken => (ClientAuth::Token, name.as_str()),
        };
        assert!(answer.client.contains(client), "{name}: {}", answer.client);
        assert_eq!(answer.auth, auth, "{name}");
        let internet: Vec<String> = agent
            .state()
            .internet
            .candidates
            .iter()
            .map(|t| t.candidate.url.clone())
            .collect();
        let segment = match credential {
            DeviceCredential::Certificate => "CCM_Proxy_MutualAuth",
            DeviceCredential::BulkToken => "CCM_Proxy_ServerAuth",
        };
        assert_eq!(
            internet,
            [format!(
                "https://cmg.demo.test/{segment}/{}",
                cmg_cluster::spec::MP_ROLE_ID
            )],
            "{name}"
        );

        // Policy: the listing, then every body, each hash checked, through the
        // instance and connection point.
        let polled = agent.poll_policy().await?;
        let ids: Vec<&str> = POLICY.iter().map(|(id, _)| *id).collect();
        assert_eq!(polled.downloaded, ids, "{name}");
        assert_eq!(polled.gateway_instance.as_deref(), Some("cmg1-1"), "{name}");
        assert_eq!(polled.connection_point.as_deref(), Some("cp1"), "{name}");
        for (id, body) in POLICY {
            assert_eq!(
                agent.state().policy.held[id].sha256,
                sha256_hex(body.as_bytes()),
                "{name} {id}"
            );
            let file = node.state_dir.join("policy").join(id);
            assert_eq!(std::fs::read(&file)?, body.as_bytes(), "{name} {id}");
        }
        let route = agent.state().policy.last_route.clone().expect("route");
        assert_eq!(route.connection, ConnectionKind::Internet);
        // A second poll: nothing changed, nothing downloaded.
        let again = agent.poll_policy().await?;
        assert!(
            again.downloaded.is_empty() && again.unchanged == ids.len(),
            "{name}"
        );

        // Content: located through the site, downloaded through the gateway.
        let out = dir.path().join(format!("{name}-app.bin"));
        let got = agent.download_content(BLOB, &blob_sha, &out).await?;
        assert_eq!(got.bytes, blob.len() as u64, "{name}");
        assert_eq!(Bytes::from(std::fs::read(&out)?), blob, "{name}");
    }

    // The gateway counted what the agents sent, by endpoint: per device one location
    // request, two listings and two bodies, one content download; one token exchange.
    let after = requests_2xx(cluster.gateways[0].admin).await?;
    let grew = |end: &str| count(&after, end) - count(&before, end);
    assert_eq!(grew("/CCM_Location"), 2 + 2, "{after:?}");
    assert_eq!(grew("/SMS_MP"), 2 * (2 + POLICY.len() as u64), "{after:?}");
    assert_eq!(grew("/CCM_STS"), 1, "{after:?}");
    assert_eq!(grew("content"), 2, "{after:?}");

    // The management point saw the policy requests arrive from the gateway, with the
    // device's kind of authentication.
    let entries = journal::entries(&cluster);
    for auth in ["certificate", "token"] {
        let listings = entries
            .iter()
            .filter(|e| e.path == "/SMS_MP/.sms_pol" && e.query.as_deref() == Some("assignments"))
            .filter(|e| {
                journal::header(e, "cmg-client-auth") == [auth]
                    && !journal::header(e, "cmg-request-id").is_empty()
            })
            .count();
        assert_eq!(listings, 2, "{auth}: {entries:?}");
    }
    cluster.shutdown().await;
    Ok(())
}
