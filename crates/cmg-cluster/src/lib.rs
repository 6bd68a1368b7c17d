//! The whole cmg system on loopback: demo PKI, reference management point, N gateway
//! instances and M connection points, each on its own runtime, each started from a
//! config file in the cluster's directory. With [`ClusterSpec::site`] a site runs too
//! and builds everything ([`site`], [`deploy`]): the config files are its exports.
//! Without it the cluster writes them itself and publishes settings from a bundle file.
//! `cmg demo` runs one with a site; the end-to-end tests run one per test (without) and
//! stop, kill and restart its roles.

pub mod clients;
pub mod contract;
pub mod deploy;
pub mod devices;
pub mod layout;
pub mod publish;
pub mod role;
pub mod site;
pub mod spec;
pub mod tokens;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cmg_connector::ConnectorStatus;
use cmg_gateway::ChannelRegistry;
use cmg_pki::demo::{DemoPki, DemoPkiPaths, DemoPkiSpec};
use cmg_pki::revocation::publish::CrlServer;
use cmg_proto::{ConnectorId, SiteCode};
use tokio::sync::watch;

pub use contract::DemoContract;
use role::RoleRuntime;
pub use site::SiteNode;
pub use spec::ClusterSpec;
pub use tokens::DemoTokens;

/// A step of starting or changing the cluster failed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("{step}: {message}")]
    Step { step: String, message: String },
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout { what: String, after: Duration },
}

fn step<E: std::fmt::Display>(step: impl Into<String>) -> impl FnOnce(E) -> ClusterError {
    let step = step.into();
    move |e| ClusterError::Step {
        step,
        message: e.to_string(),
    }
}

/// A running gateway instance.
#[derive(Debug)]
pub struct GatewayNode {
    pub name: String,
    pub config: PathBuf,
    pub client: SocketAddr,
    pub channel: SocketAddr,
    pub admin: SocketAddr,
    pub registry: Arc<ChannelRegistry>,
    settings: tokio::sync::watch::Receiver<u64>,
    runtime: Option<RoleRuntime>,
}

impl GatewayNode {
    /// Whether the instance runs (not killed or stopped).
    pub fn is_running(&self) -> bool {
        self.runtime.is_some()
    }
    /// The settings bundle version in force (0: config file only).
    pub fn settings_version(&self) -> u64 {
        *self.settings.borrow()
    }
    /// Follows the settings bundle version in force.
    pub fn watch_settings(&self) -> tokio::sync::watch::Receiver<u64> {
        self.settings.clone()
    }
}

/// A running (or stopped) connection point.
#[derive(Debug)]
pub struct ConnectorNode {
    pub id: ConnectorId,
    pub config: PathBuf,
    pub status: Option<watch::Receiver<ConnectorStatus>>,
    runtime: Option<RoleRuntime>,
}

/// The running system.
#[derive(Debug)]
pub struct Cluster {
    pub spec: ClusterSpec,
    pub pki: DemoPkiPaths,
    /// The site token key and the demo's device token.
    pub tokens: DemoTokens,
    pub mp_addr: SocketAddr,
    pub mp_journal: PathBuf,
    pub gateways: Vec<GatewayNode>,
    pub connectors: Vec<ConnectorNode>,
    _mp: RoleRuntime,
    /// Publishes the demo CRLs on loopback (the certificates' distribution point).
    pub crl_server: CrlServer,
    /// The site, when the cluster is built from one.
    pub site: Option<SiteNode>,
    /// Enrolled devices (`cmg client` agents; with a site only).
    pub devices: Vec<devices::DeviceNode>,
}

const ANY: &str = "127.0.0.1:0";

