//! `cmg site ...`: the site (control plane).
//!
//! `init` and `serve` work on the database directly (they own it). Every other command
//! is a client of the running site's REST API (`--url`, the site CA from `--ca-file`, the
//! admin token from `--admin-token-file` or `CMG_SITE_ADMIN_TOKEN`), so changes go
//! through one place, are audited and wake the connection points' long polls.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};
use cmg_core::Shutdown;
use cmg_proto::SiteCode;
use cmg_site::client::SiteClient;
use cmg_site::files::{connector_files, write_files, ConnectorOptions};
use cmg_site::model::{ConnectionPointIssued, ExportPackage};
use cmg_site::store::InitParams;
use cmg_site::{server, Actor, MasterKey, Secret, Store};
use http::Method;
use serde_json::{json, Value};

use crate::{logging, signal};

mod reports;
mod storage;

const ADMIN_TOKEN_ENV: &str = "CMG_SITE_ADMIN_TOKEN";

#[derive(Debug, Args)]
pub struct SiteArgs {
    /// The site's directory: SQLite database, master key, admin token, site CA
    /// (defaults for the options below).
    #[arg(long, env = "CMG_SITE_DIR", default_value = "cmg-site", global = true)]
    dir: PathBuf,
    #[command(subcommand)]
    command: SiteCommand,
}

/// Where the database is and how to open its secrets.
#[derive(Debug, Args)]
struct DbArgs {
    /// `sqlite://FILE` or `postgres://USER:PASSWORD@HOST/DB` (default: SQLite file
    /// DIR/site.db).
    #[arg(long, env = "CMG_SITE_DATABASE_URL")]
    database_url: Option<String>,
    /// File with the master key (64 hex digits or base64 of 32 bytes). Default:
    /// CMG_SITE_MASTER_KEY if set, else DIR/master.key.
    #[arg(long)]
    master_key_file: Option<PathBuf>,
}

