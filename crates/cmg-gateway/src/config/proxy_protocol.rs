//! `[proxy_protocol]`: the PROXY protocol header a load balancer puts in front of each
//! connection (HAProxy's `send-proxy-v2`), switched on per listener and accepted only
//! from the balancer's networks. Never guessed: a listener either requires the header
//! or ignores the protocol.

use std::path::Path;
use std::time::Duration;

use cmg_core::config::ConfigError;
use ipnet::IpNet;

use super::raw::RawProxyProtocol;

/// Which listeners expect a PROXY protocol header, and from whom.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyProtocol {
    /// The client listener requires the header.
    pub client: bool,
    /// The dedicated channel listener requires the header.
    pub channel: bool,
    /// Source networks allowed to send it (the balancer's); a connection from any other
    /// address is closed.
    pub trusted: Vec<IpNet>,
    /// How long the whole header may take to arrive.
    pub header_timeout: Duration,
}

/// The default of `header_timeout`.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) fn proxy_protocol(
    path: &Path,
    raw: RawProxyProtocol,
) -> Result<ProxyProtocol, ConfigError> {
    let inv = |field: &str, msg: String| {
        ConfigError::invalid(path, format!("proxy_protocol.{field}"), msg)
    };
    let mut client = false;
    let mut channel = false;
    for (i, l) in raw.listeners.iter().enumerate() {
        match l.as_str() {
            "client" => client = true,
            "channel" => channel = true,
            other => {
                return Err(inv(
                    &format!("listeners[{i}]"),
                    format!("{other:?} is not a listener (client or channel)"),
                ))
            }
        }
    }
    if !client && !channel {
        return Err(inv(
            "listeners",
            "name at least one listener (client, channel)".into(),
        ));
    }
    if raw.trusted_sources.is_empty() {
        return Err(inv(
            "trusted_sources",
            "at least one network (the load balancer's addresses, e.g. \"10.0.0.0/24\")".into(),
        ));
    }
    let trusted = raw
        .trusted_sources
        .iter()
        .enumerate()
        .map(|(i, s)| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    inv(
                        &format!("trusted_sources[{i}]"),
                        format!("{s:?} is not an address or a network"),
                    )
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let header_timeout = raw.header_timeout.unwrap_or(DEFAULT_HEADER_TIMEOUT);
    if header_timeout.is_zero() || header_timeout > Duration::from_secs(60) {
        return Err(inv("header_timeout", "must be between 1ms and 60s".into()));
    }
    Ok(ProxyProtocol {
        client,
        channel,
        trusted,
        header_timeout,
    })
}
