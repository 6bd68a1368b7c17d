//! The gateway's PROXY protocol v1/v2 header reader, on the first bytes of a
//! connection from a balancer.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = cmg_gateway::fuzzing::proxy_header(data);
});
