//! `cmg site status|traffic|alert ...`: health, traffic and alerts from the site API.

use std::fmt::Write as _;
use std::path::Path;

use clap::{Args, Subcommand};
use cmg_site::model::{AlertView, AlertWebhook, EndpointTrafficView, GatewayStatus};
use http::Method;

use super::api::{self, decode, print, send_and_show, show, with_query, Api, ApiArgs};
use super::views;
use crate::output::{self, bytes, Fields, Table};

// No doc comment on purpose: the `status` variant's is its help line.
#[derive(Debug, Args)]
pub(super) struct StatusArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// Print the API's JSON instead of text.
    #[arg(long)]
    json: bool,
}

// No doc comment on purpose: the `traffic` variant's is its help line.
#[derive(Debug, Args)]
pub(super) struct TrafficArgs {
    #[command(flatten)]
    api: ApiArgs,
    /// Only this gateway's endpoints.
    #[arg(long)]
    gateway: Option<String>,
    /// The period back from now: 90m, 24h, 14d (at most 90d).
    #[arg(long, default_value = "24h")]
    since: String,
    /// Print the API's JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
pub(super) enum AlertCommand {
    /// Active traffic alerts (with --all, the history).
    List {
        #[command(flatten)]
        api: ApiArgs,
        /// Also the cleared alerts.
        #[arg(long)]
        all: bool,
        /// Print the API's JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Clear the service stop a critical alert set (publishes a new settings version).
    Clear {
        #[command(flatten)]
        api: ApiArgs,
        /// The gateway's name.
        name: String,
        /// Print the API's JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Show, set (--set URL) or remove (--off) the webhook alerts are POSTed to.
    Webhook {
        #[command(flatten)]
        api: ApiArgs,
        /// An http:// or https:// URL.
        #[arg(long = "set", value_name = "URL", conflicts_with = "off")]
        set_url: Option<String>,
        /// Stop posting alerts.
        #[arg(long)]
        off: bool,
        /// Print the API's JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// The status as text: one block per gateway (its status and the figures behind it),
/// then each connection point with its channels.
fn status_text(list: &[GatewayStatus], now: i64) -> String {
    let mut out = String::new();
    if list.is_empty() {
        out.push_str("no gateways\n");
    }
    for g in list {
        let _ = writeln!(out, "{}  {:?}", g.gateway, g.status);
        let connected: Vec<String> = g
            .instances
            .iter()
            .filter(|i| !i.connected_from.is_empty())
            .map(|i| format!("{} from {}", i.instance, output::list(&i.connected_from)))
            .collect();
        let reporting = g.connection_points.iter().filter(|c| c.reporting).count();
        let mut f = Fields::new();
        f.field(
            "instances",
            format!(
                "{} of {} connected{}",
                connected.len(),
                g.instances_expected,
                if connected.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", connected.join("; "))
                }
            ),
        )
        .field(
            "connection points",
            format!("{reporting} of {} reporting", g.connection_points.len()),
        )
        .field("14-day egress", bytes(g.egress_14d_bytes))
        .field("alert", g.alert.map_or("-", |a| a.as_str()))
        .field(
            "service stopped",
            g.service_stopped.as_deref().unwrap_or("no"),
        );
        if !g.reasons.is_empty() {
            f.field("reasons", g.reasons.join("\n"));
        }
        for line in f.render().lines() {
            let _ = writeln!(out, "  {line}");
        }
        for cp in &g.connection_points {
            let last = cp
                .last_report_at
                .map(|t| format!("reported {}", output::age(t, now)))
                .unwrap_or_else(|| "never reported".into());
            let _ = writeln!(
                out,
                "  connection point {}: {}{}{}",
                cp.id,
                last,
                cp.settings_version
                    .map(|v| format!(", settings v{v}"))
                    .unwrap_or_default(),
                if cp.reporting { "" } else { " (not reporting)" }
            );
            for c in &cp.channels {
                let _ = writeln!(
                    out,
                    "    {} {}: {} since {}{}",
                    c.instance.as_deref().unwrap_or("?"),
                    c.address,
                    c.state,
                    output::when(c.since, now),
                    c.last_error
                        .as_deref()
                        .map(|e| format!(", last error: {e}"))
                        .unwrap_or_default()
                );
            }
        }
    }
    out
}

/// Traffic per endpoint as a table, then the estimated egress.
fn traffic_text(list: &[EndpointTrafficView]) -> String {
    let mut t = Table::new(&[
        "GATEWAY",
        "ENDPOINT",
        "REQUESTS",
        "IN",
        "OUT",
        "MEAN ms",
        "1xx/2xx/3xx/4xx/5xx",
    ]);
    let mut egress = 0;
    for e in list {
        egress += e.bytes_out;
        t.row(vec![
            e.gateway.clone(),
            e.endpoint.clone(),
            e.requests.to_string(),
            bytes(e.bytes_in),
            bytes(e.bytes_out),
            format!("{:.1}", e.mean_latency_ms),
            e.status_classes.map(|c| c.to_string()).join("/"),
        ]);
    }
    format!("{}estimated egress: {}\n", t.render(), bytes(egress))
}

/// The alerts as a table, newest first; a line says so when there is none.
fn alerts_text(list: &[AlertView], now: i64) -> String {
    if list.is_empty() {
        return "no alerts\n".into();
    }
    let mut t = Table::new(&[
        "GATEWAY",
        "LEVEL",
        "RAISED",
        "CLEARED",
        "EGRESS",
        "THRESHOLD",
        "STOPPED",
        "MESSAGE",
    ]);
    for a in list {
        t.row(vec![
            a.gateway.clone(),
            a.level.as_str().into(),
            output::when(a.raised_at, now),
            a.cleared_at
                .map_or_else(|| "-".into(), |c| output::when(c, now)),
            bytes(a.egress_bytes),
            bytes(a.threshold_bytes),
            output::yes_no(a.stopped).into(),
            a.message.clone(),
        ]);
    }
    t.render()
}

pub(super) async fn status(dir: &Path, args: StatusArgs) -> anyhow::Result<()> {
    let v = Api::connect(dir, &args.api)?
        .call(Method::GET, "/api/v1/status")
        .await?;
    if args.json {
        return print(v);
    }
    let list = decode::<Vec<GatewayStatus>>(v)?;
    print!("{}", status_text(&list, cmg_site::now()));
    Ok(())
}

pub(super) async fn traffic(dir: &Path, args: TrafficArgs) -> anyhow::Result<()> {
    if cmg_site::alerts::parse_period(&args.since).is_none() {
        anyhow::bail!("--since is a period like 90m, 24h or 14d");
    }
    let mut query = vec![("since", args.since.as_str())];
    if let Some(g) = &args.gateway {
        query.push(("gateway", g));
    }
    let path = with_query("/api/v1/traffic", &query);
    let v = Api::connect(dir, &args.api)?
        .call(Method::GET, &path)
        .await?;
    if args.json {
        return print(v);
    }
    print!("{}", traffic_text(&decode::<Vec<EndpointTrafficView>>(v)?));
    Ok(())
}

pub(super) async fn alert(dir: &Path, cmd: AlertCommand) -> anyhow::Result<()> {
    match cmd {
        AlertCommand::List { api, all, json } => {
            let v = Api::connect(dir, &api)?
                .call(
                    Method::GET,
                    &with_query("/api/v1/alerts", &[("all", &all.to_string())]),
                )
                .await?;
            if json {
                return print(v);
            }
            let alerts = decode::<Vec<AlertView>>(v)?;
            print!("{}", alerts_text(&alerts, cmg_site::now()));
            Ok(())
        }
        AlertCommand::Clear { api, name, json } => {
            let path = api::path(&["gateways", &name, "alert", "clear"]);
            show(dir, &api, Method::POST, &path, json, views::changed).await
        }
        AlertCommand::Webhook {
            api,
            set_url: url,
            off,
            json,
        } => {
            const PATH: &str = "/api/v1/alert-webhook";
            if url.is_none() && !off {
                return show(dir, &api, Method::GET, PATH, json, views::webhook).await;
            }
            let req = AlertWebhook { url };
            send_and_show(dir, &api, (Method::PUT, PATH), &req, json, views::webhook).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cmg_site::model::{AlertLevel, HealthState};
    use serde_json::json;

    #[test]
    fn renders_status_traffic_and_alerts() {
        let g: GatewayStatus = serde_json::from_value(json!({
            "gateway": "gw1", "status": "Warning", "reasons": ["connection point cp2 is not reporting"],
            "service_stopped": null, "alert": "warning", "egress_14d_bytes": 1_500_000_000u64,
            "instances_expected": 1, "instances": [],
            "connection_points": [{"id": "cp1", "last_report_at": cmg_site::now(), "last_reason": "periodic",
                "settings_version": 3, "reporting": true, "channels": [{"connection_point": "cp1",
                "address": "10.0.0.1:10140", "instance": "gw1-1", "state": "disconnected", "since": 5,
                "connection_id": null, "last_error": "refused", "reported_at": 5}]}]
        }))
        .expect("status");
        assert_eq!(g.status, HealthState::Warning);
        let t = status_text(&[g], cmg_site::now());
        for want in [
            "gw1  Warning\n",
            "  instances:          0 of 1 connected\n",
            "  connection points:  1 of 1 reporting\n",
            "  14-day egress:      1.50 GB\n",
            "  alert:              warning\n",
            "  reasons:            connection point cp2 is not reporting\n",
            "  connection point cp1: reported 0 s ago, settings v3\n",
        ] {
            assert!(t.contains(want), "{want:?} in\n{t}");
        }
        assert!(t.contains("cp2 is not reporting"), "{t}");
        assert!(
            t.contains("gw1-1 10.0.0.1:10140: disconnected since 1970-01-01T")
                && t.contains(" d ago), last error: refused"),
            "{t}"
        );
        let e = EndpointTrafficView {
            gateway: "gw1".into(),
            endpoint: "/x".into(),
            requests: 4,
            bytes_in: 10,
            bytes_out: 2_000,
            status_classes: [0, 3, 0, 1, 0],
            mean_latency_ms: 1.5,
        };
        let t = traffic_text(&[e.clone(), e]);
        assert!(
            t.contains("0/3/0/1/0") && t.contains("estimated egress: 4.00 kB"),
            "{t}"
        );
        assert!(
            t.starts_with("GATEWAY  ENDPOINT  REQUESTS  IN    OUT"),
            "{t}"
        );
        let a = AlertView {
            id: 1,
            gateway: "gw1".into(),
            level: AlertLevel::Critical,
            raised_at: cmg_site::now(),
            cleared_at: None,
            egress_bytes: 1,
            threshold_bytes: 1,
            stopped: true,
            message: "m".into(),
        };
        let t = alerts_text(&[a], cmg_site::now());
        let row = t.lines().nth(1).expect("a row");
        assert!(row.starts_with("gw1  "), "{t}");
        for cell in ["critical", " (0 s ago)", "  -  ", "1 B", "yes", "  m"] {
            assert!(row.contains(cell), "{cell:?} in\n{t}");
        }
        assert_eq!(alerts_text(&[], 0), "no alerts\n");
    }
}
