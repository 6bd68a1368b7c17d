//! The gateway's HTTP/1 head scanner (`h1_guard`), fed the client's bytes in arbitrary
//! chunks: the verdict must not depend on how the bytes were split.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&split, bytes)) = data.split_first() else {
        return;
    };
    let whole = cmg_gateway::fuzzing::h1_guard(&[bytes], 8);
    let step = usize::from(split).max(1);
    let chunks: Vec<&[u8]> = bytes.chunks(step).collect();
    let chunked = cmg_gateway::fuzzing::h1_guard(&chunks, 8);
    assert_eq!(whole, chunked, "verdict depends on the read boundaries");
});
