//! Devices of a cluster with a site: `cmg client` agents (`cmg-agent`), each with its
//! own `client.toml` and state directory under `clients/<name>/`, each on a runtime of
//! its own like every other role. A device is enrolled as an administrator enrols one:
//! the site's public keys in force (`cmg site client trust`), the demo root and the
//! site CA as trusted roots, the demo client certificate or a bulk registration token
//! from the site (`cmg site token new`), and the gateway's service name resolved to one
//! instance (the name is in no DNS). Its intranet is the real management point and
//! site, an address that refuses connections (the intranet unreachable), or ignored
//! (`always_internet`).
//!
//! It does not cut a running client's route (the namespace test does) or check what a
//! client did: the demo's checks and the tests read its state.

use std::path::PathBuf;
use std::time::Duration;

use cmg_agent::{Agent, ConnectionKind, Progress, State, SystemClock};
use cmg_site::model::{KeyView, TokenIssued, TokenNew};
use http::Method;
use tokio::sync::watch;

use crate::contract::ContractClient;
use crate::layout::q;
use crate::role::RoleRuntime;
use crate::spec::{MP_ROLE_ID, SERVICE_NAME, SITE};
use crate::{step, Cluster, ClusterError};

/// An intranet address that refuses connections: nothing listens on TCP port 1 of the
/// loopback (tcpmux, unassigned in practice), so the probe fails at once.
pub const UNREACHABLE_INTRANET: &str = "http://127.0.0.1:1";

/// How a device proves who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceCredential {
    /// The demo client certificate (`CCM_Proxy_MutualAuth`).
    Certificate,
    /// A bulk registration token from the site, traded for a device token
    /// (`CCM_Proxy_ServerAuth`).
    BulkToken,
}

/// Where a device is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceNetwork {
    /// It reaches the management point and the site directly.
    Intranet,
    /// Its intranet management point and site refuse connections.
    IntranetUnreachable,
    /// `always_internet = true` (the intranet would answer).
    AlwaysInternet,
}

/// One device to enrol.
#[derive(Debug, Clone)]
pub struct DeviceSpec {
    pub name: String,
    pub credential: DeviceCredential,
    pub network: DeviceNetwork,
    /// The gateway instance (index) the service name resolves to.
    pub gateway: usize,
}

impl DeviceSpec {
    /// The connection type the device must end up with.
    pub fn expect(&self) -> ConnectionKind {
        match self.network {
            DeviceNetwork::Intranet => ConnectionKind::Intranet,
            _ => ConnectionKind::Internet,
        }
    }

    /// `cmg demo`'s devices: a certificate client on the intranet, one whose intranet
    /// is unreachable (sent to the last instance), and a token client with
    /// `always_internet` (sent to the first).
    pub fn demo(gateways: usize) -> Vec<DeviceSpec> {
        vec![
            DeviceSpec {
                name: "laptop-intranet".into(),
                credential: DeviceCredential::Certificate,
                network: DeviceNetwork::Intranet,
                gateway: 0,
            },
            DeviceSpec {
                name: "laptop-internet".into(),
                credential: DeviceCredential::Certificate,
                network: DeviceNetwork::IntranetUnreachable,
                gateway: gateways.saturating_sub(1),
            },
            DeviceSpec {
                name: "tablet-token".into(),
                credential: DeviceCredential::BulkToken,
                network: DeviceNetwork::AlwaysInternet,
                gateway: 0,
            },
        ]
    }
}

/// An enrolled device, running or not.
#[derive(Debug)]
pub struct DeviceNode {
    pub spec: DeviceSpec,
    pub config: PathBuf,
    pub state_dir: PathBuf,
    /// The run loop's progress while it runs.
    pub progress: Option<watch::Receiver<Progress>>,
    runtime: Option<RoleRuntime>,
}

impl DeviceNode {
    pub fn contract(&self) -> ContractClient {
        ContractClient {
            name: self.spec.name.clone(),
            config: self.config.clone(),
            state_dir: self.state_dir.clone(),
            expect: self.spec.expect(),
        }
    }

    /// Its state file as it is now (`None` before the first save).
    pub fn state(&self) -> Result<Option<State>, ClusterError> {
        State::load(&self.state_dir, SITE).map_err(step(format!("{} state", self.spec.name)))
    }
}

