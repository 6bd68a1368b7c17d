//! The binary as a user runs it: `cmg demo --once`, `cmg cert demo-pki`, `cmg cert
//! verify` (and that it agrees with a running gateway on every demo certificate),
//! config errors that name the file and the field, and the help of `cmg site`.

use std::path::Path;
use std::process::{Command, Output};

use cmg_cluster::clients::Cert;
use cmg_cluster::{Cluster, ClusterSpec, DemoContract};

fn cmg(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cmg"))
        .args(args)
        .output()
        .expect("run the cmg binary")
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn demo_once_passes_every_check_and_writes_the_contract() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = cmg(&[
        "demo",
        "--once",
        "--dir",
        dir.path().to_str().expect("utf-8 path"),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(" 0 failed"), "{stdout}");
    // Instances are named by the site's export: `<gateway>-<n>`.
    for (gw, cp) in [
        ("cmg1-1", "cp1"),
        ("cmg1-1", "cp2"),
        ("cmg1-2", "cp1"),
        ("cmg1-2", "cp2"),
    ] {
        assert!(
            stdout.contains(&format!("instance={gw} connection_point={cp}")),
            "no request through {gw} and {cp}:\n{stdout}"
        );
    }

    // The devices: one decided intranet, two internet (a certificate and a token
    // client), all got policy, the internet ones' through a gateway instance and
    // connection point.
    for line in [
        "[ ok ] client laptop-intranet: connection intranet",
        "[ ok ] client laptop-intranet: received policy",
        "[ ok ] client laptop-intranet: policy straight from the MP",
        "[ ok ] client laptop-internet: connection internet",
        "[ ok ] client laptop-internet: received policy",
        "[ ok ] client laptop-internet: policy through the gateway",
        "[ ok ] client tablet-token: connection internet",
        "[ ok ] client tablet-token: received policy",
        "[ ok ] client tablet-token: policy through the gateway",
    ] {
        assert!(stdout.contains(line), "no `{line}`:\n{stdout}");
    }
    assert!(
        stdout.contains("instance cmg1-2, connection point cp"),
        "{stdout}"
    );

    let json = std::fs::read_to_string(dir.path().join("demo.json")).expect("demo.json");
    let c: DemoContract = serde_json::from_str(&json).expect("demo.json matches the contract");
    assert_eq!(c.service_name, "cmg.demo.test");
    let clients: Vec<(&str, String)> = c
        .clients
        .iter()
        .map(|d| (d.name.as_str(), d.expect.to_string()))
        .collect();
    assert_eq!(
        clients,
        [
            ("laptop-intranet", "intranet".to_string()),
            ("laptop-internet", "internet".to_string()),
            ("tablet-token", "internet".to_string())
        ]
    );
    for d in &c.clients {
        assert!(
            d.config.is_file() && d.state_dir.join("state.json").is_file(),
            "{d:?}"
        );
    }
    assert_eq!(c.gateways.len(), 2);
    assert_eq!(c.mp_role_id, "72057594037927939");
    for key in ["ccm_system", "ccm_incoming", "sms_mp"] {
        assert!(
            c.urls[key].starts_with("/CCM_Proxy_MutualAuth/72057594037927939/"),
            "{key}"
        );
        assert!(c.max_body[key] > 0, "{key}");
    }
    for p in [
        &c.pki.server_ca,
        &c.pki.client_cert,
        &c.pki.client_key,
        &c.pki.untrusted_client_cert,
        &c.pki.untrusted_client_key,
        &c.pki.expired_client_cert,
        &c.pki.expired_client_key,
    ] {
        assert!(p.is_absolute() && p.exists(), "{}", p.display());
    }
    // The site that built the demo: its API, CA, admin token and database.
    let site = c.site.as_ref().expect("demo.json names the site");
    assert!(
        site.api_url.starts_with("https://127.0.0.1:"),
        "{}",
        site.api_url
    );
    assert_eq!(site.gateway, "cmg1");
    for p in [&site.ca, &site.admin_token_file, &site.database] {
        assert!(p.is_absolute() && p.exists(), "{}", p.display());
    }
    // The self-check's requests are in the journal the contract points at.
    let journal = cmg_mp::read_journal(&c.mp_journal).expect("journal");
    assert!(journal
        .iter()
        .any(|e| e.method == "CCM_POST" && e.complete && e.status == 200));
    // The access log got one line per request.
    let access =
        std::fs::read_to_string(dir.path().join("logs/CMGHttpHandler.log")).expect("access log");
    assert!(
        access.contains("CCM_POST") && access.contains("connection_point=cp"),
        "{access}"
    );
}

#[test]
fn config_errors_name_the_file_and_the_field_and_exit_78() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (role, file) in [
        (
            "gateway",
            "instance = \"gw1\"\nservice_name = \"x.test\"\nbogus = 1\n",
        ),
        ("connector", "id = \"cp1\"\nbogus = 1\n"),
        ("mp", "listen = \"127.0.0.1:0\"\nbogus = 1\n"),
    ] {
        let path = dir.path().join(format!("{role}.toml"));
        std::fs::write(&path, file).expect("write");
        let out = cmg(&[role, "--config", path.to_str().expect("utf-8")]);
        // 78 is EX_CONFIG: the systemd units do not restart on it.
        assert_eq!(out.status.code(), Some(78), "{role}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("{role}.toml")) && err.contains("bogus"),
            "{err}"
        );
    }
}

