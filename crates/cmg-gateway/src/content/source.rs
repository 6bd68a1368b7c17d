//! The storage behind content serving: an Azure Blob container reached with the
//! `object_store` crate (Shared Key with the account key in force, rustls).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use object_store::azure::{MicrosoftAzure, MicrosoftAzureBuilder};
use object_store::{BackoffConfig, ClientOptions, RetryConfig};
use zeroize::Zeroizing;

/// Local bounds on storage requests (from `[content]` in the config file, never from
/// the site: they depend on this instance's network).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageTimeouts {
    /// Longest wait for storage to answer a request's head (retries included): 504.
    pub request: Duration,
    /// TCP and TLS connect to storage.
    pub connect: Duration,
    /// Longest pause between two chunks of a blob being streamed; the response is
    /// cut off after it.
    pub idle: Duration,
}

impl Default for StorageTimeouts {
    fn default() -> Self {
        Self {
            request: Duration::from_secs(30),
            connect: Duration::from_secs(5),
            idle: Duration::from_secs(30),
        }
    }
}

/// A storage account with its key in clear: from the config file's `key_file`, or
/// opened from the copy a bundle seals to this instance. Held only to build the
/// [`ContentSource`] (the key is zeroized when it is dropped); `Debug` hides the key.
#[derive(Clone, PartialEq, Eq)]
pub struct StorageAccess {
    pub account: String,
    pub endpoint: Option<String>,
    pub container: String,
    /// `key1` or `key2`.
    pub key_name: String,
    /// The account key, base64 as the provider shows it.
    pub key: Zeroizing<String>,
}

impl std::fmt::Debug for StorageAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageAccess")
            .field("account", &self.account)
            .field("endpoint", &self.endpoint)
            .field("container", &self.container)
            .field("key_name", &self.key_name)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// Why a storage account cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(
        "storage endpoint {0:?}: plain http is only allowed on a loopback address (an emulator)"
    )]
    PlainHttp(String),
    #[error("storage endpoint {0:?} is not a URL")]
    BadEndpoint(String),
    #[error("storage account: {0}")]
    Build(String),
    /// The bundle's storage key is not sealed to this instance, or does not open.
    #[error("storage key: {0}")]
    Sealed(String),
}

/// One storage account's container, ready to read from.
#[derive(Debug)]
pub struct ContentSource {
    pub store: Arc<MicrosoftAzure>,
    /// `key1` or `key2`: which account key signs requests (logged, never the key).
    pub key_name: String,
    pub account: String,
    pub container: String,
    pub timeouts: StorageTimeouts,
}

/// Whether `endpoint` may be plain http: only an emulator on a loopback address.
fn loopback_http(endpoint: &str) -> Result<bool, SourceError> {
    let Some(rest) = endpoint.strip_prefix("http://") else {
        if endpoint.starts_with("https://") {
            return Ok(false);
        }
        return Err(SourceError::BadEndpoint(endpoint.to_owned()));
    };
    let authority = rest.split('/').next().unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    match host.parse::<IpAddr>() {
        Ok(ip) if ip.is_loopback() => Ok(true),
        _ if host.eq_ignore_ascii_case("localhost") => Ok(true),
        _ => Err(SourceError::PlainHttp(endpoint.to_owned())),
    }
}

impl ContentSource {
    pub fn new(account: &StorageAccess, timeouts: StorageTimeouts) -> Result<Self, SourceError> {
        let mut options = ClientOptions::new()
            .with_connect_timeout(timeouts.connect)
            // The whole-request timeout would also cut long downloads: the gateway
            // bounds the head (`request`) and each pause in the body (`idle`) itself.
            .with_timeout_disabled();
        let mut builder = MicrosoftAzureBuilder::new()
            .with_account(&account.account)
            .with_container_name(&account.container)
            .with_access_key(account.key.as_str())
            .with_retry(RetryConfig {
                backoff: BackoffConfig {
                    init_backoff: Duration::from_millis(50),
                    max_backoff: Duration::from_secs(1),
                    base: 2.0,
                },
                max_retries: 2,
                retry_timeout: timeouts.request,
            });
        if let Some(endpoint) = &account.endpoint {
            if loopback_http(endpoint)? {
                options = options.with_allow_http(true);
            }
            builder = builder.with_endpoint(endpoint.clone());
        }
        let store = builder
            .with_client_options(options)
            .build()
            .map_err(|e| SourceError::Build(e.to_string()))?;
        Ok(Self {
            store: Arc::new(store),
            key_name: account.key_name.clone(),
            account: account.account.clone(),
            container: account.container.clone(),
            timeouts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_on_loopback() {
        assert!(!loopback_http("https://acct.blob.core.windows.net").expect("https"));
        assert!(loopback_http("http://127.0.0.1:10000/devstoreaccount1").expect("v4"));
        assert!(loopback_http("http://[::1]:10000/acct").expect("v6"));
        assert!(loopback_http("http://localhost:10000/acct").expect("name"));
        assert!(loopback_http("http://10.0.0.5/acct").is_err());
        assert!(loopback_http("http://storage.example/acct").is_err());
        assert!(loopback_http("ftp://x").is_err());
    }
}
