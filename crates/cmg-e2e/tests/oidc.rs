//! OIDC access tokens end to end: a real OpenID Connect provider (the npm package
//! `oidc-provider`, cmg-token's `tests/oidc/server.mjs`) on loopback, named by the
//! site's settings bundle as an accepted issuer, tokens from its client-credentials
//! grant sent through the gateways to a `CCM_Proxy_ServerAuth` URL.
//!
//! Valid token: 200 and the management point sees the token identity. Wrong audience,
//! another tenant, and a key the provider rotated in after the gateway fetched its JWKS
//! (the refetch on an unknown `kid` is rate-limited to one per 5 minutes): 401 and
//! nothing forwarded. Needs node and npm, like cmg-token's tests (the provider is
//! installed from the committed lock file when missing).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use cmg_client::collect_body;
use cmg_e2e::{header_str, journal, spec, tag, tagged, Cert, TestCluster};
use cmg_proto::settings::OidcIssuer;
use http::{header, Request, StatusCode};
use http_body_util::Full;

const AUDIENCE: &str = "api://cmg-e2e";

/// The provider process: killed on drop (it also exits when its stdin closes).
struct Provider {
    child: Child,
    _stdin: ChildStdin,
    port: u16,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Provider {
    fn start() -> Self {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../cmg-token/tests/oidc");
        if !dir
            .join("node_modules/oidc-provider/package.json")
            .is_file()
        {
            let out = Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--prefix"])
                .arg(&dir)
                .output()
                .expect("run npm (node 20+ and npm are needed for the OIDC tests)");
            assert!(
                out.status.success(),
                "npm ci: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let mut child = Command::new("node")
            .arg("server.mjs")
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start `node server.mjs`");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        // The first line is `PORT <n>`; read it on a thread so a silent node cannot
        // hang the test.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next());
            for _ in lines {}
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the OIDC provider prints its port")
            .expect("a line")
            .expect("utf-8");
        let port = line
            .strip_prefix("PORT ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        Self {
            child,
            _stdin: stdin,
            port,
        }
    }

    fn issuer(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// POSTs a form; the status and the body (HTTP/1.1, `Connection: close`).
    fn post(&self, path: &str, form: &str) -> (u16, String) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("provider");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        write!(
            s,
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{form}",
            self.port,
            form.len()
        )
        .expect("write");
        let mut text = String::new();
        s.read_to_string(&mut text).expect("read");
        let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        (status, body)
    }

    /// A JWT access token for client `a` or `b` (tenant-a / tenant-b) and `resource`.
    fn token(&self, client: char, resource: &str) -> String {
        let form = format!(
            "grant_type=client_credentials&client_id=cmg-client-{client}&client_secret=secret-{client}&scope=api&resource={}",
            resource.replace(':', "%3A").replace('/', "%2F")
        );
        let (status, body) = self.post("/token", &form);
        assert_eq!(status, 200, "token endpoint: {body}");
        let json: serde_json::Value = serde_json::from_str(&body).expect("token json");
        json["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    fn rotate(&self) {
        let (status, body) = self.post("/admin/rotate", "");
        assert_eq!(status, 200, "rotate: {body}");
    }
}

fn request(t: &str, token: &str) -> Request<Full<Bytes>> {
    let path = format!("{}/request", spec::token_prefix("ccm_system_tokenauth"));
    let mut req = tagged(cmg_e2e::ccm_post(), &path, t, Bytes::from_static(b"<Msg/>"));
    req.headers_mut().insert(
        header::AUTHORIZATION,
        format!("Bearer {token}").parse().expect("header"),
    );
    req
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_tokens_through_the_gateway() -> anyhow::Result<()> {
    let provider = Provider::start();
    let issuer = provider.issuer();
    // The config file gives the issuer's local transport setting (plain HTTP on
    // loopback); the site's bundle decides that the issuer is accepted.
    let extra = format!(
        "\n[[tokens.oidc]]\nissuer = \"{issuer}\"\naudiences = [\"{AUDIENCE}\"]\nallow_http_loopback = true\n"
    );
    let tc = TestCluster::start_with(|s| s.gateway_extra = extra).await?;
    let mut bundle = tc.base_bundle(2)?;
    bundle.tokens.oidc = vec![OidcIssuer {
        issuer: issuer.clone(),
        audiences: vec![AUDIENCE.into()],
        tenants: vec!["tenant-a".into()],
    }];
    tc.publish(&bundle)?;
    tc.wait_settings(2, Duration::from_secs(20)).await?;

    let good = provider.token('a', AUDIENCE);
    for gw in 0..tc.gateways.len() {
        let client = tc.client(gw, Cert::None, gw == 1)?;
        let t = tag("oidc-ok");
        let resp = client.request(request(&t, &good)).await?;
        assert_eq!(resp.status(), StatusCode::OK, "gw{gw}");
        assert_eq!(collect_body(resp).await?, Bytes::from_static(b"<Msg/>"));
        let entries = journal::tagged(&tc, &t);
        assert_eq!(entries.len(), 1, "gw{gw}");
        assert_eq!(journal::header(&entries[0], "cmg-client-auth"), ["token"]);
        let identity = journal::header(&entries[0], "cmg-client-identity");
        assert!(
            identity[0].contains(&format!("issuer=\"{issuer}\""))
                && identity[0].contains("sub=\"cmg-client-a\"")
                && identity[0].contains("tid=\"tenant-a\""),
            "{identity:?}"
        );
    }

    let wrong_audience = provider.token('a', "api://someone-else");
    let other_tenant = provider.token('b', AUDIENCE);
    provider.rotate();
    let rotated = provider.token('a', AUDIENCE);
    for (what, token, code) in [
        ("wrong audience", &wrong_audience, "bad_audience"),
        ("tenant not allowed", &other_tenant, "tenant_not_allowed"),
        (
            "key rotated in after the JWKS fetch",
            &rotated,
            "unknown_kid",
        ),
    ] {
        for gw in 0..tc.gateways.len() {
            let client = tc.client(gw, Cert::None, false)?;
            let t = tag("oidc-refused");
            let resp = client.request(request(&t, token)).await?;
            assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{what} gw{gw}");
            let challenge = header_str(&resp, "www-authenticate");
            assert!(challenge.contains(code), "{what}: {challenge}");
            assert!(journal::tagged(&tc, &t).is_empty(), "{what} was forwarded");
        }
    }
    // The token signed with the previous key still works (cached or not).
    let client = tc.client(0, Cert::None, false)?;
    let t = tag("oidc-again");
    assert_eq!(
        client.request(request(&t, &good)).await?.status(),
        StatusCode::OK
    );
    tc.shutdown().await;
    Ok(())
}
