//! Unit tests of connection point config loading.

use super::*;

/// A directory with a self-signed certificate and key usable as every PEM file.
fn pem_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("dir");
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["cp.test".to_owned()])
        .expect("params")
        .self_signed(&key)
        .expect("cert");
    std::fs::write(dir.path().join("c.pem"), cert.pem()).expect("write");
    cmg_core::private_file::write(&dir.path().join("k.pem"), key.serialize_pem().as_bytes())
        .expect("write");
    dir
}

fn parse(dir: &Path, extra: &str) -> Result<Config, ConfigError> {
    parse_with_top(dir, "", extra)
}

/// `top`: top-level keys (before the first table), `extra`: tables at the end.
fn parse_with_top(dir: &Path, top: &str, extra: &str) -> Result<Config, ConfigError> {
    let text = format!(
        "id = \"cp1\"\nsite = \"P01\"\nservice_name = \"cmg.test\"\ngateways = [\"127.0.0.1:1\"]\n{top}\n\
         [tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\ngateway_ca = [\"c.pem\"]\n\
         [[mapping]]\nexternal = \"/CCM_Proxy_MutualAuth/1/CCM_System\"\ninternal = \"http://mp/CCM_System\"\n{extra}"
    );
    Config::from_toml(&dir.join("cp.toml"), &text)
}

fn field_of(e: ConfigError) -> String {
    match e {
        ConfigError::Invalid { field, .. } => field,
        other => panic!("not a field error: {other}"),
    }
}

#[test]
fn threads_default_to_the_cores_and_out_of_range_is_refused() {
    let dir = pem_dir();
    let c = parse(dir.path(), "").expect("valid");
    assert_eq!(c.threads, cmg_core::shards::Shards::default_count());
    let c = parse_with_top(dir.path(), "threads = 3", "").expect("valid");
    assert_eq!(c.threads, 3);
    for bad in ["threads = 0", "threads = 1025"] {
        let e = parse_with_top(dir.path(), bad, "").expect_err(bad);
        assert_eq!(field_of(e), "threads", "{bad}");
    }
}

#[test]
fn site_api_defaults_and_the_channel_certificate() {
    let dir = pem_dir();
    let c = parse(
        dir.path(),
        "[site_api]\nurl = \"https://site.test:8443\"\ngateway = \"gw1\"\nca = [\"c.pem\"]\n",
    )
    .expect("valid");
    let s = c.site_api.expect("site_api");
    assert_eq!(
        s.url.authority().map(|a| a.as_str()),
        Some("site.test:8443")
    );
    assert_eq!(s.client.cert, dir.path().join("c.pem"));
    assert_eq!(s.wait, Duration::from_secs(30));
    assert_eq!(s.report_interval, Duration::from_secs(300));
    assert!(matches!(c.settings, Some(SettingsSource::Site)));
}

#[test]
fn site_api_refusals_name_the_field() {
    let dir = pem_dir();
    let base = "gateway = \"gw1\"\nca = [\"c.pem\"]\n";
    let cases = [
        (
            format!("[site_api]\nurl = \"http://site.test\"\n{base}"),
            "site_api.url",
        ),
        (
            format!("[site_api]\nurl = \"https://site.test/api\"\n{base}"),
            "site_api.url",
        ),
        (
            "[site_api]\nurl = \"https://s.test\"\ngateway = \"a/b\"\nca = [\"c.pem\"]\n".into(),
            "site_api.gateway",
        ),
        (
            "[site_api]\nurl = \"https://s.test\"\ngateway = \"g\"\nca = []\n".into(),
            "site_api.ca",
        ),
        (
            format!("[site_api]\nurl = \"https://s.test\"\n{base}cert = \"c.pem\"\n"),
            "site_api.key",
        ),
        (
            format!("[site_api]\nurl = \"https://s.test\"\n{base}report_interval = \"0s\"\n"),
            "site_api.report_interval",
        ),
        (
            format!(
                "[settings]\nbundle_file = \"b.jws\"\n[site_api]\nurl = \"https://s.test\"\n{base}"
            ),
            "settings",
        ),
    ];
    for (extra, field) in cases {
        let e = parse(dir.path(), &extra).expect_err(&extra);
        let text = e.to_string();
        assert!(text.contains("cp.toml"), "{text}");
        assert_eq!(field_of(e), field, "{extra}");
    }
    let e = parse(
        dir.path(),
        "[site_api]\nurl = \"https://s.test\"\ngateway = \"g\"\nca = [\"c.pem\"]\nsurprise = 1\n",
    )
    .expect_err("unknown field");
    assert!(e.to_string().contains("surprise"), "{e}");
}

