//! How one answer of the site API reads for a person: a key/value block per view type
//! of `cmg_site::model` (a gateway, a role, a boundary group, the client settings, a
//! storage account, a signing key, an issued token, the alert webhook, a new settings
//! version). Times in the local time zone with their age, never epoch seconds; PEM and
//! other bulk stay in `--json`.
//!
//! Lists are the resource modules' tables; this module only renders single answers.

use cmg_site::model::{
    AlertWebhook, BoundaryGroup, CertView, Changed, ClientSettings, GatewayView, KeyView, RoleView,
    StorageView, TokenIssued,
};

use crate::output::{bytes, list, when, yes_no, Fields};

fn cert(c: &CertView, now: i64) -> String {
    format!(
        "{}\nissued by {}\nexpires {}\nsha256 {}",
        c.subject,
        c.issuer,
        when(c.not_after, now),
        c.sha256
    )
}

fn certs(cs: &[CertView], now: i64) -> String {
    if cs.is_empty() {
        return "-".into();
    }
    cs.iter()
        .map(|c| format!("{}, expires {}", c.subject, when(c.not_after, now)))
        .collect::<Vec<_>>()
        .join("\n")
}

pub(super) fn gateway(g: &GatewayView, now: i64) -> String {
    let a = &g.alert;
    let alert = if a.enabled {
        format!(
            "{} in 14 days (warning at {} %, critical at {} %{})",
            bytes(a.threshold_gb.saturating_mul(1_000_000_000)),
            a.warning_pct,
            a.critical_pct,
            if a.stop_at_critical {
                ", stops the service at critical"
            } else {
                ""
            }
        )
    } else {
        "off".into()
    };
    let channels: Vec<String> = g
        .instance_channels
        .iter()
        .enumerate()
        .map(|(i, c)| format!("instance {}: {}", i + 1, list(c)))
        .collect();
    let mut f = Fields::new();
    f.field("name", &g.name)
        .field("service name", &g.service_name)
        .field("region", &g.region)
        .field("instances", g.instances.to_string())
        .field("settings version", format!("v{}", g.settings_version))
        .field("certificate", cert(&g.certificate, now))
        .field("trusted roots", certs(&g.trusted_roots, now))
        .field("intermediates", certs(&g.intermediates, now))
        .field(
            "trust list",
            g.trust_list_sha256
                .as_deref()
                .map_or_else(|| "- (every trusted root)".into(), |l| l.join("\n")),
        )
        .field("verify revocation", yes_no(g.verify_revocation))
        .field("minimum TLS", g.min_tls.as_str())
        .field("content", yes_no(g.content_enabled))
        .field("egress alert", alert)
        .field(
            "service stopped",
            g.service_stopped.as_deref().unwrap_or("no"),
        )
        .field("redeploy required", yes_no(g.redeploy_required))
        .field(
            "instance channels",
            if channels.is_empty() {
                "-".into()
            } else {
                channels.join("\n")
            },
        )
        .field("connection points", list(&g.connection_points))
        .field("internet MPs", list(&g.internet_mps).replace(", ", "\n"))
        .field("created", when(g.created_at, now))
        .field("updated", when(g.updated_at, now));
    f.render()
}

pub(super) fn changed(c: &Changed, _now: i64) -> String {
    format!(
        "settings version v{}: the instances follow it\n",
        c.settings_version
    )
}

pub(super) fn redeployed(c: &Changed, _now: i64) -> String {
    format!(
        "settings version v{}: deploy the instances again from new packages (cmg site \
         gateway export)\n",
        c.settings_version
    )
}

pub(super) fn role(r: &RoleView, _now: i64) -> String {
    let mappings: Vec<String> = r
        .mappings
        .iter()
        .map(|m| format!("{} -> {}", m.external, m.internal))
        .collect();
    let mut f = Fields::new();
    f.field("role ID", &r.role_id)
        .field("kind", r.kind.as_str())
        .field("mode", r.mode.as_str())
        .field("internal URL", &r.internal_url)
        .field("gateway traffic", yes_no(r.allow_gateway_traffic))
        .field(
            "mappings",
            if mappings.is_empty() {
                "-".into()
            } else {
                mappings.join("\n")
            },
        );
    f.render()
}

pub(super) fn boundary_group(g: &BoundaryGroup, _now: i64) -> String {
    let neighbours: Vec<String> = g
        .neighbours
        .iter()
        .map(|n| {
            format!(
                "{} (management points: {}, content after: {})",
                n.group,
                yes_no(n.management_points),
                n.content_after_minutes
                    .map_or_else(|| "never".into(), |m| format!("{m} min"))
            )
        })
        .collect();
    let mut f = Fields::new();
    f.field("name", &g.name)
        .field("boundaries", list(&g.boundaries))
        .field("management points", list(&g.management_points))
        .field("gateways", list(&g.gateways))
        .field(
            "neighbours",
            if neighbours.is_empty() {
                "-".into()
            } else {
                neighbours.join("\n")
            },
        )
        .field("prefer cloud", yes_no(g.prefer_cloud));
    f.render()
}

