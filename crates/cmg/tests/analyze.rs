//! `cmg site analyze` against a running demo (the site, two instances, two connection
//! points, the demo PKI): every step passes with the good certificate and with the
//! device token (the location service through the gateway among them); the revoked
//! certificate fails the revocation step, the untrusted one the chain step; "use CMG =
//! No" fails the location step; a stopped connection point fails its channel step by
//! name. Each run
//! is the binary, as an administrator runs it, and checks the JSON shape and the exit
//! status.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use cmg_cluster::{Cluster, ClusterSpec};
use cmg_site::mappings::RoleMode;
use cmg_site::model::{ClientSettings, GatewayStatus, HealthState, RoleModify, RoleView};
use cmg_test_support::eventually;
use http::Method;
use serde_json::Value;

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `cmg site analyze` for the demo gateway through both instances, with `credential`.
async fn analyze(cluster: &Cluster, credential: &[&Path], json: bool) -> Output {
    let site = cluster.site.as_ref().expect("the demo runs a site");
    let mut args: Vec<String> = vec![
        "site".into(),
        "--dir".into(),
        site.dir.display().to_string(),
        "analyze".into(),
        "--url".into(),
        site.url.clone(),
        "--ca-file".into(),
        site.ca_file.display().to_string(),
        "--admin-token-file".into(),
        site.admin_token_file.display().to_string(),
        "--gateway".into(),
        cmg_cluster::spec::GATEWAY_NAME.into(),
    ];
    for g in &cluster.gateways {
        args.push("--instance".into());
        args.push(g.client.to_string());
    }
    match credential {
        [cert, key] => {
            args.extend(["--cert".into(), cert.display().to_string()]);
            args.extend(["--key".into(), key.display().to_string()]);
        }
        [token] => args.extend(["--token".into(), token.display().to_string()]),
        _ => panic!("a certificate and key, or a token file"),
    }
    if json {
        args.push("--json".into());
    }
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_cmg"))
            .args(&args)
            .env_remove("CMG_SITE_ADMIN_TOKEN")
            .env_remove("CMG_SITE_URL")
            .output()
            .expect("run cmg site analyze")
    })
    .await
    .expect("join")
}

/// The report, after checking its shape: every step has exactly the four fields, a
/// known status, and `ok` says whether none failed.
fn report(out: &Output) -> Value {
    let v: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(out)));
    let steps = v["steps"].as_array().expect("steps");
    assert!(!steps.is_empty(), "{}", text(out));
    for s in steps {
        let keys: Vec<&str> = s
            .as_object()
            .expect("step")
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["detail", "name", "remedy", "status"], "{s}");
        assert!(
            ["pass", "warn", "fail"].contains(&s["status"].as_str().expect("status")),
            "{s}"
        );
    }
    let failed = steps.iter().any(|s| s["status"] == "fail");
    assert_eq!(v["ok"], Value::Bool(!failed), "{v}");
    assert_eq!(
        out.status.code(),
        Some(if failed { 1 } else { 0 }),
        "{}",
        text(out)
    );
    v
}

fn step<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name:?} in {v:#}"))
}

