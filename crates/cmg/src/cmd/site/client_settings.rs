//! `cmg site client-settings`: show or set the site-wide client settings ("Enable
//! clients to use a cloud management gateway", "Allow access to cloud distribution
//! point", the policy polling interval). Setting some keeps the others as they are.

use std::path::Path;

use clap::Args;
use cmg_site::model::ClientSettings;
use http::Method;

use super::api::{decode, send_and_show, show, Api, ApiArgs};
use super::views;

// No doc comment on purpose: the `client-settings` variant's is its help line.
#[derive(Debug, Args)]
pub(super) struct ClientSettingsArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// "Enable clients to use a cloud management gateway".
    #[arg(long)]
    enable_cmg: Option<bool>,
    /// "Allow access to cloud distribution point".
    #[arg(long)]
    allow_cloud_dp: Option<bool>,
    /// Client policy polling interval, minutes (1 to 1440).
    #[arg(long)]
    policy_interval_minutes: Option<u32>,
    /// Print the API's JSON instead of text.
    #[arg(long)]
    json: bool,
}

pub(super) async fn run(dir: &Path, args: ClientSettingsArgs) -> anyhow::Result<()> {
    const PATH: &str = "/api/v1/client-settings";
    if args.enable_cmg.is_none()
        && args.allow_cloud_dp.is_none()
        && args.policy_interval_minutes.is_none()
    {
        return show(
            dir,
            &args.api,
            Method::GET,
            PATH,
            args.json,
            views::client_settings,
        )
        .await;
    }
    let api = Api::connect(dir, &args.api)?;
    let mut req: ClientSettings = decode(api.call(Method::GET, PATH).await?)?;
    if let Some(v) = args.enable_cmg {
        req.enable_clients_to_use_cmg = v;
    }
    if let Some(v) = args.allow_cloud_dp {
        req.allow_cloud_distribution_point = v;
    }
    if let Some(v) = args.policy_interval_minutes {
        req.policy_interval_minutes = v;
    }
    let call = (Method::PUT, PATH);
    send_and_show(
        dir,
        &args.api,
        call,
        &req,
        args.json,
        views::client_settings,
    )
    .await
}
