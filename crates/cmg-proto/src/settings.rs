//! The settings bundle: everything the site publishes to one gateway, as one versioned
//! document (seed 000: "The site automatically uploads all published external URLs to
//! the CMG"; docs/architecture.md, "Settings").
//!
//! The site builds a [`SettingsBundle`] from its database on every change, increments
//! [`version`](SettingsBundle::version), and signs it with the site key (`cmg-token`'s
//! `bundle` module: a compact JWS, RS256, `typ` [`BUNDLE_JWS_TYPE`]). Connection points
//! fetch it from the site and hand it to every gateway instance over the channel; the
//! gateway verifies signature, gateway name and version (never older than the one it
//! runs), applies it atomically and keeps the last good one on disk.
//!
//! The gateway is given what it needs to filter and authenticate, never the internal URLs
//! behind the mappings: those stay with the connection points.

use serde::{Deserialize, Serialize};

use crate::ids::SiteCode;
use crate::mapping::{AuthKind, ExternalPrefix};

/// The JOSE `typ` header of a signed bundle, so a site token can never pass as a bundle
/// nor a bundle as a token.
pub const BUNDLE_JWS_TYPE: &str = "cmg-settings+jws";

/// The bundle format this build reads and writes.
/// 2: the storage key is sealed to the instances (`StorageAccount::sealed_keys`).
pub const BUNDLE_FORMAT: u32 = 2;

/// One gateway's published settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SettingsBundle {
    /// [`BUNDLE_FORMAT`]; a gateway refuses a format it does not know.
    pub format: u32,
    pub site: SiteCode,
    /// The site GUID (the issuer of site tokens is `urn:sccm:oauth2:<guid>`).
    pub site_guid: String,
    /// The gateway (cloud service) this bundle is for; an instance refuses a bundle for
    /// another gateway.
    pub gateway: String,
    /// Strictly increasing per gateway; an instance refuses a version older than the one
    /// it runs (replay) and ignores an equal one.
    pub version: u64,
    /// Unix seconds when the site signed it.
    pub issued_at: u64,
    /// The service FQDN clients use (from the server certificate).
    pub service_name: String,
    /// The published URLs: what the gateway filters, authenticates and limits.
    pub published: Vec<PublishedEndpoint>,
    pub client_auth: ClientAuthSettings,
    pub tls: TlsSettings,
    pub tokens: TokenSettings,
    pub content: ContentSettings,
    /// Set when the 14-day traffic alert reached critical with "stop the service" on:
    /// the gateway answers 503 with this reason until the administrator clears it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_stopped: Option<String>,
    /// Every instance of the gateway and how connection points reach it; empty: the
    /// connection points keep the list in their config files. Gateways ignore it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<InstanceAddrs>,
}

/// How connection points reach one gateway instance (docs/architecture.md, "Instances
/// from the site").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceAddrs {
    /// The instance's name at the site (`<gateway>-<n>`).
    pub name: String,
    /// Its channel addresses, `host:port`, in order of preference: the first is its
    /// channel port; the later ones are fallbacks, normally its client port (the gateway
    /// answers the channel there too, by ALPN).
    pub channel: Vec<String>,
}

/// A published URL as the site generates it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishedEndpoint {
    pub prefix: ExternalPrefix,
    pub auth: AuthKind,
    /// Maximum request body in bytes.
    pub max_body: u64,
}

/// Client certificate settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientAuthSettings {
    /// Trusted root CA certificates, PEM (one certificate per entry).
    pub trusted_roots_pem: Vec<String>,
    /// Trusted intermediate CA certificates, PEM.
    pub intermediates_pem: Vec<String>,
    /// The site's certificate trust list: SHA-256 fingerprints (hex) of the roots a chain
    /// may end at. `None`: every trusted root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust_list_sha256: Option<Vec<String>>,
    /// "Verify client certificate revocation".
    pub verify_revocation: bool,
}

/// TLS policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// `"1.2"` or `"1.3"`.
    pub min_version: String,
}

/// Bearer-token settings for `CCM_Proxy_ServerAuth` URLs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSettings {
    /// Entra ID / OIDC issuers accepted.
    pub oidc: Vec<OidcIssuer>,
    /// The site's token verification keys (RSA public keys, PEM); several during a key
    /// rollover overlap.
    pub site_keys_pem: Vec<String>,
    /// Tracking IDs (`jti`) of blocked site tokens.
    pub blocked_token_ids: Vec<String>,
}

/// One OIDC issuer (an Entra ID tenant, or any OpenID Connect provider).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcIssuer {
    /// Issuer URL; discovery is `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    /// Accepted audiences (the server app's ID URI).
    pub audiences: Vec<String>,
    /// Allowed tenant IDs (`tid`); empty: any.
    #[serde(default)]
    pub tenants: Vec<String>,
}

