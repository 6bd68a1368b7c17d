//! PKCS#12 server certificates as OpenSSL writes them (`openssl pkcs12 -export`, PBES2 +
//! AES-256 by default in OpenSSL 3, the same as Windows' "AES256-SHA256" export): the
//! key and the chain, leaf first, come back as PEM; a wrong password or a file without
//! a key is refused with a message that says so.

use std::path::Path;
use std::process::Command;

use cmg_pki::demo::{DemoPki, DemoPkiSpec};
use cmg_pki::pkcs12::read_pkcs12;
use cmg_proto::SiteCode;

fn demo(dir: &Path) -> cmg_pki::demo::DemoPkiPaths {
    DemoPki::generate(&DemoPkiSpec {
        service_name: "cmg.contoso.test".into(),
        site: SiteCode::new("PS1").expect("site"),
        connectors: vec![],
        crl_url: None,
    })
    .expect("demo pki")
    .write(dir)
    .expect("write")
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn reads_key_and_chain_from_an_openssl_pfx() {
    let dir = tempfile::tempdir().expect("dir");
    let paths = demo(dir.path());
    let pfx = dir.path().join("server.pfx");
    // server.pem holds the leaf and its intermediate.
    let p = |p: &Path| p.to_str().expect("utf-8 path").to_owned();
    openssl(&[
        "pkcs12",
        "-export",
        "-in",
        &p(&paths.server_cert),
        "-inkey",
        &p(&paths.server_key),
        "-out",
        &p(&pfx),
        "-passout",
        "pass:s3cret",
        "-name",
        "cmg",
    ]);
    let bytes = std::fs::read(&pfx).expect("pfx");
    let id = read_pkcs12(&bytes, "s3cret").expect("readable");

    let want = cmg_pki::pem::load_certs(&paths.server_cert).expect("server chain");
    let got = cmg_pki::pem::parse_certs(&id.chain_pem).expect("chain PEM");
    assert_eq!(got.len(), want.len(), "the whole chain");
    assert_eq!(got[0].as_ref(), want[0].as_ref(), "leaf first");
    let key = cmg_pki::pem::parse_key(&id.key_pem).expect("key PEM");
    // The key is the leaf's: rustls accepts the pair.
    let provider = rustls::crypto::ring::default_provider();
    let signing = provider
        .key_provider
        .load_private_key(key)
        .expect("usable key");
    let certified = rustls::sign::CertifiedKey::new(got, signing);
    certified.keys_match().expect("key matches the leaf");
    assert!(
        !format!("{id:?}").contains("PRIVATE KEY"),
        "Debug masks the key"
    );

    let wrong = read_pkcs12(&bytes, "guess").expect_err("wrong password");
    assert!(wrong.to_string().contains("wrong password"), "{wrong}");
    let garbage = read_pkcs12(b"not a pfx", "s3cret").expect_err("garbage");
    assert!(garbage.to_string().contains("PKCS#12"), "{garbage}");
}

#[test]
fn a_pfx_without_a_private_key_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let paths = demo(dir.path());
    let pfx = dir.path().join("certs-only.pfx");
    let p = |p: &Path| p.to_str().expect("utf-8 path").to_owned();
    openssl(&[
        "pkcs12",
        "-export",
        "-nokeys",
        "-in",
        &p(&paths.server_cert),
        "-out",
        &p(&pfx),
        "-passout",
        "pass:s3cret",
    ]);
    let err = read_pkcs12(&std::fs::read(&pfx).expect("pfx"), "s3cret").expect_err("no key");
    assert!(err.to_string().contains("no private key"), "{err}");
}
