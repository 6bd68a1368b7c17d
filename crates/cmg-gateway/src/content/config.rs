//! `[content]` in the gateway's config file.
//!
//! ```toml
//! [content]
//! enabled = true              # default false; a settings bundle overrides it
//! timeout = "30s"             # storage must answer a request's head within this
//! connect_timeout = "5s"
//! idle_timeout = "30s"        # longest pause while a blob streams
//! [content.storage]           # only for a gateway without a site (else: the bundle)
//! account = "cmgcontent"
//! endpoint = "https://cmgcontent.blob.core.windows.net"   # optional
//! container = "content"
//! key_name = "key1"
//! key_file = "storage.key"    # the base64 account key, alone in a file
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cmg_core::config::{resolve, ConfigError};
use cmg_proto::settings::ContentSettings;
use cmg_token::InstanceKey;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::source::{ContentSource, SourceError, StorageAccess, StorageTimeouts};

/// Validated `[content]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContentConfig {
    pub enabled: bool,
    pub storage: Option<StorageAccess>,
    pub timeouts: StorageTimeouts,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawContent {
    #[serde(default)]
    enabled: bool,
    #[serde(default, with = "humantime_serde")]
    timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    connect_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    idle_timeout: Option<Duration>,
    storage: Option<RawStorage>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct RawStorage {
    account: String,
    endpoint: Option<String>,
    container: String,
    key_name: KeyName,
    key_file: PathBuf,
}

#[derive(Deserialize, Debug, Clone, Copy)]
enum KeyName {
    #[serde(rename = "key1")]
    Key1,
    #[serde(rename = "key2")]
    Key2,
}

impl RawContent {
    pub(crate) fn validate(self, path: &Path) -> Result<ContentConfig, ConfigError> {
        let inv = |field: &str, msg: String| ConfigError::invalid(path, field, msg);
        let d = StorageTimeouts::default();
        let timeouts = StorageTimeouts {
            request: self.timeout.unwrap_or(d.request),
            connect: self.connect_timeout.unwrap_or(d.connect),
            idle: self.idle_timeout.unwrap_or(d.idle),
        };
        for (field, v) in [
            ("content.timeout", timeouts.request),
            ("content.connect_timeout", timeouts.connect),
            ("content.idle_timeout", timeouts.idle),
        ] {
            if v < Duration::from_millis(10) {
                return Err(inv(field, "must be at least 10ms".into()));
            }
        }
        let storage = match self.storage {
            None => None,
            Some(s) => {
                let key_path = resolve(path, &s.key_file);
                let text = Zeroizing::new(
                    cmg_core::private_file::read_to_string(&key_path)
                        .map_err(|e| inv("content.storage.key_file", e.to_string()))?,
                );
                let key = Zeroizing::new(text.trim().to_owned());
                if key.is_empty() {
                    return Err(inv(
                        "content.storage.key_file",
                        "the key file is empty".into(),
                    ));
                }
                if s.account.is_empty() || s.container.is_empty() {
                    return Err(inv(
                        "content.storage",
                        "account and container must not be empty".into(),
                    ));
                }
                let account = StorageAccess {
                    account: s.account,
                    endpoint: s.endpoint,
                    container: s.container,
                    key_name: match s.key_name {
                        KeyName::Key1 => "key1",
                        KeyName::Key2 => "key2",
                    }
                    .into(),
                    key,
                };
                // Refuse now what would be refused at the first request.
                super::ContentSource::new(&account, timeouts.clone())
                    .map_err(|e| inv("content.storage", e.to_string()))?;
                Some(account)
            }
        };
        Ok(ContentConfig {
            enabled: self.enabled,
            storage,
            timeouts,
        })
    }
}

/// The storage to serve from at start: the config file's, when it turns content on.
pub fn initial_source(c: &ContentConfig) -> Result<Option<Arc<ContentSource>>, SourceError> {
    match (&c.storage, c.enabled) {
        (Some(account), true) => Ok(Some(Arc::new(ContentSource::new(
            account,
            c.timeouts.clone(),
        )?))),
        _ => Ok(None),
    }
}

/// Who this instance is, to open what a bundle seals to it.
#[derive(Clone, Copy, Debug)]
pub struct Recipient<'a> {
    pub gateway: &'a str,
    pub instance: &'a str,
    /// `[settings] instance_key`; `None`: this instance opens no sealed secret.
    pub key: Option<&'a InstanceKey>,
}

