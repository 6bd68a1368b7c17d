//! `client.toml` validation: unknown fields refused, errors name the file and field.

use std::path::Path;

use cmg_agent::{Config, Credential};

fn keys(dir: &Path) -> String {
    let guid: cmg_token::SiteGuid = "6f1c2b3a-1111-4222-8333-444455556666"
        .parse()
        .expect("guid");
    let pem = cmg_token::site::generate_key_pem().expect("key");
    let signer = cmg_token::SiteSigner::from_pem(pem.as_bytes(), &guid).expect("signer");
    let p = dir.join("site-keys.pem");
    std::fs::write(&p, signer.public_key_pem()).expect("write");
    "site-keys.pem".into()
}

fn base(dir: &Path) -> String {
    format!(
        "site = \"DEM\"\nintranet_mp = \"http://mp.corp.example\"\nsite_url = \"https://site.corp.example:8443\"\n\
         bootstrap_gateways = [\"cmg.example.com/CCM_Proxy_MutualAuth/72057594037927939\"]\n\
         state_dir = \"state\"\nsite_keys = \"{}\"\ntrusted_roots = [\"root.pem\"]\n",
        keys(dir)
    )
}

fn load(dir: &Path, text: &str) -> Result<Config, String> {
    Config::from_toml(&dir.join("client.toml"), text).map_err(|e| e.to_string())
}

#[test]
fn a_certificate_and_a_token_config_load_with_defaults() {
    let dir = tempfile::tempdir().expect("tempdir");
    let c = load(
        dir.path(),
        &format!(
            "{}[credential]\ncertificate = \"c.pem\"\nkey = \"k.pem\"\n",
            base(dir.path())
        ),
    )
    .expect("ok");
    assert_eq!(
        c.credential,
        Credential::Certificate {
            chain: dir.path().join("c.pem"),
            key: dir.path().join("k.pem")
        }
    );
    assert_eq!(c.state_dir, dir.path().join("state"));
    assert!(!c.always_internet);
    assert_eq!(c.timing, cmg_agent::Timing::default());
    assert_eq!(
        c.bootstrap_gateways[0].token.to_string(),
        "https://cmg.example.com/CCM_Proxy_ServerAuth/72057594037927939"
    );
    let t = load(
        dir.path(),
        &format!("{}always_internet = true\n[credential]\nbulk_token_file = \"bulk.token\"\n[timing]\nprobe_timeout = \"500ms\"\n", base(dir.path())),
    )
    .expect("ok");
    assert!(t.credential.is_token() && t.always_internet);
    assert_eq!(
        t.timing.probe_timeout,
        std::time::Duration::from_millis(500)
    );
}

#[test]
fn bad_configs_name_the_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = base(dir.path());
    let cert = "[credential]\ncertificate = \"c.pem\"\nkey = \"k.pem\"\n";
    for (text, field) in [
        (format!("{b}colour = 1\n{cert}"), "colour"),
        (
            format!("{b}[credential]\ncertificate = \"c.pem\"\n"),
            "credential",
        ),
        (
            format!("{b}[credential]\ncertificate = \"c\"\nkey = \"k\"\nbulk_token_file = \"b\"\n"),
            "credential",
        ),
        (
            format!("{}{cert}", b.replace("http://mp.corp.example", "ftp://mp")),
            "intranet_mp",
        ),
        (
            format!(
                "{}{cert}",
                b.replace(
                    "cmg.example.com/CCM_Proxy_MutualAuth/72057594037927939",
                    "cmg.example.com"
                )
            ),
            "bootstrap_gateways",
        ),
        (
            format!("{}{cert}", b.replace("site = \"DEM\"", "site = \"D E\"")),
            "site",
        ),
        (
            format!("{}{cert}", b.replace("site-keys.pem", "missing.pem")),
            "site_keys",
        ),
        (
            format!("{b}{cert}[timing]\nprobe_timeout = \"0s\"\n"),
            "timing.probe_timeout",
        ),
    ] {
        let err = load(dir.path(), &text).expect_err(field);
        assert!(
            err.contains(field) && err.contains("client.toml"),
            "{field}: {err}"
        );
    }
    // A key file that holds no RSA public key.
    std::fs::write(dir.path().join("site-keys.pem"), "not a key").expect("write");
    let err = load(dir.path(), &format!("{}{cert}", b)).expect_err("bad key");
    assert!(err.contains("site_keys"), "{err}");
}
