//! Channels from connection points: serving an accepted one (identify, HTTP/2
//! handshake, hello, register; `serve`) and the control requests the instance sends on
//! them (traffic snapshots, `report`; settings polls are `settings`'s). The live
//! channels themselves are in `registry`.

pub(crate) mod report;
pub(crate) mod serve;