/// How admin commands reach the site API.
#[derive(Debug, Args)]
struct ApiArgs {
    /// The site API.
    #[arg(
        long,
        env = "CMG_SITE_URL",
        default_value = "https://localhost:8443",
        global = true
    )]
    url: String,
    /// The site CA certificate the API's certificate chains to (default DIR/site-ca.pem).
    #[arg(long, global = true)]
    ca_file: Option<PathBuf>,
    /// File with the admin token (default: CMG_SITE_ADMIN_TOKEN if set, else
    /// DIR/admin.token).
    #[arg(long, global = true)]
    admin_token_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum SiteCommand {
    /// Create the site (database, site code, GUID, CA, signing key, admin token). Works
    /// on the database directly.
    Init {
        #[command(flatten)]
        db: DbArgs,
        /// The site code.
        #[arg(long, default_value = "PS1")]
        site_code: String,
        /// Names (DNS or IP) in the API's server certificate.
        #[arg(long = "api-name", default_values_t = ["localhost".to_string(), "127.0.0.1".to_string()])]
        api_names: Vec<String>,
    },
    /// Serve the REST API and the publishing API over HTTPS. Works on the database directly.
    Serve {
        #[command(flatten)]
        db: DbArgs,
        #[arg(long, default_value = "127.0.0.1:8443")]
        listen: SocketAddr,
        /// File with the admin token (default: CMG_SITE_ADMIN_TOKEN, else DIR/admin.token).
        #[arg(long)]
        admin_token_file: Option<PathBuf>,
        /// Write CloudMgr.log and CMGSetup.log into this directory.
        #[arg(long)]
        log_dir: Option<PathBuf>,
        /// The connection points' report interval: a gateway whose connection points
        /// have not reported for twice this is shown Disconnected.
        #[arg(long, default_value = "5m", value_parser = period)]
        report_interval: Duration,
        /// How often every gateway's 14-day traffic alert is evaluated (also after
        /// each report).
        #[arg(long, default_value = "6m", value_parser = period)]
        alert_interval: Duration,
        /// Plain HTTP listener for `/metrics` (Prometheus) and `/ready`: loopback or a
        /// private address.
        #[arg(long)]
        admin_listen: Option<SocketAddr>,
    },
    /// Each gateway's status with its instances, connection points and channels (API client).
    Status {
        #[command(flatten)]
        api: ApiArgs,
        /// The API's JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Traffic per endpoint: requests, bytes, status classes, latency, egress (API client).
    Traffic {
        #[command(flatten)]
        api: ApiArgs,
        #[arg(long)]
        gateway: Option<String>,
        /// The period back from now: 90m, 24h, 14d (at most 90d).
        #[arg(long, default_value = "24h")]
        since: String,
        #[arg(long)]
        json: bool,
    },
    /// 14-day traffic alerts (API client).
    #[command(subcommand)]
    Alert(reports::AlertCommand),
    /// Gateways (API client).
    #[command(subcommand)]
    Gateway(GatewayCommand),
    /// Management points and software update points (API client).
    #[command(subcommand)]
    Role(RoleCommand),
    /// Connection points (API client).
    #[command(subcommand, name = "connection-point")]
    ConnectionPoint(CpCommand),
    /// Boundary groups (API client).
    #[command(subcommand, name = "boundary-group")]
    BoundaryGroup(BoundaryCommand),
    /// Show or set client settings (API client).
    ClientSettings {
        #[command(flatten)]
        api: ApiArgs,
        /// "Enable clients to use a cloud management gateway".
        #[arg(long)]
        enable_cmg: Option<bool>,
    },
    /// Bulk registration tokens (API client).
    #[command(subcommand)]
    Token(TokenCommand),
    /// Token and bundle signing keys (API client).
    #[command(subcommand)]
    Key(KeyCommand),
    /// The audit log, newest first (API client).
    Audit {
        #[command(flatten)]
        api: ApiArgs,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

#[derive(Debug, Args)]
struct GatewaySettings {
    /// Server certificate chain (PEM, leaf first).
    #[arg(long)]
    cert: Option<PathBuf>,
    /// Its private key (PEM).
    #[arg(long)]
    key: Option<PathBuf>,
    /// Or: the server certificate as PKCS#12 (.pfx: key and chain, PBES2/AES), its
    /// password from the environment variable named by --pfx-password-env. Converted to
    /// PEM here; the password never leaves this machine.
    #[arg(long, conflicts_with_all = ["cert", "key"])]
    pfx: Option<PathBuf>,
    /// The environment variable holding the .pfx password.
    #[arg(long, default_value = "CMG_PFX_PASSWORD")]
    pfx_password_env: String,
    /// VM instances, 1 to 16.
    #[arg(long)]
    instances: Option<u32>,
    /// Trusted root CA certificate files for client certificates (replaces the list).
    #[arg(long = "trusted-root")]
    trusted_roots: Vec<PathBuf>,
    /// Trusted intermediate CA certificate files (replaces the list).
    #[arg(long = "intermediate")]
    intermediates: Vec<PathBuf>,
    /// Verify client certificate revocation.
    #[arg(long)]
    crl: Option<bool>,
    /// Minimum TLS version: 1.2 or 1.3.
    #[arg(long)]
    min_tls: Option<String>,
    /// Serve content (cloud distribution point).
    #[arg(long)]
    content: Option<bool>,
    /// Turn the 14-day traffic alert on with this threshold (GB).
    #[arg(long)]
    alert_threshold_gb: Option<u64>,
    #[arg(long, default_value_t = 50)]
    alert_warning_pct: u8,
    #[arg(long, default_value_t = 90)]
    alert_critical_pct: u8,
    /// Stop the service when the critical level is reached.
    #[arg(long)]
    alert_stop: bool,
}

#[derive(Debug, Subcommand)]
enum GatewayCommand {
    /// Create a gateway from a PEM server certificate and key.
    Create {
        #[command(flatten)]
        api: ApiArgs,
        name: String,
        /// For a wildcard certificate: the host name replacing `*`.
        #[arg(long)]
        service_name: Option<String>,
        #[arg(long, default_value = "default")]
        region: String,
        #[command(flatten)]
        settings: GatewaySettings,
    },
    /// Change settings that apply without redeploy (a new settings version).
    Modify {
        #[command(flatten)]
        api: ApiArgs,
        name: String,
        #[command(flatten)]
        settings: GatewaySettings,
    },
    /// Change the service name or region (needs new deployment packages).
    Redeploy {
        #[command(flatten)]
        api: ApiArgs,
        name: String,
        #[arg(long)]
        service_name: Option<String>,
        #[arg(long)]
        region: Option<String>,
    },
    /// Delete a gateway (refused for the last one unless --force).
    Delete {
        #[command(flatten)]
        api: ApiArgs,
        name: String,
        #[arg(long)]
        force: bool,
    },
    List {
        #[command(flatten)]
        api: ApiArgs,
    },
    Show {
        #[command(flatten)]
        api: ApiArgs,
        name: String,
    },
    /// The storage account content is served from, and its key rotation.
    #[command(subcommand)]
    Storage(storage::StorageCommand),
    /// Write an instance's deployment package into DIR.
    Export {
        #[command(flatten)]
        api: ApiArgs,
        name: String,
        #[arg(long)]
        instance: u32,
        out: PathBuf,
        #[arg(long)]
        client_listen: Option<String>,
        #[arg(long)]
        channel_listen: Option<String>,
        #[arg(long)]
        admin_listen: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum RoleCommand {
    Add {
        #[command(flatten)]
        api: ApiArgs,
        /// Role ID (decimal).
        #[arg(long)]
        id: String,
        /// management_point or software_update_point.
        #[arg(long, default_value = "management_point")]
        kind: String,
        /// Internal base URL, e.g. https://mp01.corp.example.
        #[arg(long)]
        internal_url: String,
        /// http, enhanced_http or https.
        #[arg(long, default_value = "https")]
        mode: String,
        #[arg(long)]
        allow_gateway_traffic: bool,
    },
    Modify {
        #[command(flatten)]
        api: ApiArgs,
        id: String,
        #[arg(long)]
        internal_url: Option<String>,
        #[arg(long)]
        mode: Option<String>,
        #[arg(long)]
        allow_gateway_traffic: Option<bool>,
    },
    Remove {
        #[command(flatten)]
        api: ApiArgs,
        id: String,
    },
    List {
        #[command(flatten)]
        api: ApiArgs,
    },
}

#[derive(Debug, Subcommand)]
enum CpCommand {
    /// Issue a connection point certificate and write its configuration into DIR.
    Add {
        #[command(flatten)]
        api: ApiArgs,
        #[arg(long)]
        gateway: String,
        #[arg(long)]
        id: Option<String>,
        /// Channel address of a gateway instance (repeat for each).
        #[arg(long = "gateway-addr")]
        gateway_addrs: Vec<String>,
        /// CA certificate file the gateway's server certificate chains to (default: the
        /// last certificate of the gateway's chain).
        #[arg(long)]
        gateway_ca: Option<PathBuf>,
        out: PathBuf,
    },
    List {
        #[command(flatten)]
        api: ApiArgs,
    },
    Remove {
        #[command(flatten)]
        api: ApiArgs,
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum BoundaryCommand {
    Set {
        #[command(flatten)]
        api: ApiArgs,
        name: String,
        #[arg(long)]
        gateway: Option<String>,
        #[arg(long)]
        fallback_gateway: Option<String>,
    },
    List {
        #[command(flatten)]
        api: ApiArgs,
    },
    Remove {
        #[command(flatten)]
        api: ApiArgs,
        name: String,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Issue a bulk registration token; printed once, never stored.
    New {
        #[command(flatten)]
        api: ApiArgs,
        /// Minutes (default 4320 = 3 days, at most 10080 = 7 days).
        #[arg(long)]
        lifetime_minutes: Option<u64>,
    },
    List {
        #[command(flatten)]
        api: ApiArgs,
    },
    Block {
        #[command(flatten)]
        api: ApiArgs,
        tracking_id: String,
    },
    Unblock {
        #[command(flatten)]
        api: ApiArgs,
        tracking_id: String,
    },
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Roll the signing key; the previous key stays valid for the overlap.
    Roll {
        #[command(flatten)]
        api: ApiArgs,
        /// Hours (default 168).
        #[arg(long)]
        overlap_hours: Option<u64>,
    },
    List {
        #[command(flatten)]
        api: ApiArgs,
    },
}

pub fn run(args: SiteArgs) -> ExitCode {
    let log_dir = match &args.command {
        SiteCommand::Serve { log_dir, .. } => log_dir.clone(),
        _ => None,
    };
    let quiet = !matches!(
        args.command,
        SiteCommand::Serve { .. } | SiteCommand::Init { .. }
    );
    let _guards = match logging::init(log_dir.as_deref(), quiet) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("cmg: cannot open log directory: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cmg: cannot start runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(dispatch(&args.dir, args.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cmg site: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn database_url(dir: &Path, db: &DbArgs) -> String {
    db.database_url
        .clone()
        .unwrap_or_else(|| cmg_site::db::sqlite_url(&dir.join("site.db")))
}

fn master_key(dir: &Path, db: &DbArgs) -> anyhow::Result<MasterKey> {
    let file = match &db.master_key_file {
        Some(f) => Some(f.clone()),
        None if std::env::var_os(cmg_site::secret::MASTER_KEY_ENV).is_some() => None,
        None => Some(dir.join("master.key")),
    };
    Ok(MasterKey::load(file.as_deref())?)
}

fn write_secret(path: &Path, text: &str) -> anyhow::Result<()> {
    write_files(
        path.parent().unwrap_or(Path::new(".")),
        &[cmg_site::model::ExportFile {
            name: path
                .file_name()
                .and_then(|n| n.to_str())
                .context("file name")?
                .to_owned(),
            content: format!("{text}\n"),
            secret: true,
        }],
    )
    .with_context(|| format!("writing {}", path.display()))
}

fn random_hex() -> anyhow::Result<String> {
    let (_, text) = MasterKey::generate()?;
    Ok(text.expose().to_owned())
}

fn admin_token(dir: &Path, file: Option<&Path>) -> anyhow::Result<Secret> {
    let file = match file {
        Some(f) => f.to_owned(),
        None => {
            if let Ok(t) = std::env::var(ADMIN_TOKEN_ENV) {
                return Ok(Secret::new(t.trim()));
            }
            dir.join("admin.token")
        }
    };
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("reading the admin token from {}", file.display()))?;
    let t = text.trim();
    if t.len() < 16 {
        bail!(
            "the admin token in {} is shorter than 16 characters",
            file.display()
        );
    }
    Ok(Secret::new(t))
}

async fn dispatch(dir: &Path, cmd: SiteCommand) -> anyhow::Result<()> {
    match cmd {
        SiteCommand::Init {
            db,
            site_code,
            api_names,
        } => init(dir, &db, &site_code, api_names).await,
        SiteCommand::Serve {
            db,
            listen,
            admin_token_file,
            report_interval,
            alert_interval,
            admin_listen,
            ..
        } => {
            let token = admin_token(dir, admin_token_file.as_deref())?;
            let mut config = server::Config::new(listen, token);
            config.report_interval = report_interval;
            config.alert_interval = alert_interval;
            config.admin_listen = admin_listen;
            serve(dir, &db, config).await
        }
        SiteCommand::Status { api, json } => reports::status(dir, &api, json).await,
        SiteCommand::Traffic {
            api,
            gateway,
            since,
            json,
        } => reports::traffic(dir, &api, gateway.as_deref(), &since, json).await,
        SiteCommand::Alert(a) => reports::alert(dir, a).await,
        SiteCommand::Gateway(g) => gateway(dir, g).await,
        SiteCommand::Role(r) => role(dir, r).await,
        SiteCommand::ConnectionPoint(c) => connection_point(dir, c).await,
        SiteCommand::BoundaryGroup(b) => boundary(dir, b).await,
        SiteCommand::ClientSettings { api, enable_cmg } => {
            let c = client(dir, &api)?;
            match enable_cmg {
                Some(v) => {
                    let body = json!({"enable_clients_to_use_cmg": v});
                    print(call(&c, Method::PUT, "/api/v1/client-settings", Some(body)).await?)
                }
                None => print(call(&c, Method::GET, "/api/v1/client-settings", None).await?),
            }
        }
        SiteCommand::Token(t) => token(dir, t).await,
        SiteCommand::Key(k) => key(dir, k).await,
        SiteCommand::Audit { api, limit } => {
            let c = client(dir, &api)?;
            print(
                call(
                    &c,
                    Method::GET,
                    &format!("/api/v1/audit?limit={limit}"),
                    None,
                )
                .await?,
            )
        }
    }
}

async fn init(dir: &Path, db: &DbArgs, code: &str, api_names: Vec<String>) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let key_file = dir.join("master.key");
    if db.master_key_file.is_none()
        && std::env::var_os(cmg_site::secret::MASTER_KEY_ENV).is_none()
        && !key_file.exists()
    {
        write_secret(&key_file, &random_hex()?)?;
        println!(
            "master key written to {} (keep a copy: without it the site's secrets are lost)",
            key_file.display()
        );
    }
    let key = master_key(dir, db)?;
    let url = database_url(dir, db);
    let store = Store::open(&url, key).await?;
    let site = store
        .init(
            &InitParams {
                site_code: SiteCode::new(code)?,
                api_names,
            },
            &Actor::new(format!("cli:{}", whoami())),
        )
        .await?;
    std::fs::write(dir.join("site-ca.pem"), &site.ca_pem)?;
    let token_file = dir.join("admin.token");
    if !token_file.exists() && std::env::var_os(ADMIN_TOKEN_ENV).is_none() {
        write_secret(&token_file, &random_hex()?)?;
        println!("admin token written to {}", token_file.display());
    }
    store.close().await;
    println!(
        "site {} created (GUID {}), database {}, site CA {}",
        site.code,
        site.guid,
        cmg_site::db::redact_url(&url),
        dir.join("site-ca.pem").display()
    );
    Ok(())
}

fn whoami() -> String {
    std::env::var("USER").unwrap_or_else(|_| "unknown".into())
}

fn period(s: &str) -> Result<Duration, String> {
    cmg_site::alerts::parse_period(s)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("{s:?} is not a period like 30s, 5m, 6h or 1d"))
}

async fn serve(dir: &Path, db: &DbArgs, config: server::Config) -> anyhow::Result<()> {
    let store = Store::open(&database_url(dir, db), master_key(dir, db)?).await?;
    let bound = server::bind(store.clone(), &config)
        .await
        .context("starting the site API")?;
    let addr = bound.local_addr()?;
    println!("site API on https://{addr}");
    if let Some(a) = bound.admin_addr() {
        println!("site metrics on http://{a}/metrics");
    }
    let shutdown = Shutdown::new();
    let stopper = {
        let s = shutdown.clone();
        tokio::spawn(async move {
            signal::stop_requested().await;
            tracing::info!("stop requested; draining");
            s.token.cancel();
        })
    };
    bound.run(shutdown.clone()).await;
    let drain = shutdown.drain(Duration::from_secs(10)).await;
    tracing::info!(?drain, "site stopped");
    store.close().await;
    stopper.abort();
    Ok(())
}

fn client(dir: &Path, api: &ApiArgs) -> anyhow::Result<SiteClient> {
    let ca_file = api
        .ca_file
        .clone()
        .unwrap_or_else(|| dir.join("site-ca.pem"));
    let ca = std::fs::read_to_string(&ca_file)
        .with_context(|| format!("reading the site CA {}", ca_file.display()))?;
    let token = admin_token(dir, api.admin_token_file.as_deref())?;
    Ok(SiteClient::new(&api.url, &ca, Some(token), None)?.with_admin_name(whoami()))
}

async fn call(
    c: &SiteClient,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    let reply = c.call(method, path, body.as_ref()).await?;
    if !reply.status.is_success() {
        let v = reply.json();
        bail!(
            "{} {}: {}",
            reply.status.as_u16(),
            v["error"].as_str().unwrap_or("error"),
            v["message"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| reply.text())
        );
    }
    Ok(if reply.body.is_empty() {
        json!({"ok": true})
    } else {
        reply.json()
    })
}

/// One admin API call, its JSON answer printed.
async fn show(
    dir: &Path,
    api: &ApiArgs,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<()> {
    print(call(&client(dir, api)?, method, path, body).await?)
}

fn print(v: Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn settings_json(
    s: &GatewaySettings,
    body: &mut serde_json::Map<String, Value>,
) -> anyhow::Result<()> {
    match (&s.cert, &s.key, &s.pfx) {
        (Some(c), Some(k), None) => {
            body.insert("cert_pem".into(), json!(read(c)?));
            body.insert("key_pem".into(), json!(read(k)?));
        }
        (None, None, Some(pfx)) => {
            let bytes = std::fs::read(pfx).with_context(|| format!("read {}", pfx.display()))?;
            let password = std::env::var(&s.pfx_password_env).with_context(|| {
                format!(
                    "--pfx needs its password in the environment variable {}",
                    s.pfx_password_env
                )
            })?;
            let id = cmg_pki::pkcs12::read_pkcs12(&bytes, &password)
                .with_context(|| format!("{}", pfx.display()))?;
            body.insert("cert_pem".into(), json!(id.chain_pem));
            body.insert("key_pem".into(), json!(id.key_pem));
        }
        (None, None, None) => {}
        _ => bail!("give --cert and --key together (or --pfx alone)"),
    }
    if let Some(n) = s.instances {
        body.insert("instances".into(), json!(n));
    }
    if !s.trusted_roots.is_empty() {
        let pems = s
            .trusted_roots
            .iter()
            .map(|p| read(p))
            .collect::<anyhow::Result<Vec<_>>>()?;
        body.insert("trusted_roots_pem".into(), json!(pems));
    }
    if !s.intermediates.is_empty() {
        let pems = s
            .intermediates
            .iter()
            .map(|p| read(p))
            .collect::<anyhow::Result<Vec<_>>>()?;
        body.insert("intermediates_pem".into(), json!(pems));
    }
    if let Some(v) = s.crl {
        body.insert("verify_revocation".into(), json!(v));
    }
    if let Some(v) = &s.min_tls {
        body.insert("min_tls".into(), json!(v));
    }
    if let Some(v) = s.content {
        body.insert("content_enabled".into(), json!(v));
    }
    if let Some(t) = s.alert_threshold_gb {
        body.insert(
            "alert".into(),
            json!({"enabled": true, "threshold_gb": t, "warning_pct": s.alert_warning_pct,
                   "critical_pct": s.alert_critical_pct, "stop_at_critical": s.alert_stop}),
        );
    }
    Ok(())
}

async fn gateway(dir: &Path, cmd: GatewayCommand) -> anyhow::Result<()> {
    match cmd {
        GatewayCommand::Create {
            api,
            name,
            service_name,
            region,
            settings,
        } => {
            let mut body = serde_json::Map::new();
            body.insert("name".into(), json!(name));
            body.insert("region".into(), json!(region));
            if let Some(s) = service_name {
                body.insert("service_name".into(), json!(s));
            }
            if settings.cert.is_none() && settings.pfx.is_none() {
                bail!("a server certificate is required: --cert and --key (PEM), or --pfx");
            }
            settings_json(&settings, &mut body)?;
            let c = client(dir, &api)?;
            print(
                call(
                    &c,
                    Method::POST,
                    "/api/v1/gateways",
                    Some(Value::Object(body)),
                )
                .await?,
            )
        }
        GatewayCommand::Modify {
            api,
            name,
            settings,
        } => {
            let mut body = serde_json::Map::new();
            settings_json(&settings, &mut body)?;
            let c = client(dir, &api)?;
            print(
                call(
                    &c,
                    Method::PATCH,
                    &format!("/api/v1/gateways/{name}"),
                    Some(Value::Object(body)),
                )
                .await?,
            )
        }
        GatewayCommand::Redeploy {
            api,
            name,
            service_name,
            region,
        } => {
            let c = client(dir, &api)?;
            let body = json!({"service_name": service_name, "region": region});
            print(
                call(
                    &c,
                    Method::POST,
                    &format!("/api/v1/gateways/{name}/redeploy"),
                    Some(body),
                )
                .await?,
            )
        }
        GatewayCommand::Delete { api, name, force } => {
            let c = client(dir, &api)?;
            print(
                call(
                    &c,
                    Method::DELETE,
                    &format!("/api/v1/gateways/{name}?force={force}"),
                    None,
                )
                .await?,
            )
        }
        GatewayCommand::List { api } => {
            show(dir, &api, Method::GET, "/api/v1/gateways", None).await
        }
        GatewayCommand::Show { api, name } => {
            show(
                dir,
                &api,
                Method::GET,
                &format!("/api/v1/gateways/{name}"),
                None,
            )
            .await
        }
        GatewayCommand::Storage(cmd) => storage::storage(dir, cmd).await,
        GatewayCommand::Export {
            api,
            name,
            instance,
            out,
            client_listen,
            channel_listen,
            admin_listen,
        } => {
            let c = client(dir, &api)?;
            let body = json!({"instance": instance, "client_listen": client_listen,
                              "channel_listen": channel_listen, "admin_listen": admin_listen});
            let v = call(
                &c,
                Method::POST,
                &format!("/api/v1/gateways/{name}/export"),
                Some(body),
            )
            .await?;
            let pkg: ExportPackage = serde_json::from_value(v)?;
            write_files(&out, &pkg.files).with_context(|| format!("writing {}", out.display()))?;
            tracing::info!(target: "cmg_site::setup", gateway = %name, instance, version = pkg.settings_version,
                           dir = %out.display(), "deployment package written");
            println!(
                "{} instance {} (settings version {}) written to {}: {}",
                name,
                instance,
                pkg.settings_version,
                out.display(),
                pkg.files
                    .iter()
                    .map(|f| f.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            Ok(())
        }
    }
}

async fn role(dir: &Path, cmd: RoleCommand) -> anyhow::Result<()> {
    match cmd {
        RoleCommand::Add {
            api,
            id,
            kind,
            internal_url,
            mode,
            allow_gateway_traffic,
        } => {
            let body = json!({"role_id": id, "kind": kind, "internal_url": internal_url, "mode": mode,
                              "allow_gateway_traffic": allow_gateway_traffic});
            show(dir, &api, Method::POST, "/api/v1/roles", Some(body)).await
        }
        RoleCommand::Modify {
            api,
            id,
            internal_url,
            mode,
            allow_gateway_traffic,
        } => {
            let body = json!({"internal_url": internal_url, "mode": mode, "allow_gateway_traffic": allow_gateway_traffic});
            show(
                dir,
                &api,
                Method::PATCH,
                &format!("/api/v1/roles/{id}"),
                Some(body),
            )
            .await
        }
        RoleCommand::Remove { api, id } => {
            show(
                dir,
                &api,
                Method::DELETE,
                &format!("/api/v1/roles/{id}"),
                None,
            )
            .await
        }
        RoleCommand::List { api } => show(dir, &api, Method::GET, "/api/v1/roles", None).await,
    }
}

async fn connection_point(dir: &Path, cmd: CpCommand) -> anyhow::Result<()> {
    match cmd {
        CpCommand::Add {
            api,
            gateway,
            id,
            gateway_addrs,
            gateway_ca,
            out,
        } => {
            let c = client(dir, &api)?;
            let v = call(
                &c,
                Method::POST,
                "/api/v1/connection-points",
                Some(json!({"gateway": gateway, "id": id})),
            )
            .await?;
            let issued: ConnectionPointIssued = serde_json::from_value(v)?;
            let opts = ConnectorOptions {
                gateways: gateway_addrs,
                gateway_ca_pem: gateway_ca.as_deref().map(read).transpose()?,
                site_url: api.url.clone(),
            };
            write_files(&out, &connector_files(&issued, &opts))
                .with_context(|| format!("writing {}", out.display()))?;
            println!(
                "connection point {} for gateway {} written to {} (connector.toml, cp.pem, cp.key, site-ca.pem, gateway-ca.pem)",
                issued.id,
                issued.gateway,
                out.display()
            );
            if opts.gateways.is_empty() {
                println!("note: no --gateway-addr given; fill `gateways` in connector.toml before starting it");
            }
            Ok(())
        }
        CpCommand::List { api } => {
            show(dir, &api, Method::GET, "/api/v1/connection-points", None).await
        }
        CpCommand::Remove { api, id } => {
            show(
                dir,
                &api,
                Method::DELETE,
                &format!("/api/v1/connection-points/{id}"),
                None,
            )
            .await
        }
    }
}

async fn boundary(dir: &Path, cmd: BoundaryCommand) -> anyhow::Result<()> {
    match cmd {
        BoundaryCommand::Set {
            api,
            name,
            gateway,
            fallback_gateway,
        } => {
            let body = json!({"gateway": gateway, "fallback_gateway": fallback_gateway});
            show(
                dir,
                &api,
                Method::PUT,
                &format!("/api/v1/boundary-groups/{name}"),
                Some(body),
            )
            .await
        }
        BoundaryCommand::List { api } => {
            show(dir, &api, Method::GET, "/api/v1/boundary-groups", None).await
        }
        BoundaryCommand::Remove { api, name } => {
            show(
                dir,
                &api,
                Method::DELETE,
                &format!("/api/v1/boundary-groups/{name}"),
                None,
            )
            .await
        }
    }
}

async fn token(dir: &Path, cmd: TokenCommand) -> anyhow::Result<()> {
    match cmd {
        TokenCommand::New {
            api,
            lifetime_minutes,
        } => {
            let v = call(
                &client(dir, &api)?,
                Method::POST,
                "/api/v1/tokens",
                Some(json!({"lifetime_minutes": lifetime_minutes})),
            )
            .await?;
            println!("tracking ID: {}", v["tracking_id"].as_str().unwrap_or(""));
            println!("expires at (Unix): {}", v["expires_at"]);
            println!(
                "token (shown once, not stored by the site):\n{}",
                v["token"].as_str().unwrap_or("")
            );
            Ok(())
        }
        TokenCommand::List { api } => show(dir, &api, Method::GET, "/api/v1/tokens", None).await,
        TokenCommand::Block { api, tracking_id } => {
            show(
                dir,
                &api,
                Method::POST,
                &format!("/api/v1/tokens/{tracking_id}/block"),
                None,
            )
            .await
        }
        TokenCommand::Unblock { api, tracking_id } => {
            show(
                dir,
                &api,
                Method::POST,
                &format!("/api/v1/tokens/{tracking_id}/unblock"),
                None,
            )
            .await
        }
    }
}

async fn key(dir: &Path, cmd: KeyCommand) -> anyhow::Result<()> {
    match cmd {
        KeyCommand::Roll { api, overlap_hours } => {
            show(
                dir,
                &api,
                Method::POST,
                "/api/v1/keys/roll",
                Some(json!({"overlap_hours": overlap_hours})),
            )
            .await
        }
        KeyCommand::List { api } => show(dir, &api, Method::GET, "/api/v1/keys", None).await,
    }
}