/// `Type=notify`: a role says READY=1 once it has bound, STOPPING=1 when SIGTERM
/// starts its drain, on the datagram socket systemd names in `NOTIFY_SOCKET`.
#[test]
fn a_role_tells_systemd_when_it_is_ready_and_when_it_stops() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sock_path = dir.path().join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).expect("bind");
    sock.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .expect("timeout");
    let config = dir.path().join("mp.toml");
    std::fs::write(&config, "listen = \"127.0.0.1:0\"\ndata_dir = \"mp\"\n").expect("write");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cmg"))
        .args(["mp", "--config"])
        .arg(&config)
        .env("NOTIFY_SOCKET", &sock_path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start cmg mp");
    let mut buf = [0u8; 512];
    let n = sock.recv(&mut buf).expect("READY=1 within 30 s");
    let ready = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready}");
    assert!(
        ready.contains("STATUS=management point on 127.0.0.1:"),
        "{ready}"
    );
    let term = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(term.success());
    let n = sock.recv(&mut buf).expect("STOPPING=1 within 30 s");
    let stopping = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(stopping.lines().any(|l| l == "STOPPING=1"), "{stopping}");
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(0));
}

fn verify(pki: &Path, leaf: &Path, extra: &[&str]) -> Output {
    let root = pki.join("root-ca.pem");
    let inter = pki.join("intermediate-ca.pem");
    let mut args = vec![
        "cert",
        "verify",
        "--trust",
        root.to_str().expect("utf-8"),
        "--intermediate",
        inter.to_str().expect("utf-8"),
    ];
    args.extend_from_slice(extra);
    args.push(leaf.to_str().expect("utf-8"));
    cmg(&args)
}

