//! `cmg site` as an administrator runs it: `init`, `serve` on a loopback port, then
//! every admin command against that site, each a process of its own. The commands send
//! the model's request types, so this checks that what they send is what the site's
//! handlers read (a field the site does not know is refused), and that each answer
//! says the change happened.

mod site_support;

use std::path::Path;

use serde_json::Value;
use site_support::{command, path, text, Site};

#[test]
fn every_admin_command_reaches_a_served_site() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let pki = tmp.path().join("pki");
    let out = command(&["cert", "demo-pki", pki.to_str().expect("utf-8")])
        .output()
        .expect("run cmg cert demo-pki");
    assert!(out.status.success(), "{}", text(&out));
    let mut site = Site::start(&tmp.path().join("site"), &[]);

    // Gateways: create with every setting, change, redeploy, list, show.
    let (cert, key) = (path(&pki, "server.pem"), path(&pki, "server.key"));
    let (root, intermediate) = (path(&pki, "root-ca.pem"), path(&pki, "intermediate-ca.pem"));
    let gw = site.json(&[
        "gateway",
        "create",
        "cmg1",
        "--cert",
        &cert,
        "--key",
        &key,
        "--region",
        "north",
        "--instances",
        "2",
        "--trusted-root",
        &root,
        "--intermediate",
        &intermediate,
        "--min-tls",
        "1.3",
        "--alert-threshold-gb",
        "100",
        "--alert-stop",
    ]);
    assert_eq!(gw["name"], "cmg1", "{gw}");
    assert_eq!(gw["region"], "north", "{gw}");
    assert_eq!(gw["instances"], 2, "{gw}");
    assert_eq!(gw["min_tls"], "1.3", "{gw}");
    assert_eq!(gw["verify_revocation"], true, "site default: {gw}");
    assert_eq!(
        gw["trusted_roots"].as_array().map(Vec::len),
        Some(1),
        "{gw}"
    );
    assert_eq!(
        gw["intermediates"].as_array().map(Vec::len),
        Some(1),
        "{gw}"
    );
    let alert = &gw["alert"];
    assert_eq!(
        (
            &alert["enabled"],
            &alert["threshold_gb"],
            &alert["warning_pct"]
        ),
        (&Value::from(true), &Value::from(100), &Value::from(50)),
        "{gw}"
    );
    assert_eq!(alert["stop_at_critical"], true, "{gw}");
    let version = gw["settings_version"].as_u64().expect("settings_version");

    let changed = site.json(&[
        "gateway",
        "modify",
        "cmg1",
        "--crl",
        "false",
        "--content",
        "false",
    ]);
    assert_eq!(changed["settings_version"], version + 1, "{changed}");
    let gw = site.json(&["gateway", "show", "cmg1"]);
    assert_eq!(
        (
            &gw["verify_revocation"],
            &gw["content_enabled"],
            &gw["min_tls"]
        ),
        (
            &Value::from(false),
            &Value::from(false),
            &Value::from("1.3")
        ),
        "modify changes what it is given and nothing else: {gw}"
    );
    site.json(&["gateway", "redeploy", "cmg1", "--region", "south"]);
    let list = site.json(&["gateway", "list", "--json"]);
    assert_eq!(list[0]["region"], "south", "{list}");
    let refused = site.run(&["gateway", "show", "nope"]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("404 not_found"),
        "the site's refusal, code and message: {}",
        text(&refused)
    );

    // Roles.
    let role_id = "72057594037927938";
    let role = site.json(&[
        "role",
        "add",
        "--id",
        role_id,
        "--internal-url",
        "https://mp01.corp.example",
        "--allow-gateway-traffic",
    ]);
    assert_eq!(
        (&role["kind"], &role["mode"]),
        (&Value::from("management_point"), &Value::from("https")),
        "defaults: {role}"
    );
    assert!(
        role["mappings"].as_array().is_some_and(|m| !m.is_empty()),
        "{role}"
    );
    let role = site.json(&["role", "modify", role_id, "--mode", "enhanced_http"]);
    assert_eq!(role["mode"], "enhanced_http", "{role}");
    assert_eq!(
        site.json(&["role", "list", "--json"])[0]["role_id"],
        role_id
    );
    let bad = site.run(&[
        "role",
        "add",
        "--id",
        "1",
        "--internal-url",
        "x",
        "--mode",
        "ftp",
    ]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("http, enhanced_http or https"),
        "{}",
        text(&bad)
    );

    // Connection points: the files written, then listed.
    let cp_dir = path(tmp.path(), "cp1");
    let said = site.ok(&[
        "connection-point",
        "add",
        "--gateway",
        "cmg1",
        "--id",
        "cp1",
        "--gateway-addr",
        "127.0.0.1:10140",
        &cp_dir,
    ]);
    assert!(
        said.contains("connection point cp1 for gateway cmg1"),
        "{said}"
    );
    for f in ["connector.toml", "cp.pem", "cp.key", "site-ca.pem"] {
        assert!(Path::new(&cp_dir).join(f).exists(), "{f} missing: {said}");
    }
    assert_eq!(
        site.json(&["connection-point", "list", "--json"])[0]["id"],
        "cp1"
    );

    // Boundary groups and client settings.
    let bg = site.json(&[
        "boundary-group",
        "set",
        "bg1",
        "--gateway",
        "cmg1",
        "--boundary",
        "10.1.2.3/16",
        "--boundary",
        "10.9.0.10-10.9.0.99",
        "--prefer-cloud",
    ]);
    assert_eq!(
        (&bg["name"], &bg["gateways"][0], &bg["prefer_cloud"]),
        (
            &Value::from("bg1"),
            &Value::from("cmg1"),
            &Value::from(true)
        )
    );
    site.json(&[
        "boundary-group",
        "set",
        "bg2",
        "--neighbour",
        "bg1:mp-never",
    ]);
    let groups = site.json(&["boundary-group", "list", "--json"]);
    assert_eq!(
        groups[0]["boundaries"][0], "10.1.0.0/16",
        "stored by its network"
    );
    assert_eq!(groups[1]["neighbours"][0]["management_points"], false);
    let bad = site.run(&[
        "boundary-group",
        "set",
        "bg3",
        "--boundary",
        "10.0.0.9-10.0.0.1",
    ]);
    assert!(!bad.status.success(), "{}", text(&bad));
    site.json(&["boundary-group", "remove", "bg1"]);
    assert!(
        site.json(&["boundary-group", "list", "--json"])[0]["neighbours"]
            .as_array()
            .is_some_and(Vec::is_empty),
        "a removed group leaves its neighbours' relationships"
    );
    site.json(&["boundary-group", "remove", "bg2"]);
    for on in ["false", "true"] {
        site.json(&["client-settings", "--enable-cmg", on]);
        assert_eq!(
            site.json(&["client-settings"])["enable_clients_to_use_cmg"],
            on == "true"
        );
    }
    let set = site.json(&["client-settings", "--policy-interval-minutes", "15"]);
    assert_eq!(
        (
            &set["policy_interval_minutes"],
            &set["enable_clients_to_use_cmg"]
        ),
        (&Value::from(15), &Value::from(true)),
        "setting one keeps the others"
    );

    // Clients: none yet; the enrolment file holds the site key.
    assert_eq!(
        site.json(&["client", "list", "--json"]),
        Value::Array(vec![])
    );
    assert!(site.ok(&["client", "list"]).contains("no client"));
    let keys = path(tmp.path(), "site-keys.pem");
    site.ok(&["client", "trust", "--out", &keys]);
    let pem = std::fs::read_to_string(&keys).expect("site keys");
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"), "{pem}");

    // Bulk tokens: issued once, blocked, unblocked.
    let said = site.ok(&["token", "new", "--lifetime-minutes", "60"]);
    let tracking_id = said
        .lines()
        .find_map(|l| l.strip_prefix("tracking ID:"))
        .unwrap_or_else(|| panic!("{said}"))
        .trim()
        .to_owned();
    assert!(
        said.contains("token:        (shown once, not stored by the site)\n"),
        "{said}"
    );
    let token = said.lines().last().expect("the token");
    assert_eq!(token.split('.').count(), 3, "a JWS on its own line: {said}");
    site.json(&["token", "block", &tracking_id]);
    assert_eq!(site.json(&["token", "list", "--json"])[0]["blocked"], true);
    site.json(&["token", "unblock", &tracking_id]);
    assert_eq!(site.json(&["token", "list", "--json"])[0]["blocked"], false);
    let issued = site.json(&["token", "new"]);
    assert!(
        issued["token"].as_str().is_some() && issued["tracking_id"].as_str().is_some(),
        "{issued}"
    );

    // Signing keys.
    site.json(&["key", "roll", "--overlap-hours", "1"]);
    assert_eq!(
        site.json(&["key", "list", "--json"])
            .as_array()
            .map(Vec::len),
        Some(2)
    );

    // Storage: the keys go to the site and never come back.
    const KEY1: &str = "a2V5LW9uZS1vZi10aGUtYWNjb3VudA==";
    const KEY2: &str = "a2V5LXR3by1vZi10aGUtYWNjb3VudA==";
    std::fs::write(tmp.path().join("key1"), format!("{KEY1}\n")).expect("key1");
    std::fs::write(tmp.path().join("key2"), KEY2).expect("key2");
    let said = site.ok(&[
        "gateway",
        "storage",
        "set",
        "cmg1",
        "--account",
        "cmgcontent",
        "--container",
        "content",
        "--key1-file",
        &path(tmp.path(), "key1"),
        "--key2-file",
        &path(tmp.path(), "key2"),
        "--rotation-days",
        "30",
        "--json",
    ]);
    assert!(!said.contains(KEY1) && !said.contains(KEY2), "{said}");
    let storage: Value = serde_json::from_str(&said).expect("storage view");
    assert_eq!(
        (&storage["active_key"], &storage["rotation_days"]),
        (&Value::from("key1"), &Value::from(30)),
        "{storage}"
    );
    let shown = site.ok(&["gateway", "storage", "show", "cmg1"]);
    assert!(
        shown.contains("key in force:   key1\n") && shown.contains("rotation:       every 30 d\n"),
        "{shown}"
    );
    assert!(!shown.contains(KEY1) && !shown.contains(KEY2), "{shown}");
    let rotated = site.json(&["gateway", "storage", "rotate", "cmg1"]);
    assert_eq!(rotated["storage"]["active_key"], "key2", "{rotated}");
    assert_eq!(
        site.json(&["gateway", "storage", "show", "cmg1"])["active_key"],
        "key2"
    );

    // Alerts: the webhook set, shown, turned off.
    site.json(&["alert", "webhook", "--set", "http://127.0.0.1:9/alerts"]);
    assert_eq!(
        site.json(&["alert", "webhook"])["url"],
        "http://127.0.0.1:9/alerts"
    );
    site.json(&["alert", "webhook", "--off"]);
    assert_eq!(site.json(&["alert", "webhook"])["url"], Value::Null);

    // An instance's deployment package.
    let gw_dir = path(tmp.path(), "gw1");
    let said = site.ok(&[
        "gateway",
        "export",
        "cmg1",
        "--instance",
        "1",
        "--client-listen",
        "127.0.0.1:8444",
        &gw_dir,
    ]);
    assert!(said.contains("cmg1 instance 1"), "{said}");
    let toml = std::fs::read_to_string(Path::new(&gw_dir).join("gateway.toml")).expect("toml");
    assert!(toml.contains("127.0.0.1:8444"), "{toml}");

    // The audit log has it all, newest first.
    let audit = site.json(&["audit", "--limit", "3", "--json"]);
    assert_eq!(audit.as_array().map(Vec::len), Some(3), "{audit}");

    // The last gateway goes only with --force while clients are told to use one.
    let refused = site.run(&["gateway", "delete", "cmg1"]);
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("409 last_gateway"),
        "{}",
        text(&refused)
    );
    site.json(&["gateway", "delete", "cmg1", "--force"]);
    assert_eq!(
        site.json(&["gateway", "list", "--json"]),
        Value::Array(Vec::new())
    );

    site.stop();
}

