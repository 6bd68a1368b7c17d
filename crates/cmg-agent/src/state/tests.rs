use super::*;

#[test]
fn saves_with_mode_0600_and_loads_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sub = dir.path().join("state");
    assert!(State::load(&sub, "DEM").expect("no file yet").is_none());
    let mut s = State::new("DEM", "device-1".into());
    s.device_token = Some(DeviceToken {
        token: "t".into(),
        tracking_id: "id".into(),
        issued_at: 1,
        expires_at: 2,
    });
    s.save(&sub).expect("save");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(sub.join(STATE_FILE))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert_eq!(State::load(&sub, "DEM").expect("load"), Some(s));
    assert!(
        !sub.join(".state.json.tmp").exists(),
        "the temporary file is renamed"
    );
}

#[test]
fn corrupt_foreign_and_future_files_are_refused_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join(STATE_FILE);
    std::fs::write(&file, "{ not json").expect("write");
    let err = State::load(dir.path(), "DEM").expect_err("corrupt");
    assert!(matches!(err, StateError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("state.json"), "{err}");

    std::fs::write(&file, r#"{"hello": 1}"#).expect("write");
    let err = State::load(dir.path(), "DEM").expect_err("no format");
    assert!(err.to_string().contains("no `format` field"), "{err}");

    std::fs::write(&file, r#"{"format": "cmg-client-state/9"}"#).expect("write");
    let err = State::load(dir.path(), "DEM").expect_err("future");
    assert!(matches!(err, StateError::Format { .. }), "{err}");

    State::new("OTH", "d".into())
        .save(dir.path())
        .expect("save");
    let err = State::load(dir.path(), "DEM").expect_err("foreign");
    assert!(matches!(err, StateError::ForeignSite { .. }), "{err}");
    assert!(
        err.to_string().contains("`OTH`") && err.to_string().contains("`DEM`"),
        "{err}"
    );
}

#[test]
fn only_the_newest_errors_are_kept() {
    let mut s = State::new("DEM", "d".into());
    for i in 0..(KEPT_ERRORS as i64 + 3) {
        s.record_error(i, format!("e{i}"));
    }
    assert_eq!(s.errors.len(), KEPT_ERRORS);
    assert_eq!(s.errors[0].message, "e3");
}
