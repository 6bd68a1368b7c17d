//! Body types on the way up a channel, shared by the request path, the channel layer
//! and the control requests: [`LimitedBody`] (a client's body behind its limit) and
//! [`ForwardBody`] (what a channel carries). The response side is
//! `request::response::ResponseBody`.

mod forward;
mod limited;

pub(crate) use forward::ForwardBody;
pub(crate) use limited::{BodyStats, LimitedBody};

/// The error type of every body on the request path.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;