impl Cluster {
    /// Enrols `spec`: writes its `client.toml` (and bulk token) under
    /// `clients/<name>/`; started later by [`Cluster::start_device`].
    pub async fn add_device(&mut self, spec: DeviceSpec) -> Result<usize, ClusterError> {
        let site = self.site()?;
        let dir = self.dir().join("clients");
        let own = dir.join(&spec.name);
        std::fs::create_dir_all(&own).map_err(step(format!("create {}", own.display())))?;
        // `cmg site client trust`: every key in force.
        let keys: Vec<KeyView> = site.admin_get("/api/v1/keys").await?;
        let now = cmg_site::now();
        let pem: String = keys
            .iter()
            .filter(|k| k.state == "active" || k.retire_at.is_some_and(|t| t > now))
            .map(|k| k.public_pem.clone())
            .collect();
        let site_keys = dir.join("site-keys.pem");
        std::fs::write(&site_keys, pem).map_err(step("write site-keys.pem"))?;
        let credential = match spec.credential {
            DeviceCredential::Certificate => format!(
                "certificate = {}\nkey = {}\n",
                q(&self.pki.client_cert),
                q(&self.pki.client_key)
            ),
            DeviceCredential::BulkToken => {
                let bulk: TokenIssued = site
                    .admin_send(
                        Method::POST,
                        "/api/v1/tokens",
                        &TokenNew {
                            lifetime_minutes: Some(60),
                        },
                    )
                    .await?;
                let file = own.join("bulk.token");
                cmg_core::private_file::write(&file, bulk.token.as_bytes())
                    .map_err(step(format!("write {}", file.display())))?;
                format!("bulk_token_file = {}\n", q(&file))
            }
        };
        let (intranet_mp, site_url) = match spec.network {
            DeviceNetwork::IntranetUnreachable => (
                UNREACHABLE_INTRANET.to_owned(),
                UNREACHABLE_INTRANET.to_owned(),
            ),
            _ => (format!("http://{}", self.mp_addr), site.url.clone()),
        };
        let gateway = self
            .gateways
            .get(spec.gateway)
            .ok_or_else(|| ClusterError::Step {
                step: format!("device {}", spec.name),
                message: format!("no gateway instance {}", spec.gateway),
            })?;
        let state_dir = own.join("state");
        let text = format!(
            "# {name}: a device enrolled by the demo (cmg client status --config <this file>).\n\
             site = \"{SITE}\"\nintranet_mp = \"{intranet_mp}\"\nsite_url = \"{site_url}\"\n\
             bootstrap_gateways = [\"{SERVICE_NAME}/CCM_Proxy_MutualAuth/{MP_ROLE_ID}\"]\n\
             always_internet = {always}\nstate_dir = {state}\nsite_keys = {keys}\n\
             trusted_roots = [{root}, {site_ca}]\ndevice_id = \"{name}\"\n\n\
             [credential]\n{credential}\n\
             [resolve]\n\"{SERVICE_NAME}\" = \"{addr}\"\n\n\
             [timing]\nretry_after = \"1s\"\nrequest_timeout = \"10s\"\n",
            name = spec.name,
            always = spec.network == DeviceNetwork::AlwaysInternet,
            state = q(&state_dir),
            keys = q(&site_keys),
            root = q(&self.pki.root_ca),
            site_ca = q(&site.ca_file),
            addr = gateway.client,
        );
        let config = own.join("client.toml");
        std::fs::write(&config, text).map_err(step(format!("write {}", config.display())))?;
        self.devices.push(DeviceNode {
            spec,
            config,
            state_dir,
            progress: None,
            runtime: None,
        });
        Ok(self.devices.len() - 1)
    }

    /// Starts device `i`'s agent (`cmg client run`) on a runtime of its own.
    pub fn start_device(&mut self, i: usize) -> Result<(), ClusterError> {
        let node = &mut self.devices[i];
        let config = cmg_agent::Config::from_file(&node.config)
            .map_err(step(format!("{}", node.config.display())))?;
        let agent = Agent::open(config, std::sync::Arc::new(SystemClock))
            .map_err(step(format!("client {}", node.spec.name)))?;
        let (tx, rx) = watch::channel(Progress::default());
        let runtime = RoleRuntime::start(&node.spec.name, 1, move |sd| agent.run(sd, tx))
            .map_err(step("client runtime"))?;
        node.progress = Some(rx);
        node.runtime = Some(runtime);
        Ok(())
    }

    /// Waits until every running device has polled policy at least once.
    pub async fn wait_devices_polled(&self, timeout: Duration) -> Result<(), ClusterError> {
        let wait = async {
            for d in &self.devices {
                if let Some(rx) = &d.progress {
                    let mut rx = rx.clone();
                    rx.wait_for(|p| p.polls >= 1)
                        .await
                        .map_err(step(format!("client {} stopped", d.spec.name)))?;
                }
            }
            Ok::<_, ClusterError>(())
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| ClusterError::Timeout {
                what: "every client's first policy poll".into(),
                after: timeout,
            })?
    }

    /// Stops device `i` gracefully (its state saved).
    pub async fn stop_device(&mut self, i: usize) {
        if let Some(rt) = self.devices[i].runtime.take() {
            rt.stop().await;
        }
        self.devices[i].progress = None;
    }
}