#[test]
fn site_service_mappings_need_a_site_api() {
    let dir = pem_dir();
    let sts = "[[mapping]]\nexternal = \"/CCM_Proxy_ServerAuth/1/CCM_STS\"\ninternal = \"cmg-site:/api/v1/sts\"\n";
    let e = parse(dir.path(), sts).expect_err("no [site_api]");
    assert!(e.to_string().contains("needs a [site_api]"), "{e}");
    assert_eq!(field_of(e), "mapping[1].internal");
    let site = "[site_api]\nurl = \"https://s.test\"\ngateway = \"g\"\nca = [\"c.pem\"]\n";
    let bad = "[[mapping]]\nexternal = \"/CCM_Proxy_ServerAuth/1/CCM_STS\"\ninternal = \"cmg-site:api\"\n";
    let e = parse(dir.path(), &format!("{bad}{site}")).expect_err("no leading slash");
    assert_eq!(field_of(e), "mapping[1].internal");
    let c = parse(dir.path(), &format!("{sts}{site}")).expect("valid");
    assert_eq!(c.mappings.len(), 2);
}

#[test]
fn several_site_urls_as_a_list_or_comma_separated() {
    let dir = pem_dir();
    let tail = "gateway = \"gw1\"\nca = [\"c.pem\"]\n";
    for urls in [
        "url = [\"https://site-a.test:8443\", \"https://site-b.test:8443\"]",
        "url = \"https://site-a.test:8443, https://site-b.test:8443\"",
    ] {
        let c = parse(dir.path(), &format!("[site_api]\n{urls}\n{tail}")).expect(urls);
        let s = c.site_api.expect("site_api");
        assert_eq!(s.url.to_string(), "https://site-a.test:8443/");
        let rest: Vec<String> = s.fallback_urls.iter().map(ToString::to_string).collect();
        assert_eq!(rest, ["https://site-b.test:8443/"], "{urls}");
    }
    let e = parse(
        dir.path(),
        &format!("[site_api]\nurl = [\"https://a.test\", \"http://b.test\"]\n{tail}"),
    )
    .expect_err("http");
    assert_eq!(field_of(e), "site_api.url");
}

#[test]
fn proxy_from_the_config_or_the_environment() {
    let dir = pem_dir();
    let c = parse_with_top(
        dir.path(),
        "",
        "[proxy]\nurl = \"http://proxy.corp.test:3128\"\nno_proxy = [\"10.0.0.0/8\"]\n",
    )
    .expect("valid");
    match &c.proxy {
        ProxySetting::Via(p) => {
            assert_eq!(p.addr(), "proxy.corp.test:3128");
            assert!(!p.applies_to("10.1.1.1"));
        }
        other => panic!("{other:?}"),
    }
    assert!(
        c.proxy_from_env(|_| Some("http://other:1".into()))
            .expect("proxy")
            .is_some_and(|p| p.addr() == "proxy.corp.test:3128"),
        "the config wins"
    );
    let c = parse(dir.path(), "[proxy]\nurl = \"none\"\n").expect("direct");
    assert!(c
        .proxy_from_env(|_| Some("http://other:1".into()))
        .expect("none")
        .is_none());
    let c = parse(dir.path(), "").expect("environment");
    assert_eq!(
        c.proxy_from_env(|k| (k == "HTTPS_PROXY").then(|| "http://envproxy:8080".into()))
            .expect("env")
            .map(|p| p.addr().to_owned()),
        Some("envproxy:8080".to_owned())
    );
    let e = parse(dir.path(), "[proxy]\nurl = \"socks5://p:1\"\n").expect_err("socks");
    assert_eq!(field_of(e), "proxy");
}

#[cfg(unix)]
#[test]
fn a_bundle_file_others_may_read_is_refused() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = pem_dir();
    let settings = "[settings]\nbundle_file = \"b.jws\"\n";
    // Not written yet: fine, the poller waits for it.
    parse(dir.path(), settings).expect("no file yet");
    let file = dir.path().join("b.jws");
    cmg_core::private_file::write(&file, b"x").expect("write");
    parse(dir.path(), settings).expect("0600");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let e = parse(dir.path(), settings).expect_err("0644");
    let text = e.to_string();
    assert!(
        text.contains("b.jws") && text.contains("chmod 600"),
        "names the file and the fix: {text}"
    );
    assert_eq!(field_of(e), "settings.bundle_file");
}
