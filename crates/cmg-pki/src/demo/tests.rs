use super::*;
use crate::describe::{connector_identity, describe};
use crate::pem::parse_key;

pub(crate) fn spec() -> DemoPkiSpec {
    DemoPkiSpec {
        service_name: "cmg.contoso.example".into(),
        site: SiteCode::new("PS1").expect("site"),
        connectors: vec![
            ConnectorId::new("cp1").expect("id"),
            ConnectorId::new("cp2").expect("id"),
        ],
        crl_url: Some("http://crl.corp.example".into()),
    }
}

#[test]
fn duplicate_connectors_are_refused() {
    let mut spec = spec();
    spec.connectors.push(spec.connectors[0].clone());
    assert!(matches!(
        DemoPki::generate(&spec),
        Err(PkiError::Generate(_))
    ));
}

#[test]
fn certificates_carry_the_expected_names() {
    let pki = DemoPki::generate(&spec()).expect("generate");

    let server = parse_certs(&pki.server.cert_pem).expect("server");
    assert_eq!(server.len(), 2, "leaf + intermediate");
    let summary = describe(&server[0]).expect("describe");
    assert_eq!(summary.dns_names, ["cmg.contoso.example", "localhost"]);
    assert_eq!(summary.ip_addresses, ["127.0.0.1"]);
    assert_eq!(summary.ekus, ["server_auth"]);
    assert!(
        summary
            .issuer
            .starts_with("CN=cmg demo intermediate CA, O=cmg demo "),
        "{}",
        summary.issuer
    );

    for (id, issued) in &pki.connectors {
        let certs = parse_certs(&issued.cert_pem).expect("connector");
        assert_eq!(certs.len(), 1, "leaf only");
        let (site, cp) = connector_identity(&certs[0]).expect("identity");
        assert_eq!(site.as_str(), "PS1");
        assert_eq!(&cp, id);
        parse_key(&issued.key_pem).expect("key");
    }

    let client = describe(&parse_certs(&pki.client.cert_pem).expect("client")[0]).expect("d");
    assert_eq!(client.subject, "CN=client01.corp.example");
    assert_eq!(client.ekus, ["client_auth"]);
    assert!(!client.is_ca);
    assert_eq!(client.serial_hex.len(), 32);

    let expired =
        describe(&parse_certs(&pki.expired_client.cert_pem).expect("expired")[0]).expect("d");
    assert!(expired.not_after < OffsetDateTime::now_utc().unix_timestamp());
}

#[test]
fn debug_does_not_print_keys() {
    let pki = DemoPki::generate(&spec()).expect("generate");
    let text = format!("{pki:?}");
    assert!(!text.contains("PRIVATE KEY"), "{text}");
}

#[cfg(unix)]
#[test]
fn keys_are_private_and_paths_absolute() {
    use std::os::unix::fs::PermissionsExt;
    let pki = DemoPki::generate(&spec()).expect("generate");
    let dir = tempfile::tempdir().expect("tempdir");
    let paths = pki.write(&dir.path().join("pki")).expect("write");
    // Written twice: the second write replaces the files.
    let paths2 = pki.write(&dir.path().join("pki")).expect("rewrite");
    assert_eq!(paths, paths2);
    for key in [
        &paths.server_key,
        &paths.client_key,
        &paths.connectors[1].key,
    ] {
        assert!(key.is_absolute());
        let mode = std::fs::metadata(key).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", key.display());
    }
    assert!(paths.crl.is_absolute() && paths.crl.exists());
}