fn names_with(v: &Value, status: &str) -> Vec<String> {
    v["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter(|s| s["status"] == status)
        .map(|s| s["name"].as_str().expect("name").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn analyze_the_demo() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut spec = ClusterSpec::demo(dir.path().to_path_buf());
    spec.site = true;
    let mut cluster = Cluster::start(spec).await.expect("cluster");
    let p = cluster.pki.clone();
    // The site learns the channels from the connection points' reports, which follow
    // the channels by up to a report interval.
    let site = cluster.site.as_ref().expect("site");
    eventually("the site to show the demo gateway Ready")
        .within(Duration::from_secs(20))
        .until_async(
            || site.admin_get::<Vec<GatewayStatus>>("/api/v1/status"),
            |s| {
                s.as_ref()
                    .is_ok_and(|s| s.iter().all(|g| g.status == HealthState::Ready))
            },
        )
        .await
        .expect("the site's status");

    // The good certificate: every step passes, exit 0; one step per instance each.
    let good = report(&analyze(&cluster, &[&p.client_cert, &p.client_key], true).await);
    assert_eq!(good["ok"], true, "{good:#}");
    assert!(
        names_with(&good, "warn").is_empty() && names_with(&good, "fail").is_empty(),
        "{good:#}"
    );
    for g in &cluster.gateways {
        for prefix in ["CCM_Proxy_MutualAuth", "CCM_Proxy_ServerAuth"] {
            step(
                &good,
                &format!("ServiceMetadata ({prefix}) via {}", g.client),
            );
        }
        let mp = format!(
            "management point {} via {}",
            cmg_cluster::spec::MP_ROLE_ID,
            g.client
        );
        assert!(
            step(&good, &mp)["detail"]
                .as_str()
                .expect("detail")
                .contains("answered 200"),
            "{good:#}"
        );
    }
    for c in &cluster.connectors {
        step(&good, &format!("channels from connection point {}", c.id));
    }
    assert_eq!(
        step(&good, cmg_analyze::REVOCATION)["status"],
        "pass",
        "{good:#}"
    );
    // The location service, asked through the first instance: a verified answer that
    // lists the gateway's management point for certificate clients.
    let location = format!(
        "{} via {}",
        cmg_analyze::LOCATION,
        cluster.gateways[0].client
    );
    let l = step(&good, &location)["detail"].as_str().expect("detail");
    for want in [
        "use CMG: yes",
        "via gateway",
        "(certificate,",
        &format!(
            "https://{}/CCM_Proxy_MutualAuth/{}",
            cmg_cluster::spec::SERVICE_NAME,
            cmg_cluster::spec::MP_ROLE_ID
        ),
    ] {
        assert!(l.contains(want), "{want:?} in {l}");
    }

    // The same as text: one ✓ line per step, exit 0.
    let out = analyze(&cluster, &[&p.client_cert, &p.client_key], false).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains("✓ client certificate: revocation: "),
        "{shown}"
    );
    assert!(!shown.contains('✗'), "{shown}");

    // The device token: the token step and the requests under CCM_Proxy_ServerAuth pass.
    let token = dir.path().join("device.token");
    std::fs::write(&token, &cluster.tokens.device_token).expect("write token");
    let by_token = report(&analyze(&cluster, &[&token], true).await);
    assert_eq!(by_token["ok"], true, "{by_token:#}");
    assert_eq!(
        step(&by_token, cmg_analyze::TOKEN)["status"],
        "pass",
        "{by_token:#}"
    );
    let l = step(&by_token, &location)["detail"]
        .as_str()
        .expect("detail");
    assert!(l.contains("(token, via gateway)"), "{l}");
    assert!(l.contains("/CCM_Proxy_ServerAuth/"), "{l}");

    // "Enable clients to use a CMG = No": the site refuses the location request through
    // the gateway, and the step says the client settings keep clients off it.
    let settings = |enable: bool| ClientSettings {
        enable_clients_to_use_cmg: enable,
        allow_cloud_distribution_point: true,
        policy_interval_minutes: 60,
    };
    let path = "/api/v1/client-settings";
    site.admin_send::<_, ClientSettings>(Method::PUT, path, &settings(false))
        .await
        .expect("use CMG = No");
    let off = report(&analyze(&cluster, &[&p.client_cert, &p.client_key], true).await);
    assert_eq!(
        names_with(&off, "fail"),
        std::slice::from_ref(&location),
        "{off:#}"
    );
    let l = step(&off, &location);
    assert!(
        l["detail"]
            .as_str()
            .expect("detail")
            .contains("cmg_disabled"),
        "{l}"
    );
    assert!(
        l["remedy"]
            .as_str()
            .expect("remedy")
            .contains("--enable-cmg true"),
        "{l}"
    );
    site.admin_send::<_, ClientSettings>(Method::PUT, path, &settings(true))
        .await
        .expect("use CMG = Yes");

    // The management point in HTTP mode serves no token client: the location service is
    // not published for the token, a warning (nothing is sent), not a failure.
    let role = format!("/api/v1/roles/{}", cmg_cluster::spec::MP_ROLE_ID);
    let mode = |mode| RoleModify {
        mode: Some(mode),
        ..RoleModify::default()
    };
    let was: RoleView = site.admin_get(&role).await.expect("the role");
    site.admin_send::<_, RoleView>(Method::PATCH, &role, &mode(RoleMode::Http))
        .await
        .expect("HTTP mode");
    let http = report(&analyze(&cluster, &[&token], true).await);
    let l = step(&http, cmg_analyze::LOCATION);
    assert_eq!(l["status"], "warn", "{http:#}");
    assert!(
        l["detail"]
            .as_str()
            .expect("detail")
            .contains("not published for token clients"),
        "{l}"
    );
    site.admin_send::<_, RoleView>(Method::PATCH, &role, &mode(was.mode))
        .await
        .expect("the mode back");

    // The revoked certificate: the revocation step fails and says so; exit 1.
    let revoked = report(
        &analyze(
            &cluster,
            &[&p.revoked_client_cert, &p.revoked_client_key],
            true,
        )
        .await,
    );
    assert_eq!(revoked["ok"], false);
    let r = step(&revoked, cmg_analyze::REVOCATION);
    assert_eq!(r["status"], "fail", "{revoked:#}");
    let detail = r["detail"].as_str().expect("detail");
    assert!(
        detail.contains("certificate has been revoked (revoked)"),
        "{r}"
    );
    // The demo CA revokes it for key compromise; the step gives the CRL's reason.
    assert!(detail.contains("reason KeyCompromise"), "{r}");
    assert_eq!(
        step(&revoked, cmg_analyze::CHAIN)["status"],
        "pass",
        "{revoked:#}"
    );

    // The untrusted certificate: the chain step fails, naming the cause.
    let untrusted = report(
        &analyze(
            &cluster,
            &[&p.untrusted_client_cert, &p.untrusted_client_key],
            true,
        )
        .await,
    );
    let c = step(&untrusted, cmg_analyze::CHAIN);
    assert_eq!(c["status"], "fail", "{untrusted:#}");
    assert!(
        c["detail"]
            .as_str()
            .expect("detail")
            .contains("unknown_issuer"),
        "{c}"
    );
    assert!(!c["remedy"].as_str().expect("remedy").is_empty(), "{c}");

    // A connection point stopped: once the site has its shutdown report, its channel
    // step fails and names it; the other's passes.
    let stopped = cluster.connectors[1].id.to_string();
    cluster.stop_connector(1).await;
    let site = cluster.site.as_ref().expect("site");
    eventually(format!("the site to see {stopped} stop reporting"))
        .within(Duration::from_secs(20))
        .until_async(
            || site.admin_get::<Vec<GatewayStatus>>("/api/v1/status"),
            |s| {
                s.as_ref().is_ok_and(|s| {
                    s.iter()
                        .flat_map(|g| &g.connection_points)
                        .any(|cp| cp.id == stopped && !cp.reporting)
                })
            },
        )
        .await
        .expect("the site's status");
    let without = report(&analyze(&cluster, &[&p.client_cert, &p.client_key], true).await);
    let name = format!("channels from connection point {stopped}");
    let s = step(&without, &name);
    assert_eq!(s["status"], "fail", "{without:#}");
    assert!(
        s["detail"].as_str().expect("detail").contains(&stopped),
        "{s}"
    );
    assert_eq!(names_with(&without, "fail"), [name], "{without:#}");

    cluster.shutdown().await;
}

/// Without a credential, clap refuses the command (exit 2) before any network.
#[test]
fn a_credential_is_required() {
    let out = Command::new(env!("CARGO_BIN_EXE_cmg"))
        .args(["site", "analyze", "--gateway", "cmg1"])
        .output()
        .expect("run cmg");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--token"),
        "{}",
        text(&out)
    );
}
