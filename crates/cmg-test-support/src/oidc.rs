//! A real OpenID Connect provider on loopback: the npm package `oidc-provider` run by
//! node from `oidc/server.mjs` (installed from the committed lock file in `oidc/`).
//!
//! What the provider offers (see the script's header): issuer `http://127.0.0.1:<port>`
//! with discovery and JWKS; clients `cmg-client-a` / `cmg-client-b` (client-credentials
//! grant, tokens carrying `tid: tenant-a` / `tenant-b`); any `resource` becomes the JWT
//! access token's audience; a second issuer at `/other` signing with the same keys;
//! `POST /admin/rotate` for a key rollover. One process per [`OidcProvider`], killed on
//! drop (it also exits when its stdin closes, so a test that dies cannot leave it).
//!
//! Needs node (20 or later) and npm: the first provider of a test binary installs the
//! package when `node_modules` is missing; `.ci/run` installs it beforehand. Without
//! node or npm it panics saying so. It verifies nothing itself: that is the tests' job.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};

use crate::npm;

const INSTALL_HINT: &str =
    "run `npm ci --prefix crates/cmg-test-support/oidc` (needs node 20 or later and npm)";

fn package_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("oidc")
}

/// The provider process and a plain HTTP client for its endpoints.
#[derive(Debug)]
pub struct OidcProvider {
    child: Child,
    _stdin: ChildStdin,
    port: u16,
    http: Client<HttpConnector, Full<Bytes>>,
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

impl OidcProvider {
    /// Installs the package if needed, starts node and waits for the port it prints.
    ///
    /// Panics when node or the package is missing or the provider does not start.
    pub async fn start() -> Self {
        let dir = package_dir();
        // Blocks this test's runtime once, while npm installs; every later call is a lookup.
        if let Err(e) = npm::ensure_installed(&dir, "oidc-provider") {
            panic!("{e}: {INSTALL_HINT}");
        }
        let mut child = Command::new("node")
            .arg("server.mjs")
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `node server.mjs` ({e}): {INSTALL_HINT}"));
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");

        // Keep stderr for the failure message; drain it so node never blocks on it.
        let log = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&log);
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(mut s) = sink.lock() {
                    s.push_str(&line);
                    s.push('\n');
                }
            }
        });

        let mut lines = BufReader::new(stdout).lines();
        let first =
            tokio::time::timeout(crate::patience(Duration::from_secs(30)), lines.next_line()).await;
        let stderr_text = || log.lock().map(|s| s.clone()).unwrap_or_default();
        let port = match first {
            Ok(Ok(Some(line))) => line
                .strip_prefix("PORT ")
                .and_then(|p| p.trim().parse::<u16>().ok())
                .unwrap_or_else(|| {
                    panic!("unexpected first line {line:?}; stderr:\n{}", stderr_text())
                }),
            other => panic!(
                "the OIDC provider did not print its port ({other:?}); {INSTALL_HINT}; stderr:\n{}",
                stderr_text()
            ),
        };
        // Drain stdout too.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

        Self {
            child,
            _stdin: stdin,
            port,
            http: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// The issuer URL, `http://127.0.0.1:<port>`.
    pub fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// POSTs a form to `path`; the status and the body. Panics when the provider does
    /// not answer in time.
    pub async fn post(&self, path: &str, form: &str) -> (http::StatusCode, Bytes) {
        let req = http::Request::post(format!("{}{path}", self.issuer()))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from(form.to_owned())))
            .expect("a well-formed request");
        let resp = tokio::time::timeout(
            crate::patience(Duration::from_secs(10)),
            self.http.request(req),
        )
        .await
        .expect("the OIDC provider answers in time")
        .expect("the OIDC provider is reachable");
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .expect("the provider's body")
            .to_bytes();
        (status, body)
    }

    /// A JWT access token from the client-credentials grant of `issuer_path` ("" or
    /// "/other") for client `a` or `b` and `resource` (its audience).
    pub async fn token_from(&self, issuer_path: &str, client: char, resource: &str) -> String {
        let form = format!(
            "grant_type=client_credentials&client_id=cmg-client-{client}&client_secret=secret-{client}&scope=api&resource={}",
            resource.replace(':', "%3A").replace('/', "%2F")
        );
        let (status, body) = self.post(&format!("{issuer_path}/token"), &form).await;
        assert_eq!(
            status,
            200,
            "token endpoint: {}",
            String::from_utf8_lossy(&body)
        );
        let json: serde_json::Value = serde_json::from_slice(&body).expect("token json");
        json["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    /// [`Self::token_from`] the main issuer.
    pub async fn token(&self, client: char, resource: &str) -> String {
        self.token_from("", client, resource).await
    }

    /// Makes a new key the signing key (old public keys stay in the JWKS); its `kid`.
    pub async fn rotate(&self) -> String {
        let (status, body) = self.post("/admin/rotate", "").await;
        assert_eq!(status, 200, "rotate: {}", String::from_utf8_lossy(&body));
        let json: serde_json::Value = serde_json::from_slice(&body).expect("json");
        json["kid"].as_str().expect("kid").to_owned()
    }
}
