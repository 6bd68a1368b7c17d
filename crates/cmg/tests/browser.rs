//! The web console in a real browser: `cmg demo --dir DIR` runs, then node runs
//! `tests/browser/console.mjs`, which drives Debian's chromium (`/usr/bin/chromium`,
//! never a downloaded browser) with playwright-core (installed from the committed lock
//! file in `tests/browser/`) through signing in, the gateway Ready, its traffic charts, a bulk
//! token created and blocked, every other page, and signing out, with a screenshot of
//! each page in `target/browser-screenshots/` (or `CMG_SCREENSHOTS`).
//!
//! Needs node (20 or later), npm and chromium, as CI has (`.ci/run` installs them);
//! `CMG_SKIP_BROWSER=1` skips it, saying so.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use cmg_cluster::DemoContract;

const CHROMIUM: &str = "/usr/bin/chromium";

/// The demo process, interrupted (then killed) when dropped.
struct Demo(Child);

impl Drop for Demo {
    fn drop(&mut self) {
        // SIGINT to our own child: the demo stops as on Ctrl-C.
        let _ = Command::new("kill")
            .args(["-INT", &self.0.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

fn screenshots() -> PathBuf {
    std::env::var_os("CMG_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/browser-screenshots")
        })
}

/// `npm ci` in the test's folder unless playwright-core is installed.
fn install() {
    let dir = browser_dir();
    if dir
        .join("node_modules/playwright-core/package.json")
        .is_file()
    {
        return;
    }
    let out = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--prefix"])
        .arg(&dir)
        .output()
        .expect("run npm (needs node 20 or later and npm; CMG_SKIP_BROWSER=1 skips this test)");
    assert!(
        out.status.success(),
        "npm ci --prefix {}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Starts the demo and waits until it serves (its "keeps running" line).
fn start_demo(dir: &Path) -> (Demo, Vec<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_cmg"))
        .args(["demo", "--dir"])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start cmg demo");
    let stdout = child.stdout.take().expect("stdout is piped");
    let demo = Demo(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = std::time::Instant::now() + cmg_test_support::patience(Duration::from_secs(120));
    let mut lines = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let ready = line.contains("The demo keeps running");
                lines.push(line);
                if ready {
                    // Keep draining its output so the demo never blocks on a full pipe.
                    std::thread::spawn(move || while rx.recv().is_ok() {});
                    return (demo, lines);
                }
            }
            Err(_) => panic!(
                "cmg demo did not come up; its output:\n{}",
                lines.join("\n")
            ),
        }
    }
}

#[test]
fn the_console_in_chromium_against_the_demo() {
    if std::env::var_os("CMG_SKIP_BROWSER").is_some() {
        eprintln!("CMG_SKIP_BROWSER set: the browser test of the web console was not run");
        return;
    }
    assert!(
        Path::new(CHROMIUM).is_file(),
        "{CHROMIUM} is missing: apt-get install chromium (CMG_SKIP_BROWSER=1 skips this test)"
    );
    install();
    let dir = tempfile::tempdir().expect("tempdir");
    let (demo, output) = start_demo(&dir.path().join("demo"));
    let contract: DemoContract = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("demo/demo.json")).expect("demo.json"),
    )
    .expect("demo.json matches the contract");
    let site = contract.site.expect("the demo runs a site");
    let profile = dir.path().join("chromium-profile");
    std::fs::create_dir_all(&profile).expect("profile dir");
    let shots = screenshots();
    let out = Command::new("node")
        .arg("console.mjs")
        .current_dir(browser_dir())
        .env("CMG_SITE_URL", &site.api_url)
        .env("CMG_ADMIN_TOKEN_FILE", &site.admin_token_file)
        .env("CMG_GATEWAY", &site.gateway)
        .env(
            "CMG_INSTANCES",
            contract
                .gateways
                .iter()
                .map(|g| g.client.as_str())
                .collect::<Vec<_>>()
                .join(","),
        )
        .env("CMG_CLIENT_CERT", &contract.pki.client_cert)
        .env("CMG_CLIENT_KEY", &contract.pki.client_key)
        .env("CMG_REVOKED_CERT", &contract.pki.revoked_client_cert)
        .env("CMG_REVOKED_KEY", &contract.pki.revoked_client_key)
        .env("CMG_SCREENSHOTS", &shots)
        .env("CMG_USER_DATA_DIR", &profile)
        .output()
        .expect("run node (CMG_SKIP_BROWSER=1 skips this test)");
    drop(demo);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the browser test failed:\n{stdout}\n{stderr}\ndemo output:\n{}",
        output.join("\n")
    );
    println!("{stdout}");
    for step in [
        "ok signed in",
        "ok gateway Ready",
        "ok traffic",
        "ok analyzer: good certificate, every step passed",
        "ok analyzer: revoked certificate, the revocation step failed",
        "ok signed out",
        "ok no CSP violation",
    ] {
        assert!(stdout.contains(step), "{step} missing:\n{stdout}");
    }
    for shot in [
        "01-sign-in",
        "02-gateways",
        "04-traffic-24h",
        "05-traffic-14d",
        "05b-traffic-one-endpoint",
        "06-analyzer-good",
        "07-analyzer-revoked",
        "09-token-blocked",
        "15-signed-out",
    ] {
        let path = shots.join(format!("{shot}.png"));
        let meta = std::fs::metadata(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(meta.len() > 1000, "{} is empty", path.display());
    }
}