impl Cluster {
    /// Generates the PKI, writes every config file, starts every role and waits until
    /// every connection point has a channel to every gateway.
    pub async fn start(spec: ClusterSpec) -> Result<Self, ClusterError> {
        let dir = &spec.dir;
        std::fs::create_dir_all(dir).map_err(step(format!("create {}", dir.display())))?;
        let dir = dir.canonicalize().map_err(step("canonicalize dir"))?;
        let site = SiteCode::new(spec::SITE).map_err(step("site code"))?;
        let ids = (1..=spec.connectors)
            .map(|i| ConnectorId::new(format!("cp{i}")).map_err(step("connector id")))
            .collect::<Result<Vec<_>, _>>()?;
        // The CRL distribution point comes first: its URL goes into the certificates.
        let crl_server = CrlServer::start(ANY.parse().expect("literal address"))
            .await
            .map_err(step("start the CRL server"))?;
        let demo_pki = DemoPki::generate(&DemoPkiSpec {
            service_name: spec::SERVICE_NAME.into(),
            site: site.clone(),
            // With a site, the site CA issues the connection points' certificates.
            connectors: if spec.site { Vec::new() } else { ids.clone() },
            crl_url: Some(format!("{}/crl", crl_server.base_url())),
        })
        .map_err(step("generate demo PKI"))?;
        let (intermediate_crl, root_crl) = demo_pki.crls_der();
        crl_server.set("crl/intermediate.crl", intermediate_crl.to_vec());
        crl_server.set("crl/root.crl", root_crl.to_vec());
        let pki = demo_pki
            .write(&dir.join("pki"))
            .map_err(step("write demo PKI"))?;
        let tokens = if spec.site {
            // Filled in once a gateway can carry the device's registration.
            DemoTokens {
                signing_key: None,
                public_key: PathBuf::new(),
                device_token: String::new(),
                device_token_id: String::new(),
            }
        } else {
            DemoTokens::generate(&dir.join("pki")).map_err(step("site token key"))?
        };

        // The management point, with the demo's policy.
        layout::write_policy(&dir).map_err(step("write the demo policy"))?;
        let mp_path =
            layout::write(&dir, "mp.toml", &layout::mp(&dir)).map_err(step("write mp.toml"))?;
        let mp_config = cmg_mp::Config::from_file(&mp_path).map_err(step("mp.toml"))?;
        let (mp, mp_addr, mp_journal) = start_mp(mp_config).await?;
        let site_node = if spec.site {
            Some(SiteNode::start(&dir.join("site"), &site).await?)
        } else {
            None
        };

        let mut cluster = Cluster {
            spec: ClusterSpec {
                dir: dir.clone(),
                ..spec
            },
            pki,
            tokens,
            mp_addr,
            mp_journal,
            gateways: Vec::new(),
            connectors: Vec::new(),
            _mp: mp,
            crl_server,
            site: site_node,
            devices: Vec::new(),
        };
        if cluster.site.is_some() {
            cluster.site_setup().await?;
        }
        let any: SocketAddr = ANY.parse().expect("literal address");
        for i in 1..=cluster.spec.gateways {
            let node = cluster.start_gateway_at(i, [any, any, any]).await?;
            cluster.gateways.push(node);
        }
        if cluster.site.is_none() {
            // The first settings bundle: what the config files say, version 1.
            cluster.publish(&cluster.base_bundle(1)?)?;
        }
        for (i, id) in ids.into_iter().enumerate() {
            let config = if cluster.site.is_some() {
                cluster.add_connection_point(i).await?
            } else {
                cluster.write_connector_config(i)?
            };
            cluster.connectors.push(ConnectorNode {
                id,
                config,
                status: None,
                runtime: None,
            });
            cluster.start_connector(i).await?;
        }
        cluster.wait_all_channels(Duration::from_secs(20)).await?;
        if cluster.site.is_some() {
            let version = cluster.site_settings_version().await?;
            cluster
                .wait_settings(version, Duration::from_secs(20))
                .await?;
            cluster.tokens = cluster.site_device_token().await?;
        } else {
            cluster.wait_settings(1, Duration::from_secs(20)).await?;
        }
        Ok(cluster)
    }

    /// The cluster directory (every file the cluster, the site and the roles write).
    pub fn dir(&self) -> &Path {
        &self.spec.dir
    }

