//! Every demo certificate checked with `verify_chain`, with the outcome it was made for.

mod common;

use std::path::Path;

use cmg_pki::describe::connector_identity;
use cmg_pki::verify::{verify_chain, Purpose, VerifyError, VerifyOptions};
use cmg_pki::TrustStore;
use common::{certs, fixture, root_store, root_store_with_crl, SERVICE_NAME};

fn check(
    store: &TrustStore,
    cert_file: &Path,
    purpose: Purpose,
    name: Option<&str>,
) -> Result<cmg_pki::describe::CertSummary, VerifyError> {
    let chain = certs(cert_file);
    let opts = VerifyOptions {
        dns_name: name,
        ..VerifyOptions::new(purpose)
    };
    verify_chain(store, &chain[0], &chain[1..], &opts)
}

fn code(result: Result<cmg_pki::describe::CertSummary, VerifyError>) -> &'static str {
    match result {
        Ok(summary) => panic!("expected a rejection, got OK for {}", summary.subject),
        Err(err) => err.code(),
    }
}

#[test]
fn valid_client_is_accepted_for_client_only() {
    let f = fixture();
    let store = root_store(&f.paths);
    let summary = check(&store, &f.paths.client_cert, Purpose::Client, None).expect("client");
    assert_eq!(summary.subject, "CN=client01.corp.example");
    assert!(
        summary
            .issuer
            .starts_with("CN=cmg demo intermediate CA, O=cmg demo "),
        "{}",
        summary.issuer
    );
    check(&store, &f.paths.client_cert, Purpose::Any, None).expect("any");
    assert_eq!(
        code(check(&store, &f.paths.client_cert, Purpose::Server, None)),
        "wrong_eku"
    );
}

#[test]
fn leaf_without_its_intermediate_needs_a_configured_one() {
    let f = fixture();
    let leaf = certs(&f.paths.client_cert).remove(0);
    let opts = VerifyOptions::new(Purpose::Client);
    let err = verify_chain(&root_store(&f.paths), &leaf, &[], &opts).expect_err("no path");
    assert_eq!(err.code(), "unknown_issuer");

    let store =
        TrustStore::new(certs(&f.paths.root_ca), certs(&f.paths.intermediate_ca)).expect("store");
    verify_chain(&store, &leaf, &[], &opts).expect("configured intermediate completes the path");
}

#[test]
fn expired_client_is_rejected() {
    let f = fixture();
    let err = check(
        &root_store(&f.paths),
        &f.paths.expired_client_cert,
        Purpose::Client,
        None,
    )
    .expect_err("expired");
    assert_eq!(err.code(), "expired");
    assert!(
        err.to_string().starts_with("certificate expired at "),
        "{err}"
    );
    assert_eq!(
        err.to_rustls(),
        rustls::Error::InvalidCertificate(rustls::CertificateError::Expired)
    );
}

#[test]
fn server_auth_only_cert_is_not_a_client_cert() {
    let f = fixture();
    let store = root_store(&f.paths);
    let err =
        check(&store, &f.paths.no_eku_client_cert, Purpose::Client, None).expect_err("no EKU");
    assert_eq!(err.code(), "wrong_eku");
    assert!(err.to_string().contains("server_auth"), "{err}");
    check(&store, &f.paths.no_eku_client_cert, Purpose::Server, None).expect("server purpose");
}

#[test]
fn untrusted_root_is_unknown_issuer() {
    let f = fixture();
    assert_eq!(
        code(check(
            &root_store(&f.paths),
            &f.paths.untrusted_client_cert,
            Purpose::Client,
            None
        )),
        "unknown_issuer"
    );
    // The same certificate is fine for whoever trusts its root.
    let store = TrustStore::new(certs(&f.paths.untrusted_root_ca), Vec::new()).expect("store");
    check(
        &store,
        &f.paths.untrusted_client_cert,
        Purpose::Client,
        None,
    )
    .expect("own root");
}

