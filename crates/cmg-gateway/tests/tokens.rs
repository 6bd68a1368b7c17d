//! Config validation of token settings (the token checker's own tests are unit tests
//! in `src/tokens/tests.rs`).

use std::path::{Path, PathBuf};

const GUID: &str = "6f1c3a7e-0b5d-4c2a-9e8f-1a2b3c4d5e6f";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../cmg-token/tests/fixtures")
        .join(name)
}

#[test]
fn server_auth_urls_need_token_settings() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = |tokens: &str| {
        format!(
            "instance = \"gw1\"\nservice_name = \"cmg.example.test\"\n\
             [listen]\nclient = \"127.0.0.1:0\"\n\
             [tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\n\
             [channel]\nsite_ca = [\"ca.pem\"]\n\
             [[published_url]]\nprefix = \"/CCM_Proxy_ServerAuth/72057594037927939/ccm_system_tokenauth\"\n\
             site = \"DEM\"\nmax_body_bytes = 1024\n{tokens}"
        )
    };
    let path = dir.path().join("gw.toml");
    let err = cmg_gateway::Config::from_toml(&path, &base("")).expect_err("no tokens");
    assert!(err.to_string().contains("tokens"), "{err}");

    std::fs::copy(
        fixture("site-key-1.pub.pem"),
        dir.path().join("site.pub.pem"),
    )
    .expect("copy");
    let ok = base(&format!(
        "[tokens]\nsite_guid = \"{GUID}\"\nsite_keys = [\"site.pub.pem\"]\n"
    ));
    let config = cmg_gateway::Config::from_toml(&path, &ok).expect("valid");
    assert!(config.tokens.site.is_some());

    let no_keys = base(&format!("[tokens]\nsite_guid = \"{GUID}\"\n"));
    let err = cmg_gateway::Config::from_toml(&path, &no_keys).expect_err("no keys");
    assert!(err.to_string().contains("tokens.site_keys"), "{err}");

    let http_issuer = base(
        "[[tokens.oidc]]\nissuer = \"http://login.example.com/tenant\"\naudiences = [\"api://cmg\"]\n",
    );
    let err = cmg_gateway::Config::from_toml(&path, &http_issuer).expect_err("http issuer");
    assert!(err.to_string().contains("https"), "{err}");
}
