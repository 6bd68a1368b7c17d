//! Shared by the gateway's integration tests: the demo PKI for the service name and a
//! path quoted for TOML.

use std::path::Path;

use cmg_pki::demo::{DemoPki, DemoPkiPaths, DemoPkiSpec};
use cmg_proto::{ConnectorId, SiteCode};

pub const SERVICE: &str = "cmg.demo.test";

/// A demo PKI (site `DEM`, connection point `cp1`, no CRL URL) written to `dir`.
pub fn pki(dir: &Path) -> DemoPkiPaths {
    DemoPki::generate(&DemoPkiSpec {
        service_name: SERVICE.into(),
        site: SiteCode::new("DEM").expect("site"),
        connectors: vec![ConnectorId::new("cp1").expect("id")],
        crl_url: None,
    })
    .expect("generate")
    .write(dir)
    .expect("write")
}

/// `p` as a TOML basic string.
pub fn q(p: &Path) -> String {
    format!("{:?}", p.display().to_string())
}
