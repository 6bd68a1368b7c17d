//! Building the cluster from the site (`ClusterSpec::site`), as an administrator would
//! with `cmg site`: the gateway is created from the demo PKI's server certificate with
//! the demo root and intermediate as trusted client CAs and revocation checking on, the
//! reference management point is added as a role that allows gateway traffic (so the
//! site generates the URL mappings and published URLs), each instance starts from the
//! deployment package `gateway export` returns, each connection point from the files
//! `connection-point add` writes (`[site_api]` pointing at the site), and the demo's
//! device token is registered through a gateway at the site's token service with a bulk
//! token. The only edits to the generated files are the demo's timings and route
//! headers (see [`tune_gateway_toml`], [`tune_connector_toml`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use cmg_site::files::{connector_files, write_files, ConnectorOptions};
use cmg_site::mappings::{RoleKind, RoleMode};
use cmg_site::model::{
    ConnectionPointAdd, ConnectionPointIssued, ExportPackage, ExportRequest, GatewayCreate,
    GatewayView, RoleCreate, RoleView, StsTokenRequest, TokenIssued, TokenNew,
};
use cmg_site::store::sts::DeviceTokenIssued;
use http::Method;
use http_body_util::Full;

use crate::clients::Cert;
use crate::site::{SiteNode, SITE_REPORT_INTERVAL};
use crate::spec::{token_prefix, ClusterSpec, DEMO_DEVICE, GATEWAY_NAME, MP_ROLE_ID};
use crate::tokens::DemoTokens;
use crate::{step, Cluster, ClusterError};

impl Cluster {
    /// The site, in site mode.
    pub fn site(&self) -> Result<&SiteNode, ClusterError> {
        self.site.as_ref().ok_or_else(|| ClusterError::Step {
            step: "site".into(),
            message: "this cluster runs without a site".into(),
        })
    }

    /// `cmg site gateway create` and `cmg site role add ... --allow-gateway-traffic`.
    pub(crate) async fn site_setup(&self) -> Result<(), ClusterError> {
        let site = self.site()?;
        let pem =
            |p: &Path| std::fs::read_to_string(p).map_err(step(format!("read {}", p.display())));
        let mut gateway = GatewayCreate::new(
            GATEWAY_NAME,
            pem(&self.pki.server_cert)?,
            pem(&self.pki.server_key)?,
        );
        gateway.instances = u32::try_from(self.spec.gateways).map_err(step("instances"))?;
        gateway.trusted_roots_pem = vec![pem(&self.pki.root_ca)?];
        gateway.intermediates_pem = vec![pem(&self.pki.intermediate_ca)?];
        gateway.verify_revocation = true;
        let _: GatewayView = site
            .admin_send(Method::POST, "/api/v1/gateways", &gateway)
            .await?;
        // Enhanced HTTP: the role serves token clients too (CCM_Proxy_ServerAuth URLs).
        let role = RoleCreate {
            role_id: MP_ROLE_ID.to_string(),
            kind: RoleKind::ManagementPoint,
            internal_url: format!("http://{}", self.mp_addr),
            mode: RoleMode::EnhancedHttp,
            allow_gateway_traffic: true,
        };
        let _: RoleView = site
            .admin_send(Method::POST, "/api/v1/roles", &role)
            .await?;
        Ok(())
    }

    /// `cmg site gateway export cmg1 --instance N DIR/gwN` with the given listen
    /// addresses; returns the instance's `gateway.toml`.
    pub(crate) async fn export_instance(
        &self,
        index: usize,
        listen: [SocketAddr; 3],
    ) -> Result<PathBuf, ClusterError> {
        let req = ExportRequest {
            instance: u32::try_from(index).map_err(step("instance"))?,
            client_listen: Some(listen[0].to_string()),
            channel_listen: Some(listen[1].to_string()),
            admin_listen: Some(listen[2].to_string()),
        };
        let package: ExportPackage = self
            .site()?
            .admin_send(
                Method::POST,
                &format!("/api/v1/gateways/{GATEWAY_NAME}/export"),
                &req,
            )
            .await?;
        let dir = self.dir().join(format!("gw{index}"));
        write_files(&dir, &package.files).map_err(step(format!("write {}", dir.display())))?;
        let path = dir.join("gateway.toml");
        let text = std::fs::read_to_string(&path).map_err(step("read exported gateway.toml"))?;
        std::fs::write(&path, tune_gateway_toml(&text, &self.spec))
            .map_err(step("write gateway.toml"))?;
        Ok(path)
    }

