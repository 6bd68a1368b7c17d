//! Config loading: every file under `tests/fixtures/config/valid` loads; every one
//! under `invalid` fails with an error that names the file and the field its first
//! line (`# expect: <text>`) announces. Defaults and resolution are checked in code.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

fn fixtures(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/config")
        .join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixture dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures in {}", dir.display());
    files
}

#[test]
fn valid_configs_load() {
    for path in fixtures("valid") {
        let config = Config::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
        let dir = path.parent().expect("dir");
        assert_eq!(config.tls.cert, dir.join("pki/server.pem"), "resolved");
        assert_eq!(config.channel.site_ca, vec![dir.join("pki/site-ca.pem")]);
    }
}

#[test]
fn invalid_configs_fail_naming_file_and_field() {
    for path in fixtures("invalid") {
        let text = std::fs::read_to_string(&path).expect("read");
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{}: first line must be '# expect: ...'", path.display()));
        let err = Config::from_file(&path).expect_err(&path.display().to_string());
        let msg = err.to_string();
        assert!(msg.contains(&*path.to_string_lossy()), "{msg}");
        assert!(msg.contains(expect), "{}: {msg}", path.display());
    }
}

#[test]
fn defaults_apply_where_the_file_is_silent() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config/valid/minimal.toml");
    let c = Config::from_file(&path).expect("valid");
    assert_eq!(c.service_name, "cmg.example.test", "lower-cased");
    assert_eq!(c.tls.min_version, MinTls::Tls12);
    assert_eq!(c.tls.reload_interval, Some(Duration::from_secs(30)));
    assert!(
        c.client_auth.verify_revocation,
        "revocation checking is on by default"
    );
    assert_eq!(
        c.limits.max_header_bytes,
        Limits::default().max_header_bytes
    );
    assert_eq!(c.channel.ping_interval, Duration::from_secs(1));
    assert_eq!(c.channel.ping_timeout, Duration::from_millis(1500));
    assert_eq!(c.reports, Reports::default());
    assert_eq!(c.drain_grace, DEFAULT_DRAIN_GRACE);
    assert!(c.settings.is_none() && !c.tokens.is_enabled() && !c.route_headers);
    assert!(c.published.is_empty());
    assert!(
        c.proxy_protocol.is_none(),
        "never guessed: off unless configured"
    );
}

#[test]
fn every_section_is_read() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config/valid/full.toml");
    let c = Config::from_file(&path).expect("valid");
    let dir = path.parent().expect("dir");
    assert_eq!(c.tls.reload_interval, None, "0s turns reloading off");
    assert_eq!(c.tls.min_version, MinTls::Tls13);
    assert_eq!(
        c.client_auth.revocation.cache_dir,
        Some(dir.join("crl-cache"))
    );
    assert!(!c.client_auth.revocation.ocsp);
    assert_eq!(c.channel.ping_timeout, Duration::from_secs(3));
    assert_eq!(c.limits.max_connections, 1000);
    assert_eq!(c.reports.interval, Duration::from_secs(10));
    assert_eq!(c.drain_grace, Duration::from_secs(30));
    assert_eq!(c.threads, 2);
    let settings = c.settings.expect("settings");
    assert_eq!(settings.last_good, dir.join("state/bundle.jws"));
    assert_eq!(settings.site_keys_pem.len(), 1);
    assert!(c.tokens.site.is_some());
    assert_eq!(c.tokens.oidc.len(), 1);
    assert_eq!(c.tokens.cache_max_age, Duration::from_secs(120));
    assert_eq!(c.published.len(), 2);
    assert!(c.route_headers);
    assert!(c.listen.channel.is_some() && c.listen.admin.is_some());
    let proxy = c.proxy_protocol.expect("proxy protocol");
    assert!(proxy.client && proxy.channel);
    assert_eq!(proxy.trusted.len(), 3);
    assert!(proxy.trusted[1].contains(&"192.0.2.10".parse::<std::net::IpAddr>().expect("ip")));
    assert_eq!(proxy.header_timeout, Duration::from_secs(3));
}

#[test]
fn text_and_file_agree() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config/valid/full.toml");
    let text = std::fs::read_to_string(&path).expect("read");
    let a = Config::from_file(&path).expect("file");
    let b = Config::from_toml(&path, &text).expect("text");
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
}
