//! A channel's HTTP/2 server side as the gateway reaches it (after TLS): the client
//! preface, frames, HPACK, and the hello the connection point reads from its headers
//! (`cmg_connector::fuzzing::channel`).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use tokio::runtime::Runtime;

fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    })
}

fuzz_target!(|data: &[u8]| {
    runtime().block_on(cmg_connector::fuzzing::channel(data.to_vec()));
});
