//! `[client_auth]`: the revocation settings of the section, checked and turned into
//! `cmg_pki`'s [`RevocationConfig`](cmg_pki::revocation::RevocationConfig).

use std::path::Path;

use cmg_core::config::{resolve, ConfigError};

use super::raw::RawClientAuth;

impl RawClientAuth {
    pub(super) fn revocation(
        &self,
        path: &Path,
    ) -> Result<(bool, cmg_pki::revocation::RevocationConfig), ConfigError> {
        let d = cmg_pki::revocation::RevocationConfig::default();
        let mut limits = d.limits;
        limits.timeout = self.crl_fetch_timeout.unwrap_or(limits.timeout);
        limits.connect_timeout = self.crl_connect_timeout.unwrap_or(limits.connect_timeout);
        limits.max_bytes = self.crl_max_bytes.unwrap_or(limits.max_bytes);
        let config = cmg_pki::revocation::RevocationConfig {
            fetch: self.crl_fetch.unwrap_or(d.fetch),
            limits,
            handshake_wait: self.crl_handshake_wait.unwrap_or(d.handshake_wait),
            retry_after: self.crl_retry_after.unwrap_or(d.retry_after),
            cache_dir: self.crl_cache_dir.as_ref().map(|dir| resolve(path, dir)),
            max_urls: d.max_urls,
            ocsp: self.ocsp.unwrap_or(d.ocsp),
            ocsp_nonce: self.ocsp_nonce.unwrap_or(d.ocsp_nonce),
            max_ocsp_entries: d.max_ocsp_entries,
        };
        let inv = |field: &str, msg: &str| {
            ConfigError::invalid(path, format!("client_auth.{field}"), msg.to_owned())
        };
        if config.limits.timeout.is_zero() || config.limits.connect_timeout.is_zero() {
            return Err(inv("crl_fetch_timeout", "fetch timeouts must be positive"));
        }
        if config.limits.max_bytes < 1024 {
            return Err(inv("crl_max_bytes", "must be at least 1024"));
        }
        Ok((self.verify_revocation.unwrap_or(true), config))
    }
}