/// The master key rotation procedure of the README: `key add-master`, `key rewrap` while
/// the site serves, the old key removed from the file, a restart; and a ring without the
/// new key refused at start (exit 78) naming it.
#[test]
fn master_key_rotation_from_the_command_line() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().join("site");
    let mut site = Site::start(&dir, &[]);
    let key_file = dir.join("master.key");
    let old_text = std::fs::read_to_string(&key_file).expect("master.key");
    let old = site.json(&["key", "master"])["sealing_key"]
        .as_str()
        .expect("sealing key")
        .to_owned();

    let out = command(&[
        "site",
        "--dir",
        dir.to_str().expect("utf-8"),
        "key",
        "add-master",
    ])
    .output()
    .expect("run add-master");
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("ring holds 2"),
        "{}",
        text(&out)
    );
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&key_file)
        .expect("meta")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the ring file stays private");
    let ring = std::fs::read_to_string(&key_file).expect("ring");
    let new_text = ring
        .lines()
        .rfind(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .expect("new key line")
        .to_owned();
    assert_ne!(new_text.trim(), old_text.trim());

    let report = site.json(&["key", "rewrap"]);
    let new = report["sealing_key"]
        .as_str()
        .expect("sealing key")
        .to_owned();
    assert_ne!(new, old, "{report}");
    assert_eq!(report["left"], 0, "{report}");
    assert!(report["from"][&old].as_u64().unwrap_or(0) >= 4, "{report}");
    let shown = site.ok(&["key", "master"]);
    assert!(shown.contains(&format!("sealing key: {new}")), "{shown}");
    let status = site.json(&["key", "master"]);
    assert_eq!(
        status["values"].as_object().expect("values").len(),
        1,
        "only the new key seals: {status}"
    );
    assert!(
        status["values"][&new].as_u64().unwrap_or(0) >= 4,
        "{status}"
    );
    site.stop();

    // The old key leaves the file; the site starts and serves.
    cmg_core::private_file::write(&key_file, format!("{new_text}\n").as_bytes()).expect("write");
    let mut again = Site::serve(&dir);
    assert_eq!(
        again.json(&["key", "master"])["ring"],
        serde_json::json!([new])
    );
    again.json(&["key", "list", "--json"]);
    again.stop();

    // Only the old key: refused at start, naming the key it lacks.
    cmg_core::private_file::write(&key_file, old_text.as_bytes()).expect("write");
    let out = command(&[
        "site",
        "--dir",
        dir.to_str().expect("utf-8"),
        "serve",
        "--listen",
        "127.0.0.1:0",
    ])
    .output()
    .expect("run serve");
    assert_eq!(out.status.code(), Some(78), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&new) && stderr.contains("not in the key ring"),
        "{}",
        text(&out)
    );
}
