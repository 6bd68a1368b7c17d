//! Constants of the channel between a connection point and a gateway instance.
//!
//! The connection point dials out (TCP + TLS, mutually authenticated) and offers ALPN
//! [`ALPN`]; over that stream the roles flip: the gateway is the HTTP/2 client and the
//! connection point the HTTP/2 server. Each client request is one HTTP/2 stream.
//! Control requests use paths under [`CONTROL_PREFIX`], which the gateway never forwards
//! for a client (no published URL may start with it).

/// ALPN protocol ID of the channel, offered by the connection point.
pub const ALPN: &[u8] = b"cmg-channel/1";
/// Path prefix of control requests from the gateway to the connection point.
pub const CONTROL_PREFIX: &str = "/_cmg/";
/// The first request on a new channel: carries the connection ID and instance name.
pub const HELLO_PATH: &str = "/_cmg/channel/hello";
/// URI SAN form naming a connection point in its certificate:
/// `urn:cmg:connection-point:<site code>:<connection point id>`.
pub const CONNECTOR_URI_PREFIX: &str = "urn:cmg:connection-point:";
/// Long poll for the site's settings bundle: `GET <SETTINGS_PATH>?after=<version>`,
/// answered `200` with a newer signed bundle (`application/jose`), or `204` when none
/// arrived within [`SETTINGS_LONG_POLL`].
pub const SETTINGS_PATH: &str = "/_cmg/settings/bundle";
/// How long the connection point holds a settings long poll before answering `204`.
pub const SETTINGS_LONG_POLL: std::time::Duration = std::time::Duration::from_secs(25);

/// Receive window of one stream on a channel, both ends: what one request or response
/// may have in flight before its reader takes it. It is also the most a stalled stream
/// (a client that never reads its answer, a role that never reads its upload) can make
/// the receiving end hold, so it bounds a slow reader's cost at
/// `streams × STREAM_WINDOW`; 256 KiB still keeps a stream at full speed on a loopback
/// or LAN channel (at 10 ms round trip one stream moves about 25 MB/s).
pub const STREAM_WINDOW: u32 = 256 * 1024;

/// Receive window of a whole channel, both ends: the largest HTTP/2 allows. A channel
/// carries the streams of many clients, and data a stalled stream holds also holds the
/// connection's window; with a smaller one, a few clients that never read their answers
/// would stall every other client on the channel. At the maximum, the stream windows
/// bound what is held (512 streams × 256 KiB = 128 MiB < 2 GiB), never this one.
pub const CONNECTION_WINDOW: u32 = (1 << 31) - 1;

/// Largest header list either end of a channel accepts (decoded, as HTTP/2 counts it).
/// Heads on a channel are a client's request head (the gateway caps those far lower)
/// and a role's response head; h2's default (16 MiB) would let a peer make the other end
/// decode and hold 16 MiB of headers per stream.
pub const MAX_HEADER_LIST: u32 = 64 * 1024;