/// `cmg cert verify` and a running gateway give the same verdict on every demo client
/// certificate: the gateway accepts the TLS handshake exactly when verify exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cert_verify_agrees_with_the_gateway() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cluster = Cluster::start(ClusterSpec::demo(dir.path().to_path_buf()))
        .await
        .expect("cluster");
    let pki = dir.path().canonicalize().expect("dir").join("pki");
    let p = cluster.pki.clone();
    let cases = [
        (Cert::Valid, p.client_cert.clone(), true),
        (Cert::Expired, p.expired_client_cert.clone(), false),
        (Cert::NoClientAuthEku, p.no_eku_client_cert.clone(), false),
        (Cert::UntrustedRoot, p.untrusted_client_cert.clone(), false),
        // The demo gateways fetch the demo's CRLs; so does verify with --crl-fetch.
        (Cert::Revoked, p.revoked_client_cert.clone(), false),
    ];
    let mplist = format!(
        "{}/.sms_aut?MPLIST2",
        cmg_cluster::spec::external_prefix("SMS_MP")
    );
    for (kind, leaf, expect_ok) in cases {
        let out = verify(&pki, &leaf, &["--purpose", "client", "--crl-fetch"]);
        let cli_ok = out.status.success();
        assert_eq!(cli_ok, expect_ok, "{kind:?}: {}", text(&out));
        let client = cluster.client(0, kind, true).expect("client");
        let gateway_ok = match client.get(&mplist).await {
            Ok(resp) => resp.status().is_success(),
            Err(_) => false,
        };
        assert_eq!(
            cli_ok, gateway_ok,
            "{kind:?}: cmg cert verify and the gateway disagree"
        );
    }
    // With the CRL file, verify rejects the revoked certificate and says why.
    let crl = p.crl.to_str().expect("utf-8").to_string();
    let out = verify(&pki, &p.revoked_client_cert, &["--crl", &crl]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("revoked"),
        "{}",
        text(&out)
    );
    // --json: a stable object naming the failed check and its code.
    let out = verify(&pki, &p.revoked_client_cert, &["--crl-fetch", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["ok"], false);
    assert_eq!(v["check"], "revocation");
    assert_eq!(v["code"], "revoked");
    let out = verify(&pki, &p.client_cert, &["--crl-fetch", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(
        (v["ok"].clone(), v["revocation"].clone()),
        (true.into(), "checked".into())
    );
    // A CRL file that covers the leaf but not its intermediate: status unknown.
    // (crl.pem holds the intermediate's CRL first, then the root's.)
    let bundle = std::fs::read_to_string(&p.crl).expect("read crl.pem");
    let end = "-----END X509 CRL-----\n";
    let first = &bundle[..bundle.find(end).expect("a CRL") + end.len()];
    let only = pki.join("intermediate-only.pem");
    std::fs::write(&only, first).expect("write");
    let only = only.to_str().expect("utf-8").to_string();
    let out = verify(&pki, &p.client_cert, &["--crl", &only, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["code"], "revocation_unknown", "{}", text(&out));
    // Unusable input is exit 2 and check "input".
    let out = verify(&pki, Path::new("/nonexistent.pem"), &["--json"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(
        (v["check"].clone(), v["code"].clone()),
        ("input".into(), "bad_input".into())
    );
    // The server certificate is valid for its name and the server purpose only.
    let out = verify(
        &pki,
        &p.server_cert,
        &["--purpose", "server", "--name", "cmg.demo.test"],
    );
    assert!(out.status.success(), "{}", text(&out));
    let out = verify(
        &pki,
        &p.server_cert,
        &["--purpose", "server", "--name", "other.test"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    cluster.shutdown().await;
}

#[test]
fn demo_pki_writes_every_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = cmg(&["cert", "demo-pki", dir.path().to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", text(&out));
    for f in [
        "root-ca.pem",
        "intermediate-ca.pem",
        "site-ca.pem",
        "client.pem",
        "client.key",
        "crl.pem",
    ] {
        assert!(dir.path().join(f).exists(), "{f} missing: {}", text(&out));
    }
}

/// Runs `cmg` with `stdin` as standard input.
fn cmg_stdin(args: &[&str], stdin: &str) -> Output {
    use std::io::Write as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_cmg"))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run the cmg binary");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("wait for cmg")
}

#[test]
fn token_keygen_new_verify_and_block() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_str().expect("utf-8 path");
    let out = cmg(&["token", "keygen", d]);
    assert!(out.status.success(), "{}", text(&out));
    let key = dir.path().join("site-signing.pem");
    let public = dir.path().join("site-signing.pub.pem");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key).expect("key").permissions().mode();
        assert_eq!(mode & 0o077, 0, "private key readable by others: {mode:o}");
    }
    // keygen never overwrites a key.
    assert!(!cmg(&["token", "keygen", d]).status.success());

    let guid = "6f1c3a7e-0b5d-4c2a-9e8f-1a2b3c4d5e6f";
    let (k, p) = (
        key.to_str().expect("utf-8"),
        public.to_str().expect("utf-8"),
    );
    let out = cmg(&[
        "token",
        "new",
        "--key",
        k,
        "--site-guid",
        guid,
        "--lifetime",
        "60",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tracking = stderr
        .split("tracking ID ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .expect("tracking ID on stderr")
        .to_owned();
    assert!(!stderr.contains(&token), "token on stderr");

    let verify = |blocked: &[&str]| {
        let mut args = vec!["token", "verify", "--key", p, "--site-guid", guid];
        for b in blocked {
            args.extend(["--blocked", b]);
        }
        cmg_stdin(&args, &token)
    };
    let out = verify(&[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("valid BulkRegistration token"));
    let out = verify(&[&tracking]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("CMGService_Invalid_Token/token_blocked"));

    // Over the 7-day maximum: refused, nothing printed on stdout.
    let out = cmg(&[
        "token",
        "new",
        "--key",
        k,
        "--site-guid",
        guid,
        "--lifetime",
        "20000",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(out.stdout.is_empty());
}

/// The subcommands `cmg ARGS --help` lists, with their help lines (`help` left out).
fn subcommands(args: &[&str]) -> Vec<(String, String)> {
    let mut all = args.to_vec();
    all.push("--help");
    let out = cmg(&all);
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter_map(|l| {
            let (name, help) = l.trim().split_once(' ')?;
            Some((name.to_owned(), help.trim().to_owned()))
        })
        .filter(|(name, _)| name != "help")
        .collect()
}

#[test]
fn every_site_subcommand_has_its_own_help_line() {
    let mut seen: Vec<(String, String)> = Vec::new();
    let mut groups = vec![vec!["site".to_owned()]];
    while let Some(group) = groups.pop() {
        let args: Vec<&str> = group.iter().map(String::as_str).collect();
        let listed = subcommands(&args);
        assert!(
            !listed.is_empty(),
            "`cmg {}` lists no subcommand",
            args.join(" ")
        );
        for (name, help) in listed {
            let path = format!("{} {name}", args.join(" "));
            assert!(!help.is_empty(), "`cmg {path}` has no help line");
            if let Some((other, _)) = seen.iter().find(|(_, h)| *h == help) {
                panic!("`cmg {path}` and `cmg {other}` share the help line {help:?}");
            }
            let mut sub = group.clone();
            sub.push(name);
            let mut help_args: Vec<&str> = sub.iter().map(String::as_str).collect();
            help_args.push("--help");
            let out = cmg(&help_args);
            let page = String::from_utf8_lossy(&out.stdout);
            // `--json`, where a command has it, says what it prints.
            // Its help follows on the same line (short form) or the next (long form).
            if let Some(i) = page.find("      --json") {
                let mut after = page[i + "      --json".len()..].lines();
                let same_line = after.next().unwrap_or("").trim();
                let next_line = after.next().unwrap_or("").trim();
                let described =
                    !same_line.is_empty() || (!next_line.is_empty() && !next_line.starts_with('-'));
                assert!(described, "`cmg {path} --json` has no help:\n{page}");
            }
            if page.contains("\nCommands:\n") {
                groups.push(sub);
            }
            seen.push((path, help));
        }
    }
    // Every group and leaf of the tree, so a new one is not left out by mistake.
    assert!(seen.len() >= 40, "{} subcommands: {seen:?}", seen.len());
}
