//! CRLs as fetched from a distribution point (`cmg_pki::revocation::CachedCrl`):
//! DER or PEM, then the signature check against a CA.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use rustls_pki_types::CertificateDer;

fn ca() -> &'static [CertificateDer<'static>] {
    static CA: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    CA.get_or_init(|| {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).expect("ca");
        vec![cert.der().clone()]
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(crl) = cmg_pki::revocation::CachedCrl::parse(data) {
        let _ = crl.check_signature(ca());
        let _ = crl.is_expired_at(0);
    }
});
