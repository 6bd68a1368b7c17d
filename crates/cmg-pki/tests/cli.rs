//! `cmg cert verify` output, through the same entry point the binary calls.

mod common;

use std::path::{Path, PathBuf};

use cmg_pki::cli::{verify_files, VerifyRequest};
use cmg_pki::verify::Purpose;
use common::{fixture, SERVICE_NAME};

fn request(trust: &Path, leaf: &Path, purpose: Purpose) -> VerifyRequest {
    VerifyRequest {
        trust: vec![trust.to_path_buf()],
        intermediates: Vec::new(),
        crls: Vec::new(),
        crl_fetch: false,
        ocsp: false,
        time: None,
        purpose,
        name: None,
        leaf: leaf.to_path_buf(),
    }
}

#[test]
fn valid_client_prints_one_ok_line() {
    let f = fixture();
    let line = verify_files(&request(
        &f.paths.root_ca,
        &f.paths.client_cert,
        Purpose::Client,
    ))
    .expect("OK");
    assert!(
        line.starts_with(
            "OK subject=\"CN=client01.corp.example\" issuer=\"CN=cmg demo intermediate CA, O=cmg demo "
        ),
        "{line}"
    );
    assert!(line.ends_with(" purpose=client"), "{line}");
    assert!(!line.contains('\n'));
}

#[test]
fn rejections_name_the_code_and_reason() {
    let f = fixture();
    let err = verify_files(&request(
        &f.paths.root_ca,
        &f.paths.expired_client_cert,
        Purpose::Client,
    ))
    .expect_err("expired");
    assert!(
        err.starts_with("REJECTED expired: certificate expired at "),
        "{err}"
    );

    let mut revoked = request(
        &f.paths.root_ca,
        &f.paths.revoked_client_cert,
        Purpose::Client,
    );
    verify_files(&revoked).expect("without CRL");
    revoked.crls = vec![f.paths.crl.clone()];
    let err = verify_files(&revoked).expect_err("with CRL");
    assert!(err.starts_with("REJECTED revoked: "), "{err}");

    let mut named = request(&f.paths.root_ca, &f.paths.server_cert, Purpose::Server);
    named.name = Some(SERVICE_NAME.into());
    let ok = verify_files(&named).expect("service name");
    assert!(
        ok.ends_with(&format!("purpose=server name=\"{SERVICE_NAME}\"")),
        "{ok}"
    );
    named.name = Some("other.example".into());
    let err = verify_files(&named).expect_err("other name");
    assert!(err.starts_with("REJECTED name_mismatch: "), "{err}");
}

#[test]
fn time_option_moves_the_clock() {
    let f = fixture();
    let mut req = request(&f.paths.root_ca, &f.paths.client_cert, Purpose::Client);
    req.time = Some("2200-01-01T00:00:00Z".into());
    let err = verify_files(&req).expect_err("far future");
    assert!(err.starts_with("REJECTED expired: "), "{err}");
    req.time = Some("1999-01-01T00:00:00Z".into());
    let err = verify_files(&req).expect_err("past");
    assert!(err.starts_with("REJECTED not_yet_valid: "), "{err}");
    req.time = Some("yesterday".into());
    let err = verify_files(&req).expect_err("bad time");
    assert!(err.starts_with("ERROR "), "{err}");
}

#[test]
fn loading_errors_are_errors() {
    let f = fixture();
    let missing = PathBuf::from("/nonexistent/cmg/leaf.pem");
    let err = verify_files(&request(&f.paths.root_ca, &missing, Purpose::Client))
        .expect_err("missing leaf");
    assert!(
        err.starts_with("ERROR ") && err.contains("/nonexistent/cmg/leaf.pem"),
        "{err}"
    );
    let err = verify_files(&request(&missing, &f.paths.client_cert, Purpose::Client))
        .expect_err("missing trust");
    assert!(err.starts_with("ERROR "), "{err}");
    // A key file is not a certificate file.
    let err = verify_files(&request(
        &f.paths.root_ca,
        &f.paths.client_key,
        Purpose::Client,
    ))
    .expect_err("key as leaf");
    assert!(err.starts_with("ERROR "), "{err}");
}

#[test]
fn trust_accepts_a_bundle_of_roots() {
    let f = fixture();
    let dir = tempfile::tempdir().expect("tempdir");
    let bundle = dir.path().join("roots.pem");
    let text = [&f.paths.root_ca, &f.paths.untrusted_root_ca]
        .iter()
        .map(|p| std::fs::read_to_string(p).expect("read"))
        .collect::<String>();
    std::fs::write(&bundle, text).expect("write");
    for leaf in [&f.paths.client_cert, &f.paths.untrusted_client_cert] {
        verify_files(&request(&bundle, leaf, Purpose::Client)).expect("either root");
    }
}
