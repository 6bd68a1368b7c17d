//! Azurite, Microsoft's Azure Storage emulator (npm package `azurite`, installed from
//! the committed lock file in `azurite/`), on loopback for the content tests: one
//! blob service per test on an ephemeral port, in a temporary folder, with one account
//! that has two keys (as Azure accounts do). Killed on drop. Needs node and npm, like
//! [`crate::oidc`]; the first emulator of a test binary installs the package if missing.
//!
//! Also a [`StorageProxy`] to put in front of it: it counts the bytes the gateway sends
//! to storage ("storage never asked") and can stop answering or refuse, standing in for
//! a storage outage without touching the emulator.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context as _};
use base64::Engine as _;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

/// The account every test uses.
pub const ACCOUNT: &str = "cmgcontent";
/// The container every test uses.
pub const CONTAINER: &str = "content";
const INSTALL_HINT: &str =
    "run `npm ci --prefix crates/cmg-test-support/azurite` (needs node 20 or later and npm)";
/// Bound on the emulator's start (scaled by [`crate::patience`]).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running Azurite blob service.
#[derive(Debug)]
pub struct Azurite {
    child: Child,
    pub port: u16,
    /// The account's two keys, base64 (`key1`, `key2`).
    pub keys: [String; 2],
    _dir: tempfile::TempDir,
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

fn package_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("azurite")
}

impl Azurite {
    /// Starts the blob service and creates [`CONTAINER`].
    pub async fn start() -> anyhow::Result<Self> {
        crate::npm::ensure_installed(&package_dir(), "azurite")
            .map_err(|e| anyhow::anyhow!("{e}: {INSTALL_HINT}"))?;
        let dir = tempfile::tempdir().context("tempdir")?;
        let key = |seed: u8| {
            let bytes: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(31) ^ seed).collect();
            base64::engine::general_purpose::STANDARD.encode(bytes)
        };
        let keys = [key(0x5a), key(0xa5)];
        let main = package_dir().join("node_modules/azurite/dist/src/blob/main.js");
        let mut child = Command::new("node")
            .arg(&main)
            .args(["--blobHost", "127.0.0.1", "--blobPort", "0", "--location"])
            .arg(dir.path())
            .args(["--disableTelemetry", "--skipApiVersionCheck", "--silent"])
            .env(
                "AZURITE_ACCOUNTS",
                format!("{ACCOUNT}:{}:{}", keys[0], keys[1]),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start node {} ({INSTALL_HINT})", main.display()))?;
        let stdout = child.stdout.take().context("stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let port = tokio::time::timeout(crate::patience(START_TIMEOUT), async {
            while let Some(line) = lines.next_line().await? {
                // "Azurite Blob service successfully listens on http://127.0.0.1:PORT"
                if let Some(rest) = line.split("listens on http://127.0.0.1:").nth(1) {
                    return Ok::<_, anyhow::Error>(rest.trim().parse::<u16>()?);
                }
            }
            bail!("azurite exited before listening")
        })
        .await
        .context("azurite did not start in time")??;
        // Keep draining stdout so the emulator never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let azurite = Self {
            child,
            port,
            keys,
            _dir: dir,
        };
        azurite.create_container().await?;
        Ok(azurite)
    }

    /// The path-style endpoint of the account (`http://127.0.0.1:PORT/ACCOUNT`).
    pub fn endpoint(&self) -> String {
        endpoint(self.port)
    }

    /// A direct client of the container with key `key` (0: key1, 1: key2).
    pub fn store(&self, key: usize) -> anyhow::Result<object_store::azure::MicrosoftAzure> {
        Ok(object_store::azure::MicrosoftAzureBuilder::new()
            .with_account(ACCOUNT)
            .with_container_name(CONTAINER)
            .with_access_key(&self.keys[key])
            .with_endpoint(self.endpoint())
            .with_allow_http(true)
            .build()?)
    }

    /// Create Container, signed with Shared Key (object_store has no call for it).
    async fn create_container(&self) -> anyhow::Result<()> {
        let date = httpdate::fmt_http_date(std::time::SystemTime::now());
        let version = "2021-08-06";
        // Path-style (emulator) resource: the account appears twice.
        let to_sign = format!(
            "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n/{ACCOUNT}/{ACCOUNT}/{CONTAINER}\nrestype:container"
        );
        let key = base64::engine::general_purpose::STANDARD.decode(&self.keys[0])?;
        let mac = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &key),
            to_sign.as_bytes(),
        );
        let sig = base64::engine::general_purpose::STANDARD.encode(mac.as_ref());
        let req = format!(
            "PUT /{ACCOUNT}/{CONTAINER}?restype=container HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\
             x-ms-date: {date}\r\nx-ms-version: {version}\r\n\
             Authorization: SharedKey {ACCOUNT}:{sig}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        );
        let mut tcp = TcpStream::connect(("127.0.0.1", self.port)).await?;
        tcp.write_all(req.as_bytes()).await?;
        let mut resp = Vec::new();
        tokio::time::timeout(
            crate::patience(Duration::from_secs(10)),
            tcp.read_to_end(&mut resp),
        )
        .await
        .context("create container: no answer")??;
        let text = String::from_utf8_lossy(&resp);
        if !text.starts_with("HTTP/1.1 201") {
            bail!("create container: {text}");
        }
        Ok(())
    }
}

