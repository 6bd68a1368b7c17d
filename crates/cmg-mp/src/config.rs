//! [`Config`]: where the management point listens, keeps its data, and (optionally)
//! its HTTPS certificate, admin listener, the site it learns its management point list
//! from (`[site]`) and the directory of the policy it serves (`[policy]`). Read from TOML in two stages (`RawConfig`,
//! then validation).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cmg_core::config::{load_toml, resolve, ConfigError};
use serde::Deserialize;

/// A validated management point configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub listen: SocketAddr,
    /// Holds `journal.jsonl`, `incoming/` (uploads) and `tmp/` (spools, BITS parts).
    pub data_dir: PathBuf,
    /// Serve HTTPS (h2 and http/1.1 by ALPN) when set; plain HTTP/1.1 and h2c otherwise.
    /// The management point "HTTPS" client connection mode (003_abd7e3ff6c921ea3.txt,
    /// "Enable management point for HTTPS").
    pub tls: Option<TlsFiles>,
    /// The plain HTTP admin listener (`/metrics`, `/ready`, `/live`), when configured
    /// (`[admin] listen`): loopback or a private address.
    pub admin: Option<SocketAddr>,
    /// The site whose management point list `.sms_aut?MPLIST` answers with.
    pub site: Option<SiteLink>,
    /// The directory of policy bodies (`.sms_pol?assignments`, `.sms_pol?<id>`).
    pub policy_dir: Option<PathBuf>,
}

/// `[site]`: the site API and how often the list is read again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteLink {
    /// `https://host:port` of the site API.
    pub url: String,
    /// CA certificates the site's server certificate chains to (the site CA).
    pub ca: Vec<PathBuf>,
    /// How often the list is read again (default 5 minutes).
    pub refresh: Duration,
}

/// PEM files of the HTTPS server certificate chain and its private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: String,
    data_dir: PathBuf,
    #[serde(default)]
    tls: Option<RawTls>,
    #[serde(default)]
    admin: Option<RawAdmin>,
    #[serde(default)]
    site: Option<RawSite>,
    #[serde(default)]
    policy: Option<RawPolicy>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSite {
    url: String,
    ca: Vec<PathBuf>,
    #[serde(default, with = "humantime_serde")]
    refresh: Option<Duration>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    dir: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdmin {
    listen: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: PathBuf,
    key: PathBuf,
}

impl Config {
    /// Loads a TOML file; relative paths resolve against the file's directory.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let raw: RawConfig = load_toml(path)?;
        Self::from_raw(path, raw)
    }

    /// Parses TOML text; `path` names the source in errors and anchors relative paths.
    pub fn from_toml(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = cmg_core::config::parse_toml(path, text)?;
        Self::from_raw(path, raw)
    }

    fn from_raw(path: &Path, raw: RawConfig) -> Result<Config, ConfigError> {
        let listen = raw
            .listen
            .parse::<SocketAddr>()
            .map_err(|e| ConfigError::invalid(path, "listen", format!("{:?}: {e}", raw.listen)))?;
        let admin = raw
            .admin
            .map(|a| {
                a.listen.parse::<SocketAddr>().map_err(|e| {
                    ConfigError::invalid(path, "admin.listen", format!("{:?}: {e}", a.listen))
                })
            })
            .transpose()?;
        if raw.data_dir.as_os_str().is_empty() {
            return Err(ConfigError::invalid(path, "data_dir", "must not be empty"));
        }
        let site = raw
            .site
            .map(|s| {
                if !s.url.starts_with("https://") {
                    return Err(ConfigError::invalid(path, "site.url", "must be https://"));
                }
                if s.ca.is_empty() {
                    return Err(ConfigError::invalid(path, "site.ca", "name the site CA"));
                }
                let refresh = s.refresh.unwrap_or(Duration::from_secs(300));
                if refresh < Duration::from_secs(1) {
                    return Err(ConfigError::invalid(path, "site.refresh", "at least 1s"));
                }
                Ok(SiteLink {
                    url: s.url.trim_end_matches('/').to_owned(),
                    ca: s.ca.iter().map(|c| resolve(path, c)).collect(),
                    refresh,
                })
            })
            .transpose()?;
        Ok(Config {
            site,
            policy_dir: raw.policy.map(|p| resolve(path, &p.dir)),
            listen,
            data_dir: resolve(path, &raw.data_dir),
            tls: raw.tls.map(|t| TlsFiles {
                cert: resolve(path, &t.cert),
                key: resolve(path, &t.key),
            }),
            admin,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_relative_paths_next_to_the_file() {
        let c = Config::from_toml(
            Path::new("/etc/cmg/mp.toml"),
            "listen = '127.0.0.1:8080'\ndata_dir = 'mp'\n[tls]\ncert = 'c.pem'\nkey = '/k.pem'\n",
        )
        .expect("valid");
        assert_eq!(c.listen, "127.0.0.1:8080".parse().expect("addr"));
        assert_eq!(c.data_dir, PathBuf::from("/etc/cmg/mp"));
        let tls = c.tls.expect("tls");
        assert_eq!(tls.cert, PathBuf::from("/etc/cmg/c.pem"));
        assert_eq!(tls.key, PathBuf::from("/k.pem"));
        assert_eq!(c.admin, None);
    }

    #[test]
    fn reads_the_admin_listener() {
        let p = Path::new("mp.toml");
        let c = Config::from_toml(
            p,
            "listen = '127.0.0.1:1'\ndata_dir = 'd'\n[admin]\nlisten = '127.0.0.1:9100'\n",
        )
        .expect("valid");
        assert_eq!(c.admin, Some("127.0.0.1:9100".parse().expect("addr")));
        let e = Config::from_toml(
            p,
            "listen = '127.0.0.1:1'\ndata_dir = 'd'\n[admin]\nlisten = 'anywhere'\n",
        )
        .expect_err("admin address");
        assert!(e.to_string().contains("admin.listen"), "{e}");
    }

    #[test]
    fn reads_the_site_link_and_the_policy_directory() {
        let p = Path::new("/etc/cmg/mp.toml");
        let c = Config::from_toml(
            p,
            "listen = '127.0.0.1:1'\ndata_dir = 'd'\n[site]\nurl = 'https://site:8443/'\n\
             ca = ['site-ca.pem']\nrefresh = '30s'\n[policy]\ndir = 'policy'\n",
        )
        .expect("valid");
        let site = c.site.expect("site");
        assert_eq!(site.url, "https://site:8443");
        assert_eq!(site.ca, vec![PathBuf::from("/etc/cmg/site-ca.pem")]);
        assert_eq!(site.refresh, Duration::from_secs(30));
        assert_eq!(c.policy_dir, Some(PathBuf::from("/etc/cmg/policy")));
        let e = Config::from_toml(
            p,
            "listen = '127.0.0.1:1'\ndata_dir = 'd'\n[site]\nurl = 'http://site'\nca = ['c']\n",
        )
        .expect_err("plain http");
        assert!(e.to_string().contains("site.url"), "{e}");
    }

    #[test]
    fn rejects_unknown_fields_and_bad_addresses() {
        let p = Path::new("mp.toml");
        let e = Config::from_toml(p, "listen = '127.0.0.1:1'\ndata_dir = 'd'\nport = 1\n")
            .expect_err("unknown");
        assert!(e.to_string().contains("port"), "{e}");
        let e = Config::from_toml(p, "listen = 'nowhere'\ndata_dir = 'd'\n").expect_err("addr");
        assert!(e.to_string().contains("listen"), "{e}");
    }
}
