//! Where requests go: a management point's base URL (`http(s)://host[:port][/prefix]`)
//! and a gateway name as the product's internet management point list writes it
//! (`<service>[:port]/CCM_Proxy_MutualAuth/<role id>`, seed 000; https implied).

use std::fmt;

/// Why a URL or gateway name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}`: {reason}")]
pub struct BadEndpoint {
    pub value: String,
    pub reason: &'static str,
}

/// A base URL: scheme, host, port and a path prefix without a trailing slash.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BaseUrl {
    pub https: bool,
    pub host: String,
    pub port: u16,
    /// `""` or `/a/b`.
    pub prefix: String,
}

impl BaseUrl {
    /// `http://host[:port][/prefix]` or `https://...`; a value without a scheme is a
    /// gateway name and means https.
    pub fn parse(value: &str) -> Result<Self, BadEndpoint> {
        let err = |reason| BadEndpoint {
            value: value.to_owned(),
            reason,
        };
        let (https, rest) = if let Some(r) = value.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = value.strip_prefix("http://") {
            (false, r)
        } else if value.contains("://") {
            return Err(err("only http:// and https:// are supported"));
        } else {
            (true, value)
        };
        if rest.contains(['?', '#', '@', '\\']) || rest.chars().any(|c| c.is_whitespace()) {
            return Err(err("no query, fragment, user info, backslash or spaces"));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let uri: http::uri::Authority = authority.parse().map_err(|_| err("bad host or port"))?;
        let host = uri.host().trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(err("no host"));
        }
        let prefix = path.trim_end_matches('/');
        if prefix
            .split('/')
            .skip(1)
            .any(|s| s.is_empty() || s == "." || s == "..")
        {
            return Err(err("empty, `.` or `..` path segment"));
        }
        Ok(Self {
            https,
            host: host.to_ascii_lowercase(),
            port: uri.port_u16().unwrap_or(if https { 443 } else { 80 }),
            prefix: prefix.to_owned(),
        })
    }

    /// The path and query of `suffix` (which starts with `/`) under this base.
    pub fn path(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.prefix)
    }

    /// The same server with another path prefix.
    pub fn with_prefix(&self, prefix: &str) -> Self {
        Self {
            prefix: prefix.trim_end_matches('/').to_owned(),
            ..self.clone()
        }
    }

    /// `host:port` as the name the resolver looks up.
    pub fn host_port(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

impl fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        let default = if self.https { 443 } else { 80 };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == default {
            write!(f, "{scheme}://{host}{}", self.prefix)
        } else {
            write!(f, "{scheme}://{host}:{}{}", self.port, self.prefix)
        }
    }
}

/// A bootstrap gateway: `<service>[:port]/CCM_Proxy_MutualAuth/<role id>` (the
/// certificate path) or `.../CCM_Proxy_ServerAuth/<role id>` (the token path); the
/// client derives the other path from the one given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayName {
    /// `https://<service>/CCM_Proxy_MutualAuth/<role id>`.
    pub certificate: BaseUrl,
    /// `https://<service>/CCM_Proxy_ServerAuth/<role id>`.
    pub token: BaseUrl,
}

const MUTUAL: &str = "/CCM_Proxy_MutualAuth/";
const SERVER: &str = "/CCM_Proxy_ServerAuth/";

impl GatewayName {
    pub fn parse(value: &str) -> Result<Self, BadEndpoint> {
        let base = BaseUrl::parse(value)?;
        let err = |reason| BadEndpoint {
            value: value.to_owned(),
            reason,
        };
        if !base.https {
            return Err(err("a gateway is reached over https"));
        }
        let role = base
            .prefix
            .strip_prefix(MUTUAL)
            .or_else(|| base.prefix.strip_prefix(SERVER))
            .filter(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| err("expected <service>/CCM_Proxy_MutualAuth/<role id>"))?;
        Ok(Self {
            certificate: base.with_prefix(&format!("{MUTUAL}{role}")),
            token: base.with_prefix(&format!("{SERVER}{role}")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_parse_and_print() {
        let u = BaseUrl::parse("http://MP.corp.example:8080/").expect("ok");
        assert_eq!(
            (u.https, u.host.as_str(), u.port, u.prefix.as_str()),
            (false, "mp.corp.example", 8080, "")
        );
        assert_eq!(u.to_string(), "http://mp.corp.example:8080");
        assert_eq!(u.path("/SMS_MP/.sms_aut?MPLIST"), "/SMS_MP/.sms_aut?MPLIST");
        let g = BaseUrl::parse("cmg.example.com/CCM_Proxy_MutualAuth/7").expect("ok");
        assert_eq!(
            g.to_string(),
            "https://cmg.example.com/CCM_Proxy_MutualAuth/7"
        );
        assert_eq!(
            BaseUrl::parse("https://[::1]:9/x").expect("v6").host_port(),
            "::1:9"
        );
        for bad in [
            "ftp://x",
            "http://",
            "http://a/b/../c",
            "http://a?b",
            "http://u@a",
            "a b",
        ] {
            assert!(BaseUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn gateway_names_give_both_paths() {
        let g = GatewayName::parse("cmg.example.com/CCM_Proxy_ServerAuth/72057594037927939")
            .expect("ok");
        assert_eq!(
            g.certificate.to_string(),
            "https://cmg.example.com/CCM_Proxy_MutualAuth/72057594037927939"
        );
        assert_eq!(
            g.token.to_string(),
            "https://cmg.example.com/CCM_Proxy_ServerAuth/72057594037927939"
        );
        for bad in [
            "cmg.example.com",
            "http://cmg/CCM_Proxy_MutualAuth/1",
            "cmg/CCM_Proxy_MutualAuth/x",
        ] {
            assert!(GatewayName::parse(bad).is_err(), "{bad}");
        }
    }
}
