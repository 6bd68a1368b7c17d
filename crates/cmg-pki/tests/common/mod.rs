//! A demo PKI written to a temporary directory, shared by the integration tests.

#![allow(dead_code)]

use std::path::Path;

use cmg_pki::demo::{DemoPki, DemoPkiPaths, DemoPkiSpec};
use cmg_pki::pem::{load_certs, load_crls};
use cmg_pki::TrustStore;
use cmg_proto::{ConnectorId, SiteCode};
use rustls_pki_types::CertificateDer;

pub const SERVICE_NAME: &str = "cmg.contoso.example";

pub struct Fixture {
    pub paths: DemoPkiPaths,
    _dir: tempfile::TempDir,
}

pub fn fixture() -> Fixture {
    let spec = DemoPkiSpec {
        service_name: SERVICE_NAME.into(),
        site: SiteCode::new("PS1").expect("site"),
        connectors: vec![
            ConnectorId::new("cp1").expect("id"),
            ConnectorId::new("cp2").expect("id"),
        ],
        crl_url: Some("http://crl.corp.example".into()),
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = DemoPki::generate(&spec).expect("generate demo PKI");
    let paths = pki.write(dir.path()).expect("write demo PKI");
    Fixture { paths, _dir: dir }
}

pub fn certs(path: &Path) -> Vec<CertificateDer<'static>> {
    load_certs(path).expect("load certs")
}

/// Trusts the demo root only; no configured intermediates, no CRLs.
pub fn root_store(paths: &DemoPkiPaths) -> TrustStore {
    TrustStore::new(certs(&paths.root_ca), Vec::new()).expect("store")
}

/// Trusts the demo root and checks the demo CRL.
pub fn root_store_with_crl(paths: &DemoPkiPaths) -> TrustStore {
    root_store(paths)
        .with_crls(load_crls(&paths.crl).expect("crl"))
        .expect("store with CRL")
}