/// The path-style endpoint of [`ACCOUNT`] on `port`.
pub fn endpoint(port: u16) -> String {
    format!("http://127.0.0.1:{port}/{ACCOUNT}")
}

/// What the proxy does with connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ProxyMode {
    /// Forward to the emulator.
    Pass = 0,
    /// Accept and read, never answer (a storage that hangs).
    Hang = 1,
    /// Close every connection at once (a storage that is down).
    Refuse = 2,
}

/// A TCP forwarder in front of the emulator, counting bytes sent to it.
#[derive(Debug)]
pub struct StorageProxy {
    pub port: u16,
    sent: Arc<AtomicU64>,
    mode: Arc<AtomicU8>,
    /// Cancelled on every mode change: connections opened before it end.
    generation: Arc<Mutex<CancellationToken>>,
    stop: CancellationToken,
}

impl Drop for StorageProxy {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Ok(g) = self.generation.lock() {
            g.cancel();
        }
    }
}

impl StorageProxy {
    pub async fn start(upstream: u16) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let sent = Arc::new(AtomicU64::new(0));
        let mode = Arc::new(AtomicU8::new(ProxyMode::Pass as u8));
        let generation = Arc::new(Mutex::new(CancellationToken::new()));
        let stop = CancellationToken::new();
        let (s, m, g, st) = (sent.clone(), mode.clone(), generation.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let conn = tokio::select! {
                    _ = st.cancelled() => return,
                    c = listener.accept() => c,
                };
                let Ok((client, _)) = conn else { continue };
                let token = match g.lock() {
                    Ok(t) => t.clone(),
                    Err(_) => return,
                };
                let mode = m.load(Ordering::SeqCst);
                let sent = s.clone();
                tokio::spawn(async move {
                    tokio::select! {
                        _ = token.cancelled() => {}
                        _ = pipe(client, upstream, mode, sent) => {}
                    }
                });
            }
        });
        Ok(Self {
            port,
            sent,
            mode,
            generation,
            stop,
        })
    }

    /// Bytes sent towards storage so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }

    /// Changes what new connections get, and ends every open one.
    pub fn set_mode(&self, mode: ProxyMode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
        if let Ok(mut g) = self.generation.lock() {
            g.cancel();
            *g = CancellationToken::new();
        }
    }
}

async fn pipe(mut client: TcpStream, upstream: u16, mode: u8, sent: Arc<AtomicU64>) {
    if mode == ProxyMode::Refuse as u8 {
        return;
    }
    if mode == ProxyMode::Hang as u8 {
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n) = client.read(&mut buf).await {
            if n == 0 {
                return;
            }
            sent.fetch_add(n as u64, Ordering::SeqCst);
        }
        return;
    }
    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else {
        return;
    };
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let up = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match cr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    sent.fetch_add(n as u64, Ordering::SeqCst);
                    if sw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = sw.shutdown().await;
    };
    let down = async {
        let _ = tokio::io::copy(&mut sr, &mut cw).await;
        let _ = cw.shutdown().await;
    };
    tokio::join!(up, down);
}
