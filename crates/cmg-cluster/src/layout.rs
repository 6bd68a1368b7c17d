//! Writes the TOML config files of every role, the same files an administrator would
//! write by hand. The cluster then starts each role from its file, so the demo also
//! exercises config loading and validation.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cmg_pki::demo::DemoPkiPaths;

use crate::spec::{
    external_prefix, token_prefix, ClusterSpec, ENDPOINTS, GATEWAY_NAME, SERVICE_NAME, SITE,
    SITE_GUID, TOKEN_ENDPOINTS,
};
use crate::tokens::DemoTokens;

pub(crate) fn q(p: &Path) -> String {
    // TOML basic strings: escape backslashes and quotes.
    format!(
        "\"{}\"",
        p.display()
            .to_string()
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
    )
}

/// `mp.toml`: its policy bodies are the files of `policy/` ([`POLICY`]).
pub fn mp(dir: &Path) -> String {
    format!(
        "# Reference management point (an internal role): plain HTTP on loopback.\n\
         listen = \"127.0.0.1:0\"\n\
         data_dir = {}\n\n[policy]\ndir = {}\n",
        q(&dir.join("mp")),
        q(&dir.join("policy"))
    )
}

/// The policy the demo's management point serves: file name (the policy ID), body.
pub const POLICY: [(&str, &str); 2] = [
    (
        "CMG-Baseline",
        "<Policy id=\"CMG-Baseline\"><Setting name=\"ClientAlwaysOnInternet\" value=\"0\"/></Policy>\n",
    ),
    (
        "CMG-Inventory",
        "<Policy id=\"CMG-Inventory\"><Schedule hardware=\"7d\" software=\"7d\"/></Policy>\n",
    ),
];

/// Writes [`POLICY`] into `dir/policy/`.
pub fn write_policy(dir: &Path) -> std::io::Result<()> {
    let policy = dir.join("policy");
    std::fs::create_dir_all(&policy)?;
    for (id, body) in POLICY {
        std::fs::write(policy.join(id), body)?;
    }
    Ok(())
}

/// `gwN.toml`. `listen` gives the client, channel and admin addresses (port 0: any);
/// route headers, PING and report intervals come from `spec`.
pub fn gateway(
    name: &str,
    pki: &DemoPkiPaths,
    tokens: &DemoTokens,
    [last_good, instance_key]: [&Path; 2],
    listen: [SocketAddr; 3],
    spec: &ClusterSpec,
) -> String {
    let (route_headers, ping, report_interval) =
        (spec.route_headers, spec.ping, spec.report_interval);
    let mut s = String::new();
    let _ = writeln!(s, "# Gateway instance {name}.");
    let _ = writeln!(s, "instance = \"{name}\"\nservice_name = \"{SERVICE_NAME}\"\nroute_headers = {route_headers}\n");
    let _ = writeln!(
        s,
        "[listen]\nclient = \"{}\"\nchannel = \"{}\"\nadmin = \"{}\"\n",
        listen[0], listen[1], listen[2]
    );
    let _ = writeln!(
        s,
        "[tls]\ncert = {}\nkey = {}\nmin_version = \"1.2\"\n",
        q(&pki.server_cert),
        q(&pki.server_key)
    );
    let _ = writeln!(
        s,
        "[client_auth]\ntrusted_roots = [{}]\ntrusted_intermediates = [{}]",
        q(&pki.root_ca),
        q(&pki.intermediate_ca)
    );
    // Revocation: CRLs fetched from the certificates' distribution point (the demo
    // serves it on loopback), kept on disk next to this file.
    let _ = writeln!(
        s,
        "verify_revocation = true\ncrl_cache_dir = \"crl-cache-{name}\"\n"
    );
    let _ = writeln!(
        s,
        "[channel]\nsite_ca = [{}]\nping_interval = \"{}ms\"\nping_timeout = \"{}ms\"\n",
        q(&pki.site_ca),
        ping.as_millis(),
        ping.as_millis()
    );
    for (_, segment, max) in ENDPOINTS {
        let _ = writeln!(
            s,
            "[[published_url]]\nprefix = \"{}\"\nsite = \"{SITE}\"\nmax_body_bytes = {max}\n",
            external_prefix(segment)
        );
    }
    for (_, segment, max) in TOKEN_ENDPOINTS {
        let _ = writeln!(
            s,
            "[[published_url]]\nprefix = \"{}\"\nsite = \"{SITE}\"\nmax_body_bytes = {max}\n",
            token_prefix(segment)
        );
    }
    let _ = writeln!(
        s,
        "[tokens]\nsite_guid = \"{SITE_GUID}\"\nsite_keys = [{}]\n",
        q(&tokens.public_key)
    );
    let _ = writeln!(
        s,
        "# Settings bundles from the site, relayed by the connection points.\n\
         [settings]\ngateway = \"{GATEWAY_NAME}\"\nsite_keys = [{}]\nlast_good = {}\ninstance_key = {}\n",
        q(&tokens.public_key),
        q(last_good),
        q(instance_key)
    );
    let _ = writeln!(
        s,
        "# Traffic snapshots posted to the connection points.\n[reports]\ninterval = \"{}ms\"\n",
        report_interval.as_millis()
    );
    s
}

/// `cpN.toml` for connection point `index` (0-based) of the demo PKI.
pub fn connector(
    pki: &DemoPkiPaths,
    index: usize,
    gateways: &[SocketAddr],
    mp: SocketAddr,
    ping: Duration,
    bundle_file: &Path,
) -> String {
    let cp = &pki.connectors[index];
    let mut s = String::new();
    let _ = writeln!(s, "# Connection point {}.", cp.id);
    let _ = writeln!(
        s,
        "id = \"{}\"\nsite = \"{SITE}\"\nservice_name = \"{SERVICE_NAME}\"",
        cp.id
    );
    let list: Vec<String> = gateways.iter().map(|g| format!("\"{g}\"")).collect();
    let _ = writeln!(s, "gateways = [{}]\n", list.join(", "));
    let _ = writeln!(
        s,
        "[tls]\ncert = {}\nkey = {}\ngateway_ca = [{}]\n",
        q(&cp.cert),
        q(&cp.key),
        q(&pki.root_ca)
    );
    let _ = writeln!(
        s,
        "[timing]\nping_interval = \"{}ms\"\nping_timeout = \"{}ms\"\nbackoff_base = \"100ms\"\nbackoff_max = \"2s\"\n",
        ping.as_millis(),
        ping.as_millis()
    );
    for (_, segment, _) in ENDPOINTS {
        let _ = writeln!(
            s,
            "[[mapping]]\nexternal = \"{}\"\ninternal = \"http://{mp}/{segment}\"\n",
            external_prefix(segment)
        );
    }
    for (_, segment, _) in TOKEN_ENDPOINTS {
        let _ = writeln!(
            s,
            "[[mapping]]\nexternal = \"{}\"\ninternal = \"http://{mp}/{segment}\"\n",
            token_prefix(segment)
        );
    }
    let _ = writeln!(
        s,
        "[settings]\nbundle_file = {}\npoll_interval = \"100ms\"\n",
        q(bundle_file)
    );
    s
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> std::io::Result<PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, text)?;
    Ok(path)
}