/// Content (cloud distribution point) settings: seed 004, "Allow CMG to function as a
/// cloud distribution point and serve content from Azure storage".
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContentSettings {
    pub enabled: bool,
    /// The storage account content is read from; `None`: the gateway's own `[content]`
    /// section, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<StorageAccount>,
}

/// An Azure storage account and the one access key in force, sealed to each gateway
/// instance (`cmg-token`'s `seal`: HPKE to the instance's own X25519 key), so only the
/// instances read the key: connection points relay it, and the bundle's signature covers
/// the sealed copies like everything else.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageAccount {
    /// Account name (also the Shared Key signing name).
    pub account: String,
    /// Blob service URL; `None`: `https://<account>.blob.core.windows.net`. An emulator
    /// (Azurite) uses the path-style `http://127.0.0.1:<port>/<account>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The container the content lives in.
    pub container: String,
    /// Which of the account's two keys is in force: `"key1"` or `"key2"`.
    pub key_name: String,
    /// That key (base64 as the provider shows it), one sealed copy per instance.
    pub sealed_keys: Vec<SealedSecret>,
}

impl StorageAccount {
    /// What a sealed storage key is bound to (its HPKE associated data, with the
    /// instance): the gateway, the account and the key name, so a copy moved to another
    /// account or key does not open.
    pub fn seal_purpose(&self, gateway: &str) -> String {
        format!("storage-key:{gateway}:{}:{}", self.account, self.key_name)
    }
}

/// A secret sealed to one gateway instance's public key (HPKE base mode,
/// X25519-HKDF-SHA256, HKDF-SHA256, ChaCha20-Poly1305). Opaque to everyone else.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealedSecret {
    /// The instance name (`<gateway>-<n>`) it is sealed to.
    pub instance: String,
    /// The id of the instance public key it is sealed to (hex of the first 8 bytes of
    /// its SHA-256), so an instance with a newer key knows the copy is not for it.
    pub key_id: String,
    /// The HPKE encapsulated key, base64.
    pub enc: String,
    /// Ciphertext and tag, base64.
    pub ciphertext: String,
}

impl SettingsBundle {
    /// A newer bundle for the same gateway replaces this one; `Err` says why not.
    pub fn may_replace(&self, current: &SettingsBundle) -> Result<(), &'static str> {
        if self.gateway != current.gateway {
            return Err("bundle is for another gateway");
        }
        if self.site != current.site {
            return Err("bundle is for another site");
        }
        if self.version < current.version {
            return Err("bundle is older than the one in force");
        }
        if self.version == current.version {
            return Err("bundle version already in force");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bundle(version: u64) -> SettingsBundle {
        SettingsBundle {
            format: BUNDLE_FORMAT,
            site: SiteCode::new("DEM").expect("site code"),
            site_guid: "6f1c7a6e-0000-4000-8000-000000000001".into(),
            gateway: "cmg1".into(),
            version,
            issued_at: 1,
            service_name: "cmg.demo.test".into(),
            published: vec![PublishedEndpoint {
                prefix: ExternalPrefix::new("/CCM_Proxy_MutualAuth/72057594037927939/CCM_System")
                    .expect("prefix"),
                auth: AuthKind::MutualAuth,
                max_body: 16 << 20,
            }],
            client_auth: ClientAuthSettings {
                trusted_roots_pem: vec![],
                intermediates_pem: vec![],
                trust_list_sha256: None,
                verify_revocation: true,
            },
            tls: TlsSettings {
                min_version: "1.2".into(),
            },
            tokens: TokenSettings::default(),
            content: ContentSettings::default(),
            service_stopped: None,
            instances: Vec::new(),
        }
    }

    #[test]
    fn json_round_trip_and_unknown_fields_refused() {
        let b = bundle(3);
        let json = serde_json::to_string(&b).expect("serialize");
        let back: SettingsBundle = serde_json::from_str(&json).expect("parse");
        assert_eq!(back, b);
        let mut value: serde_json::Value = serde_json::from_str(&json).expect("value");
        value["surprise"] = serde_json::json!(1);
        assert!(serde_json::from_value::<SettingsBundle>(value).is_err());
    }

    #[test]
    fn only_a_newer_bundle_for_the_same_gateway_replaces() {
        let current = bundle(5);
        assert!(bundle(6).may_replace(&current).is_ok());
        assert!(bundle(5).may_replace(&current).is_err());
        assert!(bundle(4).may_replace(&current).is_err());
        let mut other = bundle(9);
        other.gateway = "cmg2".into();
        assert!(other.may_replace(&current).is_err());
    }
}
