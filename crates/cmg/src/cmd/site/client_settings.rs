//! `cmg site client-settings`: show or set the site-wide client settings ("Enable
//! clients to use a cloud management gateway").

use std::path::Path;

use clap::Args;
use cmg_site::model::ClientSettings;
use http::Method;

use super::api::{send_and_show, show, ApiArgs};

// No doc comment on purpose: the `client-settings` variant's is its help line.
#[derive(Debug, Args)]
pub(super) struct ClientSettingsArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// "Enable clients to use a cloud management gateway".
    #[arg(long)]
    enable_cmg: Option<bool>,
}

pub(super) async fn run(dir: &Path, args: ClientSettingsArgs) -> anyhow::Result<()> {
    const PATH: &str = "/api/v1/client-settings";
    match args.enable_cmg {
        Some(v) => {
            let req = ClientSettings {
                enable_clients_to_use_cmg: v,
            };
            send_and_show(dir, &args.api, Method::PUT, PATH, &req).await
        }
        None => show(dir, &args.api, Method::GET, PATH).await,
    }
}
