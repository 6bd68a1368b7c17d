//! `cmg site gateway export`: asks the site for an instance's deployment package and
//! writes its files (secrets mode 0600). It does not start the instance.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Args;
use cmg_site::files::write_files;
use cmg_site::model::{ExportPackage, ExportRequest};
use http::Method;

use crate::cmd::site::api::{self, decode, Api, ApiArgs};

// No doc comment on purpose: the `export` variant's is its help line.
#[derive(Debug, Args)]
pub(in crate::cmd::site) struct ExportArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// The gateway's name.
    name: String,
    /// Instance number, 1 to the gateway's instance count.
    #[arg(long)]
    instance: u32,
    /// The directory the package's files are written into.
    out: PathBuf,
    /// The instance's client listener in its `gateway.toml` (default 0.0.0.0:443).
    #[arg(long)]
    client_listen: Option<String>,
    /// The instance's channel listener (default 0.0.0.0:10140).
    #[arg(long)]
    channel_listen: Option<String>,
    /// The instance's admin listener (default: none).
    #[arg(long)]
    admin_listen: Option<String>,
}

pub(super) async fn run(dir: &Path, args: ExportArgs) -> anyhow::Result<()> {
    let ExportArgs {
        api,
        name,
        instance,
        out,
        client_listen,
        channel_listen,
        admin_listen,
    } = args;
    let req = ExportRequest {
        instance,
        client_listen,
        channel_listen,
        admin_listen,
    };
    let path = api::path(&["gateways", &name, "export"]);
    let pkg: ExportPackage = decode(
        Api::connect(dir, &api)?
            .send(Method::POST, &path, &req)
            .await?,
    )?;
    write_files(&out, &pkg.files).with_context(|| format!("writing {}", out.display()))?;
    tracing::info!(target: "cmg_site::setup", gateway = %name, instance, version = pkg.settings_version,
                   dir = %out.display(), "deployment package written");
    println!(
        "{} instance {} (settings version {}) written to {}: {}",
        name,
        instance,
        pkg.settings_version,
        out.display(),
        pkg.files
            .iter()
            .map(|f| f.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}
