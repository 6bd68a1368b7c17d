//! The CLI as an administrator meets it, each command a process of its own: every list
//! as an aligned table by default and as the API's JSON with `--json`, against a site
//! served on loopback; errors that keep their cause (a refused connection and a
//! certificate for another name read differently); no colour codes when stderr is not a
//! terminal; `--check` exit codes (roles and `site serve`); completions and man pages.

mod site_support;

use std::path::Path;

use serde_json::Value;
use site_support::{path, run, text, Site};

/// The table's header and rows, split on runs of two or more spaces.
fn rows(table: &str) -> Vec<Vec<String>> {
    table
        .lines()
        .map(|l| {
            l.split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .collect()
}

/// Each column starts at the same offset on every line (the header's offsets).
fn assert_aligned(table: &str, header: &[&str]) {
    let lines: Vec<&str> = table.lines().collect();
    let head = lines.first().expect("a header line");
    let starts: Vec<usize> = header
        .iter()
        .map(|h| head.find(h).unwrap_or_else(|| panic!("{h} in {head:?}")))
        .collect();
    for line in &lines[1..] {
        for s in &starts[1..] {
            let before = &line[..*s];
            assert!(
                before.ends_with("  ") || before.ends_with(' '),
                "column at {s} not aligned in {line:?}:\n{table}"
            );
            assert!(
                !line[*s..].starts_with(' '),
                "column at {s} not aligned in {line:?}:\n{table}"
            );
        }
    }
}

/// No Unix seconds (a standalone number of ten digits, as until 2286) where a person
/// reads a time. Digits inside a random identifier (a key ID) are not a time.
fn assert_no_epoch(table: &str) {
    for word in table.split(|c: char| c.is_whitespace() || c == ',') {
        let epoch = word.len() == 10 && word.bytes().all(|b| b.is_ascii_digit());
        assert!(!epoch, "epoch seconds {word} in:\n{table}");
    }
}

#[test]
fn every_list_prints_a_table_and_json() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let pki = tmp.path().join("pki");
    let out = run(&["cert", "demo-pki", pki.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", text(&out));
    let site = Site::start(&tmp.path().join("site"), &[]);
    let (cert, key) = (path(&pki, "server.pem"), path(&pki, "server.key"));
    site.ok(&["gateway", "create", "cmg1", "--cert", &cert, "--key", &key]);
    let cp_dir = path(tmp.path(), "cp1");
    site.ok(&[
        "connection-point",
        "add",
        "--gateway",
        "cmg1",
        "--id",
        "cp1",
        &cp_dir,
    ]);
    site.ok(&[
        "role",
        "add",
        "--id",
        "72057594037927937",
        "--internal-url",
        "https://mp01.corp.example",
        "--allow-gateway-traffic",
    ]);
    site.ok(&["boundary-group", "set", "hq", "--gateway", "cmg1"]);
    site.ok(&["token", "new"]);

    // (command, header, a cell of the one row it must show, the JSON field holding it)
    let lists: &[(&[&str], &[&str], &str, &str)] = &[
        (
            &["gateway", "list"],
            &["NAME", "SERVICE NAME", "REGION", "INSTANCES", "SETTINGS"],
            "cmg1",
            "name",
        ),
        (
            &["connection-point", "list"],
            &["ID", "GATEWAY", "CERTIFICATE EXPIRES", "ADDED"],
            "cp1",
            "id",
        ),
        (
            &["role", "list"],
            &["ROLE ID", "KIND", "MODE", "GATEWAY TRAFFIC", "MAPPINGS"],
            "72057594037927937",
            "role_id",
        ),
        (
            &["boundary-group", "list"],
            &["NAME", "BOUNDARIES", "MANAGEMENT POINTS", "GATEWAYS"],
            "hq",
            "name",
        ),
        (
            &["token", "list"],
            &["TRACKING ID", "ISSUED", "EXPIRES", "BY", "BLOCKED"],
            "",
            "tracking_id",
        ),
        (&["key", "list"], &["KID", "STATE", "CREATED"], "", "kid"),
        (
            &["audit"],
            &["AT", "ACTOR", "ACTION", "TARGET", "DETAIL"],
            "",
            "action",
        ),
    ];
    for (args, header, cell, field) in lists {
        let json_args: Vec<&str> = args.iter().copied().chain(["--json"]).collect();
        let json: Value = serde_json::from_str(&site.ok(&json_args))
            .unwrap_or_else(|e| panic!("{args:?} --json: {e}"));
        let items = json
            .as_array()
            .unwrap_or_else(|| panic!("{args:?}: {json}"));
        assert!(!items.is_empty(), "{args:?}: {json}");
        let first = items[0][field]
            .as_str()
            .unwrap_or_else(|| panic!("{args:?}: {field} in {json}"));
        if !cell.is_empty() {
            assert_eq!(first, *cell, "{args:?}: {json}");
        }

        let table = site.ok(args);
        let rows = rows(&table);
        assert_eq!(&rows[0][..header.len()], *header, "{args:?}:\n{table}");
        assert_eq!(
            rows.len(),
            items.len() + 1,
            "{args:?}: one row per item:\n{table}"
        );
        assert!(
            rows[1..]
                .iter()
                .any(|r| r[0] == first || r.iter().any(|c| c == first)),
            "{args:?}: {first} in:\n{table}"
        );
        assert_aligned(&table, header);
        assert_no_epoch(&table);
    }

    // `--check` on what the site wrote: valid (0); a connection point without a
    // gateway address, and a file that is not TOML, are configuration errors (78).
    let gw_dir = path(tmp.path(), "gw1-1");
    site.ok(&["gateway", "export", "cmg1", "--instance", "1", &gw_dir]);
    let gateway = path(Path::new(&gw_dir), "gateway.toml");
    let out = run(&["gateway", "--check", "--config", &gateway]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("configuration valid"),
        "{}",
        text(&out)
    );
    let connector = path(Path::new(&cp_dir), "connector.toml");
    let out = run(&["connector", "--check", "--config", &connector]);
    assert_eq!(out.status.code(), Some(78), "{}", text(&out));
    let bad = path(tmp.path(), "bad.toml");
    std::fs::write(&bad, "listen = [").expect("write bad.toml");
    for role in ["gateway", "connector"] {
        let out = run(&[role, "--check", "--config", &bad]);
        assert_eq!(out.status.code(), Some(78), "{role}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("bad.toml"), "{role}: {}", text(&out));
        assert_eq!(err.lines().count(), 1, "printed once: {}", text(&out));
    }
    // Without --check a configuration error exits 78 too.
    let out = run(&["gateway", "--config", &bad]);
    assert_eq!(out.status.code(), Some(78), "{}", text(&out));
    // The site's own files: valid (0); a directory without its master key and admin
    // token is a configuration error (78), named once.
    let out = run(&["site", "--dir", &site.dir, "serve", "--check"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("configuration valid"),
        "{}",
        text(&out)
    );
    let empty = path(tmp.path(), "no-site");
    std::fs::create_dir_all(&empty).expect("mkdir");
    let out = run(&["site", "--dir", &empty, "serve", "--check"]);
    assert_eq!(out.status.code(), Some(78), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).lines().count(),
        1,
        "printed once: {}",
        text(&out)
    );

    // Times read as RFC 3339 in the local time zone (TZ) with an age.
    let tokens = site.ok(&["token", "list"]);
    assert!(
        tokens.contains("Z (") && tokens.contains(" ago)"),
        "{tokens}"
    );
    assert!(tokens.contains("in "), "the expiry is ahead:\n{tokens}");
    let mut india = site.command_as("127.0.0.1", &["token", "list"]);
    let out = india.env("TZ", "IST-5:30").output().expect("run cmg");
    let tokens = String::from_utf8_lossy(&out.stdout);
    assert!(tokens.contains("+05:30 ("), "{}", text(&out));

    // Every command that prints one thing prints a key/value block, and its JSON with
    // --json (each is run twice: setting the same again changes nothing).
    let shows: &[(&[&str], &str)] = &[
        (&["gateway", "show", "cmg1"], "service name:"),
        (
            &["gateway", "modify", "cmg1", "--content", "false"],
            "settings version v",
        ),
        (
            &["role", "modify", "72057594037927937", "--mode", "https"],
            "gateway traffic:",
        ),
        (
            &["boundary-group", "set", "branch", "--gateway", "cmg1"],
            "gateways:",
        ),
        (&["client-settings"], "use CMG:"),
        (&["alert", "webhook"], "alert webhook:"),
        (&["key", "roll", "--overlap-hours", "1"], "kid:"),
    ];
    for (args, key) in shows {
        let block = site.ok(args);
        assert!(block.contains(key), "{args:?}: {key} in\n{block}");
        assert_block(&block);
        assert_no_epoch(&block);
        let json_args: Vec<&str> = args.iter().copied().chain(["--json"]).collect();
        let json: Value = serde_json::from_str(&site.ok(&json_args))
            .unwrap_or_else(|e| panic!("{args:?} --json: {e}"));
        assert!(json.is_object(), "{args:?}: {json}");
    }
    // The status: a block per gateway, the API's list with --json.
    let status = site.ok(&["status"]);
    assert!(status.starts_with("cmg1  Disconnected\n"), "{status}");
    assert!(
        status.contains("  instances:          0 of 1 connected\n"),
        "{status}"
    );
    assert_no_epoch(&status);
    let json: Value = serde_json::from_str(&site.ok(&["status", "--json"])).expect("json");
    assert_eq!(json[0]["gateway"], "cmg1", "{json}");

    // A deletion says what it did, or prints {"ok": true}.
    let said = site.ok(&["boundary-group", "remove", "branch"]);
    assert_eq!(said, "boundary group branch removed\n");
    site.ok(&["boundary-group", "set", "branch"]);
    let json: Value =
        serde_json::from_str(&site.ok(&["boundary-group", "remove", "branch", "--json"]))
            .expect("json");
    assert_eq!(json, serde_json::json!({"ok": true}));

    // A name with a space is one path segment (percent-encoded), as the API reads it.
    site.ok(&["boundary-group", "set", "Main office", "--gateway", "cmg1"]);
    let groups: Value =
        serde_json::from_str(&site.ok(&["boundary-group", "list", "--json"])).expect("json");
    let names: Vec<&Value> = groups
        .as_array()
        .expect("a list")
        .iter()
        .map(|g| &g["name"])
        .collect();
    assert!(names.contains(&&Value::from("Main office")), "{groups}");
    let said = site.ok(&["boundary-group", "remove", "Main office"]);
    assert_eq!(said, "boundary group Main office removed\n");
}

/// A key/value block: every line is `key:  value` with the values in one column, or a
/// continuation indented to that column.
fn assert_block(block: &str) {
    let mut column = None;
    for line in block.lines() {
        if line.starts_with(' ') {
            let at = line.len() - line.trim_start().len();
            assert_eq!(Some(at), column, "continuation {line:?} in:\n{block}");
            continue;
        }
        let Some((key, rest)) = line.split_once(':') else {
            // A value on a line of its own (the token after its block).
            assert!(column.is_some(), "{line:?} in:\n{block}");
            continue;
        };
        if rest.is_empty() {
            continue;
        }
        let at = key.len() + 1 + (rest.len() - rest.trim_start().len());
        assert_eq!(*column.get_or_insert(at), at, "{line:?} in:\n{block}");
    }
    assert!(column.is_some(), "no key/value line in:\n{block}");
}

#[test]
fn a_refused_connection_and_a_wrong_certificate_name_read_differently() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // The API's certificate names only localhost: 127.0.0.1 is another name.
    let site = Site::start(&tmp.path().join("site"), &["localhost"]);
    let out = site.run_as("localhost", &["key", "list"]);
    assert!(out.status.success(), "{}", text(&out));

    let wrong = site.run_as("127.0.0.1", &["key", "list"]);
    assert_eq!(wrong.status.code(), Some(1), "{}", text(&wrong));
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        stderr.contains("client error (Connect)") && stderr.contains("not valid for name"),
        "{}",
        text(&wrong)
    );

    // A port nothing listens on: the one the site had, after it stops.
    let port = site.port;
    drop(site);
    let refused = run(&[
        "site",
        "--dir",
        &path(tmp.path(), "site"),
        "key",
        "list",
        "--url",
        &format!("https://localhost:{port}"),
    ]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("client error (Connect)") && stderr.contains("onnection refused"),
        "{}",
        text(&refused)
    );
    assert!(!stderr.contains("not valid for name"), "{}", text(&refused));
    assert_eq!(stderr.lines().count(), 1, "one line: {}", text(&refused));
}

#[test]
fn log_lines_through_a_pipe_carry_no_colour_codes() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = path(tmp.path(), "site");
    // `init` logs at info on stderr, here a pipe.
    let out = run(&["site", "--dir", &dir, "init"]);
    assert!(out.status.success(), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("INFO"), "init logs: {}", text(&out));
    assert!(!stderr.contains('\u{1b}'), "colour codes: {stderr:?}");
}

#[test]
fn completions_and_man_pages_come_from_the_command_line_definition() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = run(&["completions", shell]);
        assert!(out.status.success(), "{shell}: {}", text(&out));
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(script.contains("connection-point"), "{shell}: {script}");
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = run(&["man", tmp.path().to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", text(&out));
    let top = std::fs::read_to_string(tmp.path().join("cmg.1")).expect("cmg.1");
    assert!(top.contains(".TH cmg"), "{top}");
    let list = std::fs::read_to_string(tmp.path().join("cmg-site-gateway-list.1"))
        .expect("cmg-site-gateway-list.1");
    assert!(list.contains("\\-\\-json"), "{list}");
    assert!(list.contains("List the gateways"), "{list}");
}

/// A usage error shows only what is required (the API options have defaults), exits 2;
/// a command run outside the site's directory says how to name it.
#[test]
fn usage_and_a_missing_site_directory_say_what_to_give() {
    let out = run(&["site", "gateway", "show"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Usage: cmg site gateway show <NAME>\n"),
        "{}",
        text(&out)
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let nowhere = path(tmp.path(), "no-site");
    let out = run(&["site", "--dir", &nowhere, "status"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no site directory") && err.contains("--dir or CMG_SITE_DIR"),
        "{}",
        text(&out)
    );
    assert_eq!(err.lines().count(), 1, "{}", text(&out));
}