pub(super) fn client_settings(s: &ClientSettings, _now: i64) -> String {
    let mut f = Fields::new();
    f.field("use CMG", yes_no(s.enable_clients_to_use_cmg))
        .field(
            "cloud distribution point",
            yes_no(s.allow_cloud_distribution_point),
        )
        .field(
            "policy interval",
            format!("{} min", s.policy_interval_minutes),
        );
    f.render()
}

pub(super) fn storage(s: &StorageView, now: i64) -> String {
    let mut f = Fields::new();
    f.field("gateway", &s.gateway)
        .field("account", &s.account)
        .field("endpoint", s.endpoint.as_deref().unwrap_or("-"))
        .field("container", &s.container)
        .field("key in force", &s.active_key)
        .field("rotated", when(s.rotated_at, now))
        .field("rotation", format!("every {} d", s.rotation_days))
        .field("next rotation", when(s.next_rotation_at, now));
    f.render()
}

/// The answer to a storage key rotation (`cmg_site`'s `StorageRotated`, read here).
#[derive(Debug, serde::Deserialize)]
pub(super) struct StorageRotated {
    storage: StorageView,
    settings_version: u64,
}

pub(super) fn storage_rotated(r: &StorageRotated, now: i64) -> String {
    format!(
        "{}{}",
        storage(&r.storage, now),
        changed(
            &Changed {
                settings_version: r.settings_version
            },
            now
        )
    )
}

pub(super) fn key(k: &KeyView, now: i64) -> String {
    let mut f = Fields::new();
    f.field("kid", &k.kid)
        .field("state", &k.state)
        .field("created", when(k.created_at, now))
        .field(
            "retires",
            k.retire_at.map_or_else(|| "-".into(), |t| when(t, now)),
        );
    f.render()
}

pub(super) fn token_issued(t: &TokenIssued, now: i64) -> String {
    let mut f = Fields::new();
    f.field("tracking ID", &t.tracking_id)
        .field("expires", when(t.expires_at, now))
        .field("token", "(shown once, not stored by the site)");
    format!("{}{}\n", f.render(), t.token)
}

pub(super) fn webhook(w: &AlertWebhook, _now: i64) -> String {
    let mut f = Fields::new();
    f.field("alert webhook", w.url.as_deref().unwrap_or("- (off)"));
    f.render()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_gateway_reads_as_a_block_without_epoch_seconds() {
        let g: GatewayView = serde_json::from_value(json!({
            "name": "cmg1", "service_name": "cmg.contoso.test", "region": "default",
            "instances": 2,
            "certificate": {"subject": "CN=cmg.contoso.test", "issuer": "CN=Root",
                "sha256": "ab", "not_after": 1_900_000_000},
            "chain_pem": "-----BEGIN CERTIFICATE-----\n", "trusted_roots": [], "intermediates": [],
            "trust_list_sha256": null, "verify_revocation": true, "min_tls": "1.2",
            "content_enabled": false,
            "alert": {"enabled": true, "threshold_gb": 5000, "warning_pct": 50,
                "critical_pct": 90, "stop_at_critical": false},
            "service_stopped": null, "instance_channels": [["10.0.0.1:10140"], []],
            "redeploy_required": false, "settings_version": 3,
            "connection_points": ["cp1"], "internet_mps": ["cmg.contoso.test/CCM_Proxy_MutualAuth/1"],
            "created_at": 1_800_000_000, "updated_at": 1_800_000_100
        }))
        .expect("gateway");
        let t = gateway(&g, 1_800_000_200);
        for want in [
            "name:               cmg1\n",
            "settings version:   v3\n",
            "egress alert:       5.00 TB in 14 days (warning at 50 %, critical at 90 %)\n",
            "instance channels:  instance 1: 10.0.0.1:10140\n",
            "                    instance 2: -\n",
            " (in 1157 d)\n",
            " (3 min ago)\n",
        ] {
            assert!(t.contains(want), "{want:?} in\n{t}");
        }
        assert!(!t.contains("BEGIN CERTIFICATE"), "{t}");
        for n in ["1900000000", "1800000000", "1800000100"] {
            assert!(!t.contains(n), "{n} in\n{t}");
        }
    }

    #[test]
    fn small_answers() {
        assert_eq!(
            changed(
                &Changed {
                    settings_version: 4
                },
                0
            ),
            "settings version v4: the instances follow it\n"
        );
        let t = token_issued(
            &TokenIssued {
                tracking_id: "t1".into(),
                token: "eyJ.x.y".into(),
                expires_at: 3_600,
            },
            0,
        );
        assert!(t.starts_with("tracking ID:  t1\nexpires:      "), "{t}");
        assert!(t.contains(" (in 60 min)\n"), "{t}");
        assert!(t.ends_with("\neyJ.x.y\n"), "{t}");
        assert_eq!(
            client_settings(
                &ClientSettings {
                    enable_clients_to_use_cmg: true,
                    allow_cloud_distribution_point: false,
                    policy_interval_minutes: 60,
                },
                0
            ),
            "use CMG:                   yes\n\
             cloud distribution point:  no\n\
             policy interval:           60 min\n"
        );
        assert_eq!(
            webhook(&AlertWebhook { url: None }, 0),
            "alert webhook:  - (off)\n"
        );
    }
}
