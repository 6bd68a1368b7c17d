//! Two config values of the connection point: a gateway instance's channel addresses
//! (`gateways`, and the bundle's instance list) and the proxy setting (`[proxy]`).

use std::net::SocketAddr;

use cmg_proto::addr::HostPort;

/// Whether channels and site calls go through an HTTP CONNECT proxy.
#[derive(Debug, Clone, Default)]
pub enum ProxySetting {
    /// The environment decides (`HTTPS_PROXY`, `NO_PROXY`), read when the connection
    /// point is bound.
    #[default]
    FromEnvironment,
    /// Direct, whatever the environment says.
    Direct,
    /// Through this proxy.
    Via(std::sync::Arc<cmg_core::proxy::Proxy>),
}

/// One gateway instance: its channel addresses in order of preference (the first its
/// channel port, the later ones fallbacks such as its client port).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Instance {
    pub channel: Vec<HostPort>,
}

impl Instance {
    /// The address that names the instance in the status and reports: its first.
    pub fn key(&self) -> String {
        self.channel
            .first()
            .map(ToString::to_string)
            .unwrap_or_default()
    }

    /// Parses a list of `host:port` (1 to 4, no duplicates).
    pub fn parse<S: AsRef<str>>(addrs: &[S]) -> Result<Self, String> {
        if addrs.is_empty() || addrs.len() > 4 {
            return Err("1 to 4 channel addresses".into());
        }
        let mut channel: Vec<HostPort> = Vec::with_capacity(addrs.len());
        for a in addrs {
            let hp = HostPort::parse(a.as_ref()).map_err(|e| e.to_string())?;
            if channel.contains(&hp) {
                return Err(format!("{hp} is listed twice"));
            }
            channel.push(hp);
        }
        Ok(Self { channel })
    }
}

impl From<SocketAddr> for Instance {
    fn from(addr: SocketAddr) -> Self {
        Self {
            channel: vec![addr.into()],
        }
    }
}
