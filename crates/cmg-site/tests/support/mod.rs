//! Test support: a database of each kind per test, a test site, and a private PostgreSQL
//! server per test binary.
//!
//! PostgreSQL: `CMG_TEST_POSTGRES_URL` (a superuser URL) when set; else a private server
//! started from the distribution's binaries (`/usr/lib/postgresql/*/bin`) in a temp dir
//! on 127.0.0.1 with an ephemeral port, run as the `postgres` user when the tests run as
//! root. A watcher process stops it and removes its directory when the test binary
//! exits. Neither available: the tests fail and say which package to install.

#![allow(dead_code)]

/// Runs `$name(kind)` as one test per database: `$name::sqlite` and `$name::postgres`.
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(super::Kind::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(super::Kind::Postgres).await
            }
        }
    };
}

pub mod deploy;
pub mod traffic;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use cmg_core::Shutdown;
use cmg_proto::SiteCode;
use cmg_site::client::SiteClient;
use cmg_site::store::InitParams;
use cmg_site::{server, Actor, MasterKey, Secret, Store};
use cmg_test_support::eventually;
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

pub const KINDS: [Kind; 2] = [Kind::Sqlite, Kind::Postgres];

/// A fresh, empty database of `kind`; the temp dir (SQLite file) lives as long as it.
pub struct TestDb {
    pub url: String,
    pub kind: Kind,
    pub dir: tempfile::TempDir,
}

impl TestDb {
    pub fn sqlite_file(&self) -> PathBuf {
        self.dir.path().join("site.db")
    }

