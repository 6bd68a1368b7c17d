//! Shared setup of the agent tests: a fake site and a client config built from it.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use cmg_agent::testing::{FakeSite, BULK_TOKEN};
use cmg_agent::{Agent, Config, ManualClock};

/// Which credential the client has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cred {
    Certificate,
    Token,
}

/// The client.toml text for a client of `site`, state in `dir/state`.
pub fn config_text(
    site: &FakeSite,
    dir: &Path,
    cred: Cred,
    always_internet: bool,
    intranet_mp: &str,
) -> String {
    let q = |p: &Path| format!("{:?}", p.display().to_string());
    let credential = match cred {
        Cred::Certificate => format!(
            "certificate = {}\nkey = {}\n",
            q(&site.pki.client_cert),
            q(&site.pki.client_key)
        ),
        Cred::Token => {
            let f = dir.join("bulk.token");
            std::fs::write(&f, format!("{BULK_TOKEN}\n")).expect("write bulk token");
            format!("bulk_token_file = {}\n", q(&f))
        }
    };
    format!(
        "site = \"DEM\"\nintranet_mp = \"{intranet_mp}\"\nsite_url = \"{intranet_mp}\"\n\
         bootstrap_gateways = [\"{gw}\"]\nalways_internet = {always_internet}\n\
         state_dir = {state}\nsite_keys = {keys}\ntrusted_roots = [{root}]\n\
         [credential]\n{credential}\n[resolve]\n\"cmg.demo.test\" = \"{gaddr}\"\n\
         [timing]\nprobe_timeout = \"2s\"\nrequest_timeout = \"5s\"\nnetwork_settle = \"200ms\"\nretry_after = \"1s\"\n",
        gw = site.gateway_base(cred == Cred::Token),
        state = q(&dir.join("state")),
        keys = q(&site.site_keys),
        root = q(&site.pki.root_ca),
        gaddr = site.gateway,
    )
}

pub fn config(site: &FakeSite, dir: &Path, cred: Cred, always_internet: bool) -> Config {
    let mp = format!("http://{}", site.intranet);
    let text = config_text(site, dir, cred, always_internet, &mp);
    Config::from_toml(&dir.join("client.toml"), &text).expect("config")
}

/// An agent on a hand-moved clock.
pub fn agent(config: Config) -> (Agent, ManualClock) {
    let clock = ManualClock::new(SystemTime::now());
    let agent = Agent::open(config, Arc::new(clock.clone())).expect("open agent");
    (agent, clock)
}

#[allow(dead_code)]
pub const MINUTE: Duration = Duration::from_secs(60);

pub fn loopback() -> std::net::IpAddr {
    std::net::Ipv4Addr::LOCALHOST.into()
}
