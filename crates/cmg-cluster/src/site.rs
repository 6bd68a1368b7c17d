//! The site in the cluster: `cmg site` serving its API on loopback, on a runtime of its
//! own like every other role, over an SQLite database in the cluster directory
//! (`site/site.db`), with a generated master key (`site/master.key`) and admin token
//! (`site/admin.token`), both mode 0600, as `cmg site init` writes them. The cluster is
//! then built through the site's REST admin API with that token, the calls the `cmg
//! site` commands make ([`SiteNode::admin`]); see `deploy.rs`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cmg_proto::SiteCode;
use cmg_site::client::{Reply, SiteClient};
use cmg_site::store::InitParams;
use cmg_site::{server, Actor, MasterKey, Secret, Store};
use http::Method;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::oneshot;

use crate::role::RoleRuntime;
use crate::{step, ClusterError};

/// How often connection points report to the demo site, and so how soon its status and
/// traffic views follow the demo (the product default is 5 minutes).
pub const SITE_REPORT_INTERVAL: Duration = Duration::from_secs(1);

/// The running site.
#[derive(Debug)]
pub struct SiteNode {
    /// `https://127.0.0.1:P`: the REST admin and publishing API.
    pub url: String,
    pub addr: SocketAddr,
    /// The site's directory: `site.db`, `master.key`, `admin.token`, `site-ca.pem`.
    pub dir: PathBuf,
    /// The site CA (PEM file): trust it for the API.
    pub ca_file: PathBuf,
    /// The admin token's file (what `cmg site` reads, `--admin-token-file`).
    pub admin_token_file: PathBuf,
    /// An admin client of the API, with the token.
    client: SiteClient,
    runtime: Option<RoleRuntime>,
}

/// What the site's runtime hands back once it listens.
struct Started {
    addr: SocketAddr,
    ca_pem: String,
}

impl SiteNode {
    /// Creates a fresh site in `dir` (any earlier one there is removed: the demo PKI is
    /// new on every start too) and serves its API on an ephemeral loopback port.
    pub async fn start(dir: &Path, site: &SiteCode) -> Result<Self, ClusterError> {
        if dir.exists() {
            std::fs::remove_dir_all(dir).map_err(step(format!("remove {}", dir.display())))?;
        }
        std::fs::create_dir_all(dir).map_err(step(format!("create {}", dir.display())))?;
        let (key, key_text) = MasterKey::generate().map_err(step("site master key"))?;
        write_secret(&dir.join("master.key"), key_text.expose())?;
        // 32 random bytes in hex, as `cmg site init` makes one.
        let (_, token) = MasterKey::generate().map_err(step("site admin token"))?;
        let admin_token_file = dir.join("admin.token");
        write_secret(&admin_token_file, token.expose())?;

        let url = cmg_site::db::sqlite_url(&dir.join("site.db"));
        let mut config = server::Config::new(
            "127.0.0.1:0".parse().expect("literal address"),
            Secret::new(token.expose()),
        );
        config.report_interval = SITE_REPORT_INTERVAL;
        let params = InitParams {
            site_code: site.clone(),
            api_names: vec!["127.0.0.1".into(), "localhost".into()],
        };
        let (tx, rx) = oneshot::channel::<Result<Started, String>>();
        // The store is opened on the site's own runtime, which then serves until stopped.
        let runtime = RoleRuntime::start("site", 2, move |sd| async move {
            let bound = async {
                let store = Store::open(&url, key).await.map_err(|e| e.to_string())?;
                let site = store
                    .init(&params, &Actor::new("cmg-demo"))
                    .await
                    .map_err(|e| e.to_string())?;
                let bound = server::bind(store.clone(), config.clone())
                    .await
                    .map_err(|e| e.to_string())?;
                let addr = bound.local_addr().map_err(|e| e.to_string())?;
                Ok::<_, String>((store, bound, addr, site.ca_pem))
            }
            .await;
            match bound {
                Ok((store, bound, addr, ca_pem)) => {
                    let _ = tx.send(Ok(Started { addr, ca_pem }));
                    bound.run(sd.clone()).await;
                    let _ = sd.drain(Duration::from_secs(5)).await;
                    store.close().await;
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            }
        })
        .map_err(step("site runtime"))?;
        let started = rx
            .await
            .map_err(step("site runtime ended"))?
            .map_err(step("start the site"))?;
        let ca_file = dir.join("site-ca.pem");
        std::fs::write(&ca_file, &started.ca_pem).map_err(step("write site-ca.pem"))?;
        let url = format!("https://{}", started.addr);
        let client = SiteClient::new(&url, &started.ca_pem, Some(token), None)
            .map_err(step("site API client"))?
            .with_admin_name("cmg-demo");
        Ok(Self {
            url,
            addr: started.addr,
            dir: dir.to_owned(),
            ca_file,
            admin_token_file,
            client,
            runtime: Some(runtime),
        })
    }

    /// One admin API call; a non-2xx answer is an error naming the call and the site's
    /// error code and message.
    pub async fn admin(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, ClusterError> {
        let what = format!("{method} {path}");
        let reply = self
            .client
            .call(method, path, body.as_ref())
            .await
            .map_err(step(&what))?;
        Ok(if answer(&what, &reply)?.body.is_empty() {
            Value::Null
        } else {
            reply.json()
        })
    }

    /// An admin call with a request type of `cmg_site::model` as its body (the type the
    /// site's handler reads), its answer read as the view type `R`.
    pub async fn admin_send<B: Serialize, R: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &B,
    ) -> Result<R, ClusterError> {
        let what = format!("{method} {path}");
        let reply = self
            .client
            .send(method, path, body)
            .await
            .map_err(step(&what))?;
        answer(&what, &reply)?.parse().map_err(step(&what))
    }

    /// An admin `GET`, its answer read as the view type `R`.
    pub async fn admin_get<R: DeserializeOwned>(&self, path: &str) -> Result<R, ClusterError> {
        let what = format!("GET {path}");
        let reply = self
            .client
            .call(Method::GET, path, None)
            .await
            .map_err(step(&what))?;
        answer(&what, &reply)?.parse().map_err(step(&what))
    }

    /// Stops the site gracefully (its long polls end, the database is closed).
    pub async fn stop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.stop().await;
        }
    }
}

/// The reply when it is a success; else an error naming the call, with the status and
/// the site's answer.
fn answer<'a>(what: &str, reply: &'a Reply) -> Result<&'a Reply, ClusterError> {
    if reply.status.is_success() {
        return Ok(reply);
    }
    Err(ClusterError::Step {
        step: what.to_owned(),
        message: format!("{}: {}", reply.status, reply.text()),
    })
}

fn write_secret(path: &Path, text: &str) -> Result<(), ClusterError> {
    cmg_core::private_file::write(path, text.as_bytes())
        .map_err(step(format!("write {}", path.display())))
}