    /// Starts instance `index` (1-based) from its config file: the site's export in
    /// site mode, else `gwN.toml` written here.
    async fn start_gateway_at(
        &self,
        index: usize,
        listen: [SocketAddr; 3],
    ) -> Result<GatewayNode, ClusterError> {
        let path = if self.site.is_some() {
            self.export_instance(index, listen).await?
        } else {
            let name = format!("gw{index}");
            let last_good = self.dir().join(format!("{name}-settings.jws"));
            // The instance's own key pair, as a site export makes one (kept across a
            // restart: bundles already published are sealed to it).
            let instance_key = publish::instance_key_file(self.dir(), &name);
            if !instance_key.exists() {
                let (_, text) = cmg_token::InstanceKey::generate();
                cmg_core::private_file::write(&instance_key, text.as_bytes())
                    .map_err(step(format!("write {}", instance_key.display())))?;
            }
            let mut text = layout::gateway(
                &name,
                &self.pki,
                &self.tokens,
                [&last_good, &instance_key],
                listen,
                &self.spec,
            );
            text.push_str(&self.spec.gateway_extra);
            layout::write(self.dir(), &format!("{name}.toml"), &text)
                .map_err(step(format!("write {name}.toml")))?
        };
        let mut config =
            cmg_gateway::Config::from_file(&path).map_err(step(format!("{}", path.display())))?;
        config.threads = self.spec.gateway_threads.max(1);
        let name = config.instance.clone();
        let bound = cmg_gateway::bind(config)
            .await
            .map_err(step(format!("start gateway {name}")))?;
        let (client, channel, admin) = (
            bound.client_addr(),
            bound
                .channel_addr()
                .expect("demo gateways have a channel listener"),
            bound
                .admin_addr()
                .expect("demo gateways have an admin listener"),
        );
        let registry = bound.registry();
        let settings = bound.settings_version();
        // The data path runs on the gateway's own threads; this runtime runs the TLS
        // handshakes and the control tasks.
        let runtime = RoleRuntime::start(&name, self.spec.gateway_threads, move |sd| bound.run(sd))
            .map_err(step(format!("runtime for {name}")))?;
        Ok(GatewayNode {
            name: name.to_string(),
            config: path,
            client,
            channel,
            admin,
            registry,
            settings,
            runtime: Some(runtime),
        })
    }

    fn write_connector_config(&self, i: usize) -> Result<PathBuf, ClusterError> {
        let channels: Vec<SocketAddr> = self.gateways.iter().map(|g| g.channel).collect();
        let text = layout::connector(
            &self.pki,
            i,
            &channels,
            self.mp_addr,
            self.spec.ping,
            &publish::bundle_file(self.dir()),
        );
        let name = format!("cp{}.toml", i + 1);
        layout::write(self.dir(), &name, &text).map_err(step(format!("write {name}")))
    }

    /// Starts (or restarts) connection point `i` from its config file.
    pub async fn start_connector(&mut self, i: usize) -> Result<(), ClusterError> {
        let node = &mut self.connectors[i];
        let mut config = cmg_connector::Config::from_file(&node.config)
            .map_err(step(format!("{}", node.config.display())))?;
        config.threads = self.spec.connector_threads.max(1);
        let bound = cmg_connector::bind(config)
            .await
            .map_err(step(format!("start connection point {}", node.id)))?;
        node.status = Some(bound.status());
        let runtime = RoleRuntime::start(node.id.as_str(), 1, move |sd| bound.run(sd))
            .map_err(step("connector runtime"))?;
        node.runtime = Some(runtime);
        Ok(())
    }

    /// Kills connection point `i` as a crash would: sockets closed, nothing drained.
    pub fn kill_connector(&mut self, i: usize) {
        if let Some(rt) = self.connectors[i].runtime.take() {
            rt.kill();
        }
    }

    /// Stops connection point `i` gracefully.
    pub async fn stop_connector(&mut self, i: usize) {
        if let Some(rt) = self.connectors[i].runtime.take() {
            rt.stop().await;
        }
    }

    /// Kills gateway `i` (sockets closed at once).
    pub fn kill_gateway(&mut self, i: usize) {
        if let Some(rt) = self.gateways[i].runtime.take() {
            rt.kill();
        }
    }

    /// Stops gateway `i` gracefully.
    pub async fn stop_gateway(&mut self, i: usize) {
        if let Some(rt) = self.gateways[i].runtime.take() {
            rt.stop().await;
        }
    }

