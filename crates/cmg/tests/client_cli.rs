//! `cmg client status`: the state an agent left, as text and JSON, from the binary.

use std::process::Command;
use std::sync::Arc;

use cmg_agent::testing::FakeSite;
use cmg_agent::{Agent, Config, SystemClock};

#[tokio::test]
async fn status_shows_connection_mp_candidates_and_location() {
    let dir = tempfile::tempdir().expect("tempdir");
    let lo = std::net::Ipv4Addr::LOCALHOST.into();
    let site = FakeSite::start(dir.path(), lo, lo).await;
    let q = |p: &std::path::Path| format!("{:?}", p.display().to_string());
    let text = format!(
        "site = \"DEM\"\nintranet_mp = \"http://{i}\"\nsite_url = \"http://{i}\"\n\
         state_dir = \"state\"\nsite_keys = {keys}\ntrusted_roots = [{root}]\n\
         [credential]\ncertificate = {cert}\nkey = {key}\n[resolve]\n\"cmg.demo.test\" = \"{g}\"\n",
        i = site.intranet,
        g = site.gateway,
        keys = q(&site.site_keys),
        root = q(&site.pki.root_ca),
        cert = q(&site.pki.client_cert),
        key = q(&site.pki.client_key),
    );
    let path = dir.path().join("client.toml");
    std::fs::write(&path, &text).expect("write");
    let cmg = env!("CARGO_BIN_EXE_cmg");

    // Before the agent ever ran: said so, not an error.
    let out = Command::new(cmg)
        .args(["client", "status", "--config"])
        .arg(&path)
        .output()
        .expect("run");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("the agent has not run"));

    let mut agent = Agent::open(
        Config::from_file(&path).expect("config"),
        Arc::new(SystemClock),
    )
    .expect("open");
    assert!(agent.cycle().await, "{:?}", agent.state().errors);
    drop(agent);

    let out = Command::new(cmg)
        .args(["client", "status", "--json", "--config"])
        .arg(&path)
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["site"], "DEM");
    assert_eq!(v["connection"]["type"], "intranet");
    assert_eq!(v["management_point"]["name"], "MP1");
    assert_eq!(v["management_point"]["type"], "Intranet");
    assert_eq!(v["management_point"]["locality"], 3);
    let candidates = v["candidates"].as_array().expect("candidates");
    assert_eq!(candidates.len(), 2);
    assert_eq!(candidates[1]["type"], "Internet");
    assert_eq!(candidates[1]["failures"], 0);
    assert!(v["last_location_refresh"].is_string());
    assert!(v["token_expiry"].is_string());
    assert!(v["last_policy_download"].is_string());

    let out = Command::new(cmg)
        .args(["client", "status", "--config"])
        .arg(&path)
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Currently intranet") && text.contains("MP1"),
        "{text}"
    );

    // A foreign state file: a clear error, exit 2.
    cmg_agent::State::new("XYZ", "d".into())
        .save(&dir.path().join("state"))
        .expect("save");
    let out = Command::new(cmg)
        .args(["client", "status", "--config"])
        .arg(&path)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("site `XYZ`"));
    site.stop().await;
}
