use super::*;

#[test]
fn periods_are_the_pattern_s_bounds() {
    assert_eq!(period_secs("90d"), Some(MAX_PERIOD_SECS));
    assert_eq!(period_secs("2160h"), Some(MAX_PERIOD_SECS));
    assert_eq!(period_secs("129600m"), Some(MAX_PERIOD_SECS));
    assert_eq!(period_secs("7776000s"), Some(MAX_PERIOD_SECS));
    assert_eq!(period_secs("0000024h"), Some(86_400));
    assert_eq!(period_secs("0s"), Some(0));
    for bad in [
        "",
        "d",
        "91d",
        "2161h",
        "129601m",
        "7776001s",
        " 1d",
        "1d ",
        "+1d",
        "1w",
        "1D",
        "99999999999999999999999d",
        "1\n",
        "\u{d719}",
        "1\u{d719}",
        "é",
    ] {
        assert_eq!(period_secs(bad), None, "{bad:?}");
    }
}

#[test]
fn list_limits_are_bounded() {
    assert!(check_limit(None).is_ok());
    assert!(check_limit(Some(1)).is_ok() && check_limit(Some(MAX_LIMIT)).is_ok());
    assert_eq!(check_limit(Some(0)).expect_err("0").code, "bad_limit");
    assert_eq!(
        check_limit(Some(MAX_LIMIT + 1)).expect_err("1001").code,
        "bad_limit"
    );
}

/// Every pattern the document states is one of the shapes the extractors and the store
/// check (a pattern written into an attribute by hand cannot drift from them).
#[test]
fn the_document_states_only_these_patterns() {
    fn collect(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    match (k.as_str(), v) {
                        ("pattern", serde_json::Value::String(p)) => out.push(p.clone()),
                        _ => collect(v, out),
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| collect(v, out)),
            _ => {}
        }
    }
    let doc = serde_json::to_value(crate::api::openapi()).expect("document");
    let mut found = Vec::new();
    collect(&doc, &mut found);
    let ours = [
        GATEWAY_NAME,
        ROLE_ID,
        CONNECTION_POINT_ID,
        BOUNDARY_GROUP_NAME,
        TRACKING_ID,
        PERIOD,
        STEP,
    ];
    assert!(found.len() >= ours.len());
    for p in &found {
        assert!(
            ours.contains(&p.as_str()),
            "{p} is not a pattern of names.rs or params.rs"
        );
    }
    for p in ours {
        assert!(found.iter().any(|f| f == p), "{p} is not in the document");
    }
}

#[test]
fn steps_are_the_pattern_s_bounds() {
    let re = |s: &str| {
        // The pattern's two alternatives, by hand: h 1..=720, d 1..=30, leading zeros.
        step_secs(s).is_some()
    };
    for ok in ["1h", "6h", "24h", "720h", "0012h", "1d", "30d", "07d"] {
        assert!(re(ok), "{ok}");
    }
    for no in [
        "0h", "721h", "1000h", "31d", "0d", "h", "1m", "3600s", "1.5h", "-1h", "1H", "6h ", "٣h",
    ] {
        assert!(!re(no), "{no}");
    }
    assert_eq!(step_secs("6h"), Some(6 * 3600));
    assert_eq!(step_secs("30d"), Some(30 * 86_400));
}
