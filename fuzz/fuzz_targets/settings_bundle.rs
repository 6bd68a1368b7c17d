//! Settings bundles (JWS, `cmg_token::BundleVerifier`): what a gateway reads from a
//! connection point, and from its own disk at start. The first byte picks the layer:
//! the signed form (header, base64, size limits, signature: what an attacker can
//! reach), or the bundle's JSON as the verifier would decode it after a good
//! signature (the site's own output, fuzzed for panics).
#![no_main]

use std::sync::OnceLock;

use cmg_token::{BundleVerifier, SiteGuid, SiteSigner};
use libfuzzer_sys::fuzz_target;

fn verifier() -> &'static BundleVerifier {
    static VERIFIER: OnceLock<BundleVerifier> = OnceLock::new();
    VERIFIER.get_or_init(|| {
        let guid: SiteGuid = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
            .parse()
            .expect("guid");
        let pem = cmg_token::site::generate_key_pem().expect("key");
        let signer = SiteSigner::from_pem(pem.as_bytes(), &guid).expect("signer");
        BundleVerifier::new(vec![signer.public_key()]).expect("verifier")
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        if let Ok(text) = std::str::from_utf8(rest) {
            let _ = cmg_token::bundle::peek_version(text);
            let _ = verifier().verify(text);
        }
    } else if let Ok(bundle) = serde_json::from_slice::<cmg_proto::settings::SettingsBundle>(rest) {
        let _ = bundle.may_replace(&bundle);
        let _ = serde_json::to_vec(&bundle).expect("a parsed bundle serialises");
    }
});