/// The storage to serve from under a bundle's content settings: its storage account
/// (the key opened from the copy sealed to this instance), else the config file's;
/// `None` when content is off or no account is known.
pub fn bundle_source(
    local: &ContentConfig,
    settings: &ContentSettings,
    me: Recipient<'_>,
) -> Result<Option<Arc<ContentSource>>, SourceError> {
    if !settings.enabled {
        return Ok(None);
    }
    let opened;
    let account = match &settings.storage {
        Some(account) => {
            let key = me.key.ok_or_else(|| {
                SourceError::Sealed(
                    "the bundle seals the storage key to the instances, and this one has no \
                     [settings] instance_key"
                        .into(),
                )
            })?;
            let plain = key
                .open(
                    me.instance,
                    &account.seal_purpose(me.gateway),
                    &account.sealed_keys,
                )
                .map_err(|e| SourceError::Sealed(format!("{e}; export this instance again")))?;
            let text =
                std::str::from_utf8(&plain).map_err(|_| SourceError::Sealed("not text".into()))?;
            opened = StorageAccess {
                account: account.account.clone(),
                endpoint: account.endpoint.clone(),
                container: account.container.clone(),
                key_name: account.key_name.clone(),
                key: Zeroizing::new(text.to_owned()),
            };
            &opened
        }
        None => match &local.storage {
            Some(account) => account,
            None => return Ok(None),
        },
    };
    Ok(Some(Arc::new(ContentSource::new(
        account,
        local.timeouts.clone(),
    )?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(dir: &Path, content: &str) -> Result<crate::Config, ConfigError> {
        let text = format!(
            "instance = \"gw1\"\nservice_name = \"cmg.example.test\"\n\
             [listen]\nclient = \"127.0.0.1:0\"\n\
             [tls]\ncert = \"c.pem\"\nkey = \"k.pem\"\n\
             [channel]\nsite_ca = [\"ca.pem\"]\n{content}"
        );
        crate::Config::from_toml(&dir.join("gw.toml"), &text)
    }

    #[test]
    fn content_section() {
        let dir = tempfile::tempdir().expect("tempdir");
        cmg_core::private_file::write(&dir.path().join("storage.key"), b"a2V5\n").expect("key");
        let none = parse(dir.path(), "").expect("no [content]");
        assert_eq!(none.content, ContentConfig::default());
        assert!(!none.content.enabled);

        let full = parse(
            dir.path(),
            "[content]\nenabled = true\ntimeout = \"2s\"\n\
             [content.storage]\naccount = \"acct\"\ncontainer = \"c\"\nkey_name = \"key2\"\nkey_file = \"storage.key\"\n",
        )
        .expect("full");
        assert!(full.content.enabled);
        assert_eq!(full.content.timeouts.request, Duration::from_secs(2));
        let s = full.content.storage.as_ref().expect("storage");
        assert_eq!((s.key_name.as_str(), s.key.as_str()), ("key2", "a2V5"));
        assert!(
            !format!("{:?}", full.content).contains("a2V5"),
            "key in Debug"
        );

        for (bad, field) in [
            ("[content]\nsurprise = 1\n", "surprise"),
            ("[content]\ntimeout = \"1ms\"\n", "content.timeout"),
            (
                "[content.storage]\naccount = \"a\"\ncontainer = \"c\"\nkey_name = \"key3\"\nkey_file = \"storage.key\"\n",
                "key3",
            ),
            (
                "[content.storage]\naccount = \"a\"\ncontainer = \"c\"\nkey_name = \"key1\"\nkey_file = \"missing.key\"\n",
                "content.storage.key_file",
            ),
            (
                "[content.storage]\naccount = \"a\"\ncontainer = \"c\"\nkey_name = \"key1\"\nkey_file = \"storage.key\"\nendpoint = \"http://10.1.2.3/a\"\n",
                "loopback",
            ),
        ] {
            let err = parse(dir.path(), bad).expect_err(bad);
            assert!(err.to_string().contains(field), "{bad}: {err}");
        }
    }
}
