//! Site tokens (JWS bearer tokens, `cmg_token::SiteVerifier`) as a client presents
//! them to the gateway, and the issuer peek that routes a token to its verifier.
#![no_main]

use std::sync::OnceLock;

use cmg_token::{SiteGuid, SiteSigner, SiteVerifier};
use libfuzzer_sys::fuzz_target;

fn verifier() -> &'static SiteVerifier {
    static VERIFIER: OnceLock<SiteVerifier> = OnceLock::new();
    VERIFIER.get_or_init(|| {
        let guid: SiteGuid = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
            .parse()
            .expect("guid");
        let pem = cmg_token::site::generate_key_pem().expect("key");
        let signer = SiteSigner::from_pem(pem.as_bytes(), &guid).expect("signer");
        SiteVerifier::new(vec![signer.public_key()], &guid).expect("verifier")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let _ = cmg_token::peek_issuer(token);
    let _ = verifier().verify(token, &|_| false);
});
