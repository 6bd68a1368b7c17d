//! Channels from connection points: accepting them, and the registry the request path
//! picks from.

mod executor;
pub mod registry;
pub mod serve;

pub use registry::{Channel, ChannelInfo, ChannelRegistry};