    /// `cmg site connection-point add --gateway cmg1 --gateway-addr ... --gateway-ca
    /// root-ca.pem DIR/cpN` for connection point `i` (0-based); returns its
    /// `connector.toml`.
    pub(crate) async fn add_connection_point(&self, i: usize) -> Result<PathBuf, ClusterError> {
        let site = self.site()?;
        let id = format!("cp{}", i + 1);
        let req = ConnectionPointAdd {
            gateway: GATEWAY_NAME.into(),
            id: Some(id.clone()),
        };
        let issued: ConnectionPointIssued = site
            .admin_send(Method::POST, "/api/v1/connection-points", &req)
            .await?;
        let opts = ConnectorOptions {
            gateways: self
                .gateways
                .iter()
                .map(|g| g.channel.to_string())
                .collect(),
            gateway_ca_pem: Some(
                std::fs::read_to_string(&self.pki.root_ca).map_err(step("read root CA"))?,
            ),
            site_url: site.url.clone(),
        };
        let dir = self.dir().join(&id);
        write_files(&dir, &connector_files(&issued, &opts))
            .map_err(step(format!("write {}", dir.display())))?;
        let path = dir.join("connector.toml");
        let text = std::fs::read_to_string(&path).map_err(step("read connector.toml"))?;
        std::fs::write(&path, tune_connector_toml(&text, &self.spec))
            .map_err(step("write connector.toml"))?;
        Ok(path)
    }

    /// The gateway's settings version at the site.
    pub async fn site_settings_version(&self) -> Result<u64, ClusterError> {
        let gateway: GatewayView = self
            .site()?
            .admin_get(&format!("/api/v1/gateways/{GATEWAY_NAME}"))
            .await?;
        Ok(gateway.settings_version)
    }

    /// A device token for [`DEMO_DEVICE`]: a bulk registration token from the site
    /// (`cmg site token new`), exchanged through gateway 0 at the site's token service
    /// (`CCM_Proxy_ServerAuth/<role>/CCM_STS/token`), as a client registers.
    pub(crate) async fn site_device_token(&self) -> Result<DemoTokens, ClusterError> {
        let bulk: TokenIssued = self
            .site()?
            .admin_send(
                Method::POST,
                "/api/v1/tokens",
                &TokenNew {
                    lifetime_minutes: Some(60),
                },
            )
            .await?;
        let client = self.client(0, Cert::None, true)?;
        let body = serde_json::to_vec(&StsTokenRequest {
            device_id: Some(DEMO_DEVICE.into()),
        })
        .map_err(step("token request"))?;
        let req = http::Request::post(format!("{}/token", token_prefix("CCM_STS")))
            .header(
                http::header::AUTHORIZATION,
                format!("Bearer {}", bulk.token),
            )
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(step("token request"))?;
        let resp = client.request(req).await.map_err(step("register device"))?;
        let status = resp.status();
        let body = cmg_client::collect_body(resp)
            .await
            .map_err(step("register device"))?;
        let issued = serde_json::from_slice::<DeviceTokenIssued>(&body);
        match (status.is_success(), issued) {
            (true, Ok(issued)) => Ok(DemoTokens {
                signing_key: None,
                public_key: self.dir().join("gw1").join("site-keys.pem"),
                device_token: issued.token,
                device_token_id: issued.tracking_id,
            }),
            _ => Err(ClusterError::Step {
                step: "register device through the gateway".into(),
                message: format!("{status}: {}", String::from_utf8_lossy(&body)),
            }),
        }
    }
}

/// The exported `gateway.toml` with the demo's additions: route headers (answers name
/// the instance and connection point), a CRL disk cache, the demo's channel PINGs and
/// traffic report interval, then `spec.gateway_extra`.
pub fn tune_gateway_toml(text: &str, spec: &ClusterSpec) -> String {
    let ping = spec.ping.as_millis();
    let mut s = format!("route_headers = {}\n", spec.route_headers);
    s.push_str(
        &text
            .replacen(
                "\n[client_auth]\n",
                "\n[client_auth]\ncrl_cache_dir = \"crl-cache\"\n",
                1,
            )
            .replacen(
                "\n[channel]\n",
                &format!(
                    "\n[channel]\nping_interval = \"{ping}ms\"\nping_timeout = \"{ping}ms\"\n"
                ),
                1,
            ),
    );
    s.push_str(&format!(
        "\n[reports]\ninterval = \"{}ms\"\n",
        spec.report_interval.as_millis()
    ));
    s.push_str(&spec.gateway_extra);
    s
}

/// The generated `connector.toml` with the demo's timings: `[site_api]` (its last
/// section) gets a short report interval and backoff, and a `[timing]` section the
/// demo's PINGs and redial backoff.
pub fn tune_connector_toml(text: &str, spec: &ClusterSpec) -> String {
    let ping = spec.ping.as_millis();
    format!(
        "{text}report_interval = \"{}ms\"\nbackoff_base = \"100ms\"\nbackoff_max = \"2s\"\n\n\
         [timing]\nping_interval = \"{ping}ms\"\nping_timeout = \"{ping}ms\"\n\
         backoff_base = \"100ms\"\nbackoff_max = \"2s\"\n",
        SITE_REPORT_INTERVAL.as_millis()
    )
}
