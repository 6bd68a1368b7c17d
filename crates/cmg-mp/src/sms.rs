//! The `SMS_MP` endpoints: `.sms_aut` (management point list, certificate) and
//! `.sms_pol?size=N` (a policy-sized download of a deterministic pattern, for
//! benchmarks). Real policy (`.sms_pol?assignments`, `?<id>`) is `policy.rs`'s.

use bytes::Bytes;
use http::{header, Response, StatusCode};

use cmg_proto::device::ManagementPointList;

use crate::body::{self, RespBody};
use crate::respond;

/// Largest `.sms_pol?size=N` served.
pub const MAX_POLICY_SIZE: u64 = 64 * 1024 * 1024;

/// Period of the policy pattern: a prime, so a misplaced or repeated chunk shows.
const PATTERN_PERIOD: usize = 251;

/// Length of the pre-built pattern buffer: a multiple of the period, about 1 MiB.
const PATTERN_LEN: usize = PATTERN_PERIOD * 4096;

/// Byte `offset` of every `.sms_pol` body: `offset % 251`.
pub fn policy_byte(offset: u64) -> u8 {
    // The remainder is below 251, so it fits.
    (offset % PATTERN_PERIOD as u64) as u8
}

/// The pre-built pattern the policy endpoint slices from (no per-request content).
pub(crate) fn build_pattern() -> Bytes {
    (0..PATTERN_LEN as u64)
        .map(policy_byte)
        .collect::<Vec<u8>>()
        .into()
}

/// `GET .sms_pol?size=N`: exactly N pattern bytes, `content-length` set.
pub(crate) fn policy(pattern: &Bytes, query: Option<&str>) -> Response<RespBody> {
    let size = query
        .into_iter()
        .flat_map(|q| q.split('&'))
        .find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            k.eq_ignore_ascii_case("size").then_some(v)
        })
        .and_then(|v| v.parse::<u64>().ok());
    let Some(size) = size.filter(|s| *s <= MAX_POLICY_SIZE) else {
        return respond::text(StatusCode::BAD_REQUEST, "size=N (0..=67108864) required\n");
    };
    // size <= 64 MiB fits usize on every supported target.
    let size = size as usize;
    let body = if size <= pattern.len() {
        body::full(pattern.slice(..size))
    } else {
        let pattern = pattern.clone();
        let whole = size / pattern.len();
        let rest = size % pattern.len();
        let pieces = std::iter::repeat_n(pattern.len(), whole)
            .chain((rest > 0).then_some(rest))
            .map(move |n| pattern.slice(..n));
        body::chunks(futures_util::stream::iter(pieces))
    };
    respond::builder(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, size)
        .body(body)
        .unwrap_or_else(|_| respond::internal())
}

/// `GET .sms_aut?MPLIST` / `MPLIST2`: the site's management points (`internet`: the
/// internet ones, `<service>/CCM_Proxy_MutualAuth/<role id>`), or, while the site's list
/// is not known, this management point as the only one.
pub(crate) fn mp_list(
    host: &str,
    site: Option<&ManagementPointList>,
    internet: bool,
) -> Response<RespBody> {
    let mut xml = String::from("<MPList>");
    match site {
        Some(list) => {
            let entries = if internet {
                &list.internet
            } else {
                &list.intranet
            };
            for mp in entries {
                xml.push_str(&mp_entry(&mp.name, &mp.fqdn, Some(list.site.as_str())));
            }
        }
        None => {
            let name = host.split('.').next().unwrap_or(host).to_ascii_uppercase();
            xml.push_str(&mp_entry(&name, host, None));
        }
    }
    xml.push_str("</MPList>");
    respond::builder(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/xml")
        .body(body::full(xml))
        .unwrap_or_else(|_| respond::internal())
}

fn mp_entry(name: &str, fqdn: &str, site: Option<&str>) -> String {
    let site = site
        .map(|s| format!(" SiteCode=\"{}\"", xml_escape(s)))
        .unwrap_or_default();
    format!(
        "<MP Name=\"{}\" FQDN=\"{}\"{site}><Version>{MP_VERSION}</Version>\
         <Capabilities SchemaVersion=\"1.0\"/></MP>",
        xml_escape(name),
        xml_escape(fqdn)
    )
}

/// `GET .sms_aut?MPCERT`: the HTTPS certificate as uppercase hex DER, 404 when plain HTTP.
pub(crate) fn mp_cert(cert_der: Option<&[u8]>) -> Response<RespBody> {
    match cert_der {
        Some(der) => respond::builder(StatusCode::OK)
            .header(header::CONTENT_TYPE, "text/plain")
            .body(body::full(hex::encode_upper(der)))
            .unwrap_or_else(|_| respond::internal()),
        None => respond::text(StatusCode::NOT_FOUND, "no certificate (plain HTTP)\n"),
    }
}

/// The product build number reported in the MP list.
const MP_VERSION: &str = "9128";

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_is_periodic_across_the_buffer_end() {
        let p = build_pattern();
        assert_eq!(p.len() % PATTERN_PERIOD, 0);
        assert_eq!(p[p.len() - 1], policy_byte(p.len() as u64 - 1));
        assert_eq!(policy_byte(p.len() as u64), p[0]);
    }

    #[test]
    fn mp_list_escapes_the_host() {
        assert_eq!(xml_escape("a\"<b>&"), "a&quot;&lt;b&gt;&amp;");
    }
}
