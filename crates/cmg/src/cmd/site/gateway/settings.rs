//! The gateway settings `gateway create` and `gateway modify` share, turned into the
//! requests the site reads (`GatewayCreate`, `GatewayModify`): certificate files read
//! (or a .pfx converted to PEM here), the 14-day alert from its options. It does not
//! check the settings; the site does, once for every client.

use std::path::PathBuf;

use anyhow::bail;
use clap::Args;
use cmg_site::model::{AlertSettings, GatewayCreate, GatewayModify, MinTls};

use crate::cmd::site::read;

// Flattened into `create` and `modify`. No doc comment on purpose: clap would show it
// as their help line.
#[derive(Debug, Args)]
pub(in crate::cmd::site) struct GatewaySettings {
    /// Server certificate chain (PEM, leaf first).
    #[arg(long)]
    pub(super) cert: Option<PathBuf>,
    /// Its private key (PEM).
    #[arg(long)]
    key: Option<PathBuf>,
    /// Or: the server certificate as PKCS#12 (.pfx: key and chain, PBES2/AES), its
    /// password from the environment variable named by --pfx-password-env. Converted to
    /// PEM here; the password never leaves this machine.
    #[arg(long, conflicts_with_all = ["cert", "key"])]
    pub(super) pfx: Option<PathBuf>,
    /// The environment variable holding the .pfx password.
    #[arg(long, default_value = "CMG_PFX_PASSWORD")]
    pfx_password_env: String,
    /// VM instances, 1 to 16.
    #[arg(long)]
    instances: Option<u32>,
    /// One instance's channel addresses, `host:port` comma-separated in order of
    /// preference (its channel port, then fallbacks such as its client port). Repeat once
    /// per instance, in instance order; replaces the list and sets the instance count.
    /// Connection points follow it without a restart.
    #[arg(long = "instance", value_name = "HOST:PORT[,HOST:PORT...]")]
    instance_channels: Vec<String>,
    /// Clear the instances' channel addresses (connection points go back to the lists in
    /// their config files).
    #[arg(long, conflicts_with = "instance_channels")]
    clear_instances: bool,
    /// Trusted root CA certificate files for client certificates (replaces the list).
    #[arg(long = "trusted-root")]
    trusted_roots: Vec<PathBuf>,
    /// Trusted intermediate CA certificate files (replaces the list).
    #[arg(long = "intermediate")]
    intermediates: Vec<PathBuf>,
    /// Verify client certificate revocation.
    #[arg(long)]
    crl: Option<bool>,
    /// Minimum TLS version: 1.2 or 1.3.
    #[arg(long)]
    min_tls: Option<MinTls>,
    /// Serve content (cloud distribution point).
    #[arg(long)]
    content: Option<bool>,
    /// Turn the 14-day traffic alert on with this threshold (GB).
    #[arg(long)]
    alert_threshold_gb: Option<u64>,
    /// The alert's warning level, percent of the threshold (with --alert-threshold-gb).
    #[arg(long, default_value_t = 50)]
    alert_warning_pct: u8,
    /// The alert's critical level, percent of the threshold (with --alert-threshold-gb).
    #[arg(long, default_value_t = 90)]
    alert_critical_pct: u8,
    /// Stop the service when the critical level is reached.
    #[arg(long)]
    alert_stop: bool,
}

impl GatewaySettings {
    /// The settings given, as a `PATCH` of the gateway: what is not given stays.
    pub(super) fn modify(&self) -> anyhow::Result<GatewayModify> {
        let (cert_pem, key_pem) = self.server_cert()?.unzip();
        Ok(GatewayModify {
            cert_pem,
            key_pem,
            instances: self.instances,
            trusted_roots_pem: pems(&self.trusted_roots)?,
            intermediates_pem: pems(&self.intermediates)?,
            trust_list_sha256: None,
            verify_revocation: self.crl,
            min_tls: self.min_tls,
            content_enabled: self.content,
            alert: self.alert_threshold_gb.map(|threshold_gb| AlertSettings {
                enabled: true,
                threshold_gb,
                warning_pct: self.alert_warning_pct,
                critical_pct: self.alert_critical_pct,
                stop_at_critical: self.alert_stop,
            }),
            instance_channels: if self.clear_instances {
                Some(Vec::new())
            } else {
                (!self.instance_channels.is_empty()).then(|| {
                    self.instance_channels
                        .iter()
                        .map(|i| i.split(',').map(|a| a.trim().to_owned()).collect())
                        .collect()
                })
            },
        })
    }

    /// A new gateway named `name` with these settings; the site's defaults for the
    /// ones not given. The server certificate is required.
    pub(super) fn create(&self, name: String) -> anyhow::Result<GatewayCreate> {
        if self.cert.is_none() && self.pfx.is_none() {
            bail!("a server certificate is required: --cert and --key (PEM), or --pfx");
        }
        let m = self.modify()?;
        let (Some(cert_pem), Some(key_pem)) = (m.cert_pem, m.key_pem) else {
            bail!("give --cert and --key together (or --pfx alone)");
        };
        let mut req = GatewayCreate::new(name, cert_pem, key_pem);
        if let Some(n) = m.instances {
            req.instances = n;
        }
        if let Some(p) = m.trusted_roots_pem {
            req.trusted_roots_pem = p;
        }
        if let Some(p) = m.intermediates_pem {
            req.intermediates_pem = p;
        }
        if let Some(v) = m.verify_revocation {
            req.verify_revocation = v;
        }
        if let Some(v) = m.min_tls {
            req.min_tls = v;
        }
        if let Some(v) = m.content_enabled {
            req.content_enabled = v;
        }
        if let Some(a) = m.alert {
            req.alert = a;
        }
        if m.instance_channels.is_some() {
            bail!("--instance is set with `gateway modify`, once the gateway exists");
        }
        Ok(req)
    }

    /// The server certificate chain and key as PEM: from `--cert` and `--key`, or
    /// converted from `--pfx`; none when neither is given.
    fn server_cert(&self) -> anyhow::Result<Option<(String, String)>> {
        match (&self.cert, &self.key, &self.pfx) {
            (Some(c), Some(k), None) => Ok(Some((read(c)?, read(k)?))),
            (None, None, Some(pfx)) => super::pfx::read_pem(pfx, &self.pfx_password_env).map(Some),
            (None, None, None) => Ok(None),
            _ => bail!("give --cert and --key together (or --pfx alone)"),
        }
    }
}

/// The files' contents; none for no files (the list stays as it is).
fn pems(files: &[PathBuf]) -> anyhow::Result<Option<Vec<String>>> {
    if files.is_empty() {
        return Ok(None);
    }
    files
        .iter()
        .map(|p| read(p))
        .collect::<anyhow::Result<_>>()
        .map(Some)
}
