//! The roles' configuration loaders (`Config::from_toml` of the gateway, the
//! connection point and the management point): two-stage parsing of a TOML file an
//! operator (or a template engine) wrote. The first byte picks the role.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&role, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    // A directory that does not exist: relative paths in the text resolve under it,
    // so no fuzz input reads a real file.
    let path = Path::new("/nonexistent/cmg-fuzz/config.toml");
    match role % 3 {
        0 => drop(cmg_gateway::Config::from_toml(path, text)),
        1 => drop(cmg_connector::Config::from_toml(path, text)),
        _ => drop(cmg_mp::Config::from_toml(path, text)),
    }
});