    /// Everything SQLite wrote (the file, its write-ahead log and shared memory), as
    /// text, for tests that prove a secret never reached the disk in clear.
    pub fn sqlite_text(&self) -> String {
        let mut bytes = std::fs::read(self.sqlite_file()).expect("db file");
        for ext in ["-wal", "-shm"] {
            let mut p = self.sqlite_file().into_os_string();
            p.push(ext);
            if let Ok(more) = std::fs::read(&p) {
                bytes.extend(more);
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

pub async fn test_db(kind: Kind) -> TestDb {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = match kind {
        Kind::Sqlite => cmg_site::db::sqlite_url(&dir.path().join("site.db")),
        Kind::Postgres => postgres_database().await,
    };
    TestDb { url, kind, dir }
}

pub fn admin() -> Actor {
    Actor::new("test-admin")
}

/// A test master key, the same for every open of one test (kept as text).
pub fn master_key_text() -> String {
    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff".into()
}

pub fn master_key() -> MasterKey {
    MasterKey::parse(&master_key_text()).expect("master key")
}

/// An initialised site on a fresh database.
pub async fn test_site(kind: Kind) -> (Store, TestDb) {
    let db = test_db(kind).await;
    let store = Store::open(&db.url, master_key())
        .await
        .expect("open store");
    store
        .init(
            &InitParams {
                site_code: SiteCode::new("PS1").expect("site code"),
                api_names: vec!["localhost".into(), "127.0.0.1".into()],
            },
            &admin(),
        )
        .await
        .expect("init site");
    (store, db)
}

/// A gateway server certificate and key, and a client root CA, minted for tests.
pub struct GatewayPki {
    pub server_chain: String,
    pub server_key: String,
    pub client_root: String,
    /// A client certificate (with its chain) under `client_root`, and its key.
    pub client_cert: String,
    pub client_key: String,
    pub dir: tempfile::TempDir,
}

pub fn gateway_pki(service: &str) -> GatewayPki {
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = cmg_pki::demo::DemoPki::generate(&cmg_pki::demo::DemoPkiSpec {
        service_name: service.into(),
        site: SiteCode::new("PS1").expect("site"),
        connectors: vec![],
        crl_url: None,
    })
    .expect("demo pki");
    let paths = pki.write(dir.path()).expect("write pki");
    let read = |p: &Path| std::fs::read_to_string(p).expect("read pem");
    GatewayPki {
        server_chain: read(&paths.server_cert),
        server_key: read(&paths.server_key),
        client_root: read(&paths.root_ca),
        client_cert: read(&paths.client_cert),
        client_key: read(&paths.client_key),
        dir,
    }
}

pub fn gateway_request(name: &str, pki: &GatewayPki) -> cmg_site::model::GatewayCreate {
    serde_json::from_value(serde_json::json!({
        "name": name,
        "cert_pem": pki.server_chain,
        "key_pem": pki.server_key,
        "trusted_roots_pem": [pki.client_root],
        "instances": 2,
    }))
    .expect("gateway request")
}

// ---- A served site ----

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

pub struct Site {
    pub url: String,
    pub ca: String,
    pub store: Store,
    pub shutdown: Shutdown,
    pub db: TestDb,
    /// The plain HTTP admin listener (`/metrics`, `/ready`), when configured.
    pub admin_addr: Option<std::net::SocketAddr>,
}

impl Site {
    pub fn admin(&self) -> SiteClient {
        SiteClient::new(&self.url, &self.ca, Some(Secret::new(ADMIN_TOKEN)), None)
            .expect("client")
            .with_admin_name("tester")
    }
    pub fn anonymous(&self) -> SiteClient {
        SiteClient::new(&self.url, &self.ca, None, None).expect("client")
    }
    pub fn with_token(&self, token: &str) -> SiteClient {
        SiteClient::new(&self.url, &self.ca, Some(Secret::new(token)), None).expect("client")
    }
    pub fn with_cert(&self, cert: &str, key: &str) -> SiteClient {
        SiteClient::new(&self.url, &self.ca, None, Some((cert, key))).expect("client")
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        self.shutdown.token.cancel();
    }
}

pub async fn spawn_site(kind: Kind) -> Site {
    spawn_site_with(kind, |_| {}).await
}

/// A site serving on loopback; `tweak` adjusts its config.
pub async fn spawn_site_with(kind: Kind, tweak: impl FnOnce(&mut server::Config)) -> Site {
    let (store, db) = test_site(kind).await;
    serve_store(store, db, tweak).await
}

/// Serves `store` (initialised) on loopback; `tweak` adjusts the config.
pub async fn serve_store(
    store: Store,
    db: TestDb,
    tweak: impl FnOnce(&mut server::Config),
) -> Site {
    let mut config = server::Config::new(
        "127.0.0.1:0".parse().expect("addr"),
        Secret::new(ADMIN_TOKEN),
    );
    config.long_poll = Duration::from_secs(10);
    tweak(&mut config);
    let bound = server::bind(store.clone(), config.clone())
        .await
        .expect("bind");
    let addr = bound.local_addr().expect("addr");
    let admin_addr = bound.admin_addr();
    let shutdown = Shutdown::new();
    tokio::spawn(bound.run(shutdown.clone()));
    let ca = store.site().await.expect("site").ca_pem;
    Site {
        url: format!("https://127.0.0.1:{}", addr.port()),
        ca,
        store,
        shutdown,
        db,
        admin_addr,
    }
}

pub fn gateway_body(name: &str, pki: &GatewayPki) -> Value {
    json!({
        "name": name, "cert_pem": pki.server_chain, "key_pem": pki.server_key,
        "trusted_roots_pem": [pki.client_root], "instances": 2,
    })
}

// ---- PostgreSQL ----

struct PgServer {
    /// Superuser URL without a database name, e.g. `postgres://postgres@127.0.0.1:5432`.
    base: String,
}

static PG: OnceLock<Result<PgServer, String>> = OnceLock::new();

fn pg() -> &'static PgServer {
    match PG.get_or_init(start_postgres) {
        Ok(s) => s,
        Err(e) => panic!("PostgreSQL for the site tests: {e}"),
    }
}

/// A new, empty database on the test server; returns its URL.
pub async fn postgres_database() -> String {
    use sqlx::Connection as _;
    let base = pg().base.clone();
    let mut b = [0u8; 6];
    aws_lc_rs::rand::fill(&mut b).expect("random");
    let name = format!("cmg_test_{}", hex::encode(b));
    let url = format!("{base}/postgres");
    let url = url.as_str();
    let mut conn = eventually(format!("PostgreSQL at {base} to accept connections"))
        .within(Duration::from_secs(30))
        .every(Duration::from_millis(100))
        .until_async(move || sqlx::PgConnection::connect(url), |c| c.is_ok())
        .await
        .expect("connected");
    sqlx::Executor::execute(&mut conn, format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("create database");
    format!("{base}/{name}")
}

fn start_postgres() -> Result<PgServer, String> {
    if let Ok(url) = std::env::var("CMG_TEST_POSTGRES_URL") {
        let base = url.trim_end_matches('/');
        let base = match base.rsplit_once('/') {
            Some((head, _db))
                if head.contains("://") && head.len() > head.find("://").unwrap_or(0) + 3 =>
            {
                head.to_owned()
            }
            _ => base.to_owned(),
        };
        return Ok(PgServer { base });
    }
    let bin = find_bin().ok_or(
        "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin and CMG_TEST_POSTGRES_URL is not set: \
         install them (apt-get install postgresql) or point CMG_TEST_POSTGRES_URL at a server",
    )?;
    let root = run_as_root();
    let dir = tempfile::Builder::new()
        .prefix("cmg-site-pg-")
        .tempdir()
        .map_err(|e| e.to_string())?
        .keep();
    let data = dir.join("data");
    if root {
        must(
            Command::new("chown").arg("postgres:postgres").arg(&dir),
            "chown",
        )?;
    }
    let as_pg = |program: PathBuf| {
        if root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    };
    must(
        as_pg(bin.join("initdb")).arg("-D").arg(&data).args([
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
        ]),
        "initdb",
    )?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let log = std::fs::File::create(dir.join("postgres.log")).map_err(|e| e.to_string())?;
    let child = as_pg(bin.join("postgres"))
        .arg("-D")
        .arg(&data)
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-k"])
        .arg(&dir)
        .args([
            "-c",
            "fsync=off",
            "-c",
            "full_page_writes=off",
            "-c",
            "max_connections=200",
        ])
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(|e| e.to_string())?)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("starting postgres: {e}"))?;
    // Stop the server and remove its files once this test binary has exited.
    // The server's own PID is the first line of postmaster.pid (`runuser` does not pass
    // signals on to it); fast shutdown, then remove the files.
    let stop = format!(
        "while kill -0 {me} 2>/dev/null; do sleep 0.5; done; \
         pg=$(head -n 1 '{data}/postmaster.pid' 2>/dev/null); \
         if [ -n \"$pg\" ]; then kill -INT \"$pg\" 2>/dev/null; \
           for i in $(seq 1 40); do kill -0 \"$pg\" 2>/dev/null || break; sleep 0.25; done; \
           kill -KILL \"$pg\" 2>/dev/null; fi; \
         kill -KILL {child} 2>/dev/null; rm -rf '{dir}'",
        me = std::process::id(),
        child = child.id(),
        data = data.display(),
        dir = dir.display()
    );
    Command::new("sh")
        .args(["-c", &stop])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting the postgres watcher: {e}"))?;
    Ok(PgServer {
        base: format!("postgres://postgres@127.0.0.1:{port}"),
    })
}

fn must(cmd: &mut Command, what: &str) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{what}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn run_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn find_bin() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, b)| b)
}

/// A verifier of the site's tokens with the keys it holds now (as a gateway would).
#[allow(dead_code)]
pub async fn site_token_verifier(store: &Store) -> cmg_token::SiteVerifier {
    let guid: cmg_token::SiteGuid = store
        .site()
        .await
        .expect("site")
        .guid
        .parse()
        .expect("guid");
    let keys: Vec<String> = store
        .keys()
        .await
        .expect("keys")
        .into_iter()
        .map(|k| k.public_pem)
        .collect();
    cmg_token::SiteVerifier::from_pems(&keys, &guid).expect("verifier")
}