#[test]
fn revoked_client_is_rejected_only_with_the_crl() {
    let f = fixture();
    let with_crl = root_store_with_crl(&f.paths);
    assert!(with_crl.checks_revocation());
    assert_eq!(
        code(check(
            &with_crl,
            &f.paths.revoked_client_cert,
            Purpose::Client,
            None
        )),
        "revoked"
    );
    check(
        &root_store(&f.paths),
        &f.paths.revoked_client_cert,
        Purpose::Client,
        None,
    )
    .expect("no CRL, no revocation check");
    // Other certificates from the same intermediate pass the CRL check (crl.pem holds
    // the intermediate's CRL and the root's, which covers the intermediate).
    check(&with_crl, &f.paths.client_cert, Purpose::Client, None).expect("not revoked");
    check(&with_crl, &f.paths.role_client_cert, Purpose::Client, None).expect("not revoked");
}

#[test]
fn revocation_fails_closed_when_a_crl_is_missing() {
    let f = fixture();
    // Only the intermediate's CRL: the intermediate certificate's own status (on the
    // root's CRL) cannot be determined, so even a good client is refused.
    let only_leaf_crl = root_store(&f.paths)
        .with_crls(vec![rustls_pki_types::CertificateRevocationListDer::from(
            std::fs::read(&f.paths.intermediate_crl).expect("read"),
        )])
        .expect("store");
    let err = check(&only_leaf_crl, &f.paths.client_cert, Purpose::Client, None)
        .expect_err("unknown status");
    assert_eq!(err.code(), "revocation_unknown", "{err}");
    assert_eq!(err.check(), "revocation");
    assert!(err.to_string().contains("no usable CRL"), "{err}");
}

#[test]
fn server_cert_matches_its_names_only() {
    let f = fixture();
    let store = root_store(&f.paths);
    for name in [SERVICE_NAME, "localhost", "127.0.0.1"] {
        check(&store, &f.paths.server_cert, Purpose::Server, Some(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let err = check(
        &store,
        &f.paths.server_cert,
        Purpose::Server,
        Some("other.example"),
    )
    .expect_err("other name");
    assert_eq!(err.code(), "name_mismatch");
    assert!(err.to_string().contains("other.example"), "{err}");
    assert_eq!(
        code(check(&store, &f.paths.server_cert, Purpose::Client, None)),
        "wrong_eku"
    );
}

#[test]
fn role_certificates_verify() {
    let f = fixture();
    let store = root_store(&f.paths);
    for name in ["localhost", "127.0.0.1"] {
        check(
            &store,
            &f.paths.role_server_cert,
            Purpose::Server,
            Some(name),
        )
        .expect("role server");
    }
    check(&store, &f.paths.role_client_cert, Purpose::Client, None).expect("role client");
}

#[test]
fn connector_certs_chain_to_the_site_ca_only() {
    let f = fixture();
    let site = TrustStore::new(certs(&f.paths.site_ca), Vec::new()).expect("site store");
    let root = root_store(&f.paths);
    assert_eq!(f.paths.connectors.len(), 2);
    for connector in &f.paths.connectors {
        let summary = check(&site, &connector.cert, Purpose::Client, None).expect("site CA");
        assert_eq!(
            summary.uris,
            [format!("urn:cmg:connection-point:PS1:{}", connector.id)]
        );
        let (site_code, id) = connector_identity(&certs(&connector.cert)[0]).expect("identity");
        assert_eq!(site_code.as_str(), "PS1");
        assert_eq!(id, connector.id);
        assert_eq!(
            code(check(&root, &connector.cert, Purpose::Client, None)),
            "unknown_issuer"
        );
    }
    // And the site CA does not vouch for ordinary clients.
    assert_eq!(
        code(check(&site, &f.paths.client_cert, Purpose::Client, None)),
        "unknown_issuer"
    );
}
