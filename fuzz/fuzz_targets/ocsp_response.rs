//! OCSP responses as a responder (or anything on the path to it) sends them
//! (`cmg_pki::revocation::ocsp::response::verify`), for a fixed query.
#![no_main]

use std::sync::OnceLock;

use cmg_pki::revocation::ocsp::request::OcspQuery;
use libfuzzer_sys::fuzz_target;

fn query() -> &'static OcspQuery {
    static QUERY: OnceLock<OcspQuery> = OnceLock::new();
    QUERY.get_or_init(|| {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "fuzz CA");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).expect("ca");
        let parsed = x509_name_and_spki(cert.der());
        OcspQuery::new(
            parsed.0,
            parsed.1,
            &[1, 2, 3],
            vec!["http://127.0.0.1/".into()],
        )
        .expect("query")
    })
}

/// The CA's subject and SubjectPublicKeyInfo, in DER.
fn x509_name_and_spki(der: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let (_, cert) = x509_parser::parse_x509_certificate(der).expect("ca parses");
    (
        cert.subject().as_raw().to_vec(),
        cert.public_key().raw.to_vec(),
    )
}

fuzz_target!(|data: &[u8]| {
    let q = query();
    let _ = cmg_pki::revocation::ocsp::response::verify(
        data,
        q,
        Some(b"nonce-nonce-nonc"),
        1_800_000_000,
    );
    let _ = cmg_pki::revocation::ocsp::response::verify(data, q, None, 1_800_000_000);
});