    /// Starts gateway `i` again on the same addresses.
    pub async fn restart_gateway(&mut self, i: usize) -> Result<(), ClusterError> {
        let g = &self.gateways[i];
        let listen = [g.client, g.channel, g.admin];
        // The old listener may take a moment to be released by the old runtime.
        let mut last = None;
        for _ in 0..50 {
            match self.start_gateway_at(i + 1, listen).await {
                Ok(node) => {
                    self.gateways[i] = node;
                    return Ok(());
                }
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(last.expect("at least one attempt"))
    }

    /// Waits until every running connection point has a channel to every gateway and
    /// every gateway registered every running connection point.
    pub async fn wait_all_channels(&self, timeout: Duration) -> Result<(), ClusterError> {
        let running = self
            .connectors
            .iter()
            .filter(|c| c.runtime.is_some())
            .count();
        let want = running * self.gateways.len();
        let wait = async {
            for g in &self.gateways {
                let mut rx = g.registry.subscribe();
                rx.wait_for(|n| *n >= running)
                    .await
                    .map_err(step("registry closed"))?;
            }
            for c in self.connectors.iter().filter(|c| c.runtime.is_some()) {
                if let Some(status) = &c.status {
                    let mut rx = status.clone();
                    rx.wait_for(|s| s.all_up())
                        .await
                        .map_err(step("status closed"))?;
                }
            }
            Ok::<_, ClusterError>(())
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| ClusterError::Timeout {
                what: format!("{want} channels"),
                after: timeout,
            })?
    }

    /// The `demo.json` contract of this cluster.
    pub fn contract(&self) -> DemoContract {
        use contract::{ContractPki, GatewayAddrs};
        let mut urls = std::collections::BTreeMap::new();
        let mut max_body = std::collections::BTreeMap::new();
        for (key, segment, max) in spec::ENDPOINTS {
            urls.insert(key.to_string(), spec::external_prefix(segment));
            max_body.insert(key.to_string(), max);
        }
        for (key, segment, max) in spec::TOKEN_ENDPOINTS {
            urls.insert(key.to_string(), spec::token_prefix(segment));
            max_body.insert(key.to_string(), max);
        }
        DemoContract {
            service_name: spec::SERVICE_NAME.to_string(),
            gateways: self
                .gateways
                .iter()
                .map(|g| GatewayAddrs {
                    client: g.client.to_string(),
                    channel: g.channel.to_string(),
                    admin: g.admin.to_string(),
                })
                .collect(),
            mp_role_id: spec::MP_ROLE_ID.to_string(),
            urls,
            max_body,
            mp_journal: self.mp_journal.clone(),
            mp_direct: self.mp_addr.to_string(),
            pki: ContractPki {
                server_ca: self.pki.root_ca.clone(),
                client_cert: self.pki.client_cert.clone(),
                client_key: self.pki.client_key.clone(),
                untrusted_client_cert: self.pki.untrusted_client_cert.clone(),
                untrusted_client_key: self.pki.untrusted_client_key.clone(),
                expired_client_cert: self.pki.expired_client_cert.clone(),
                expired_client_key: self.pki.expired_client_key.clone(),
                revoked_client_cert: self.pki.revoked_client_cert.clone(),
                revoked_client_key: self.pki.revoked_client_key.clone(),
            },
            token: self.tokens.device_token.clone(),
            site: self.site.as_ref().map(|s| contract::ContractSite {
                api_url: s.url.clone(),
                ca: s.ca_file.clone(),
                admin_token_file: s.admin_token_file.clone(),
                database: s.dir.join("site.db"),
                gateway: spec::GATEWAY_NAME.to_string(),
            }),
            clients: self.devices.iter().map(|d| d.contract()).collect(),
        }
    }

    /// Writes `demo.json` into the cluster directory.
    pub fn write_contract(&self) -> Result<PathBuf, ClusterError> {
        let text =
            serde_json::to_string_pretty(&self.contract()).map_err(step("encode demo.json"))?;
        // It names the device token: owner only, as every file holding a secret.
        let path = self.dir().join("demo.json");
        cmg_core::private_file::write(&path, text.as_bytes()).map_err(step("write demo.json"))?;
        Ok(path)
    }

    /// Stops every role gracefully: devices, connection points, then gateways, then
    /// the site.
    pub async fn shutdown(mut self) {
        for i in 0..self.devices.len() {
            self.stop_device(i).await;
        }
        for i in 0..self.connectors.len() {
            self.stop_connector(i).await;
        }
        for i in 0..self.gateways.len() {
            self.stop_gateway(i).await;
        }
        if let Some(site) = &mut self.site {
            site.stop().await;
        }
    }
}

async fn start_mp(
    config: cmg_mp::Config,
) -> Result<(RoleRuntime, SocketAddr, PathBuf), ClusterError> {
    let bound = cmg_mp::bind(config)
        .await
        .map_err(step("start management point"))?;
    let addr = bound.local_addr();
    let journal = bound.journal_path();
    let rt = RoleRuntime::start("mp", 1, move |sd| bound.run(sd)).map_err(step("mp runtime"))?;
    Ok((rt, addr, journal))
}
