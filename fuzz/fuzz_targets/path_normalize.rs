//! The gateway's URL path normaliser (`cmg_proto::path::normalize`): every client
//! request line goes through it before the published-URL filter.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (path, query) = match text.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (text, None),
    };
    if let Ok(normalized) = cmg_proto::path::normalize(path, query) {
        // Normalising the normalised path must give it back (idempotence).
        let again = cmg_proto::path::normalize(normalized.raw(), normalized.query())
            .expect("a normalised path normalises");
        assert_eq!(again.decoded(), normalized.decoded());
    }
});
