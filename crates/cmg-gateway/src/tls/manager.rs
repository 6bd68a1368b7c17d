//! Who may change the TLS material, and in what order: the reload watcher (files changed
//! on disk) and the settings path (a bundle with client trust and TLS policy). Both go
//! through one lock, so a reload never undoes a bundle nor a bundle a reload.
//!
//! Once a bundle is in force its client trust (roots, intermediates, trust list,
//! revocation on/off) and minimum TLS version replace those of the config files; the
//! server certificate and key, the site CA, hand-configured CRL files and the CRL fetch
//! settings always come from the files.

use std::sync::{Arc, Mutex, MutexGuard};

use cmg_pki::revocation::RevocationChecker;
use cmg_proto::settings::SettingsBundle;
use tracing::info;

use super::{build, channel_revocation, revocation, ClientTrust, LiveTls, TlsConfigs, TrustSource};
use crate::config::Config;
use crate::error::SetupError;

/// The gateway's TLS state.
#[derive(Debug)]
pub struct TlsManager {
    config: Config,
    live: Arc<LiveTls>,
    state: Mutex<State>,
    /// Connection point certificates' checker (`[channel] verify_revocation`, from the
    /// files only), created once.
    channel_revocation: Option<RevocationChecker>,
}

#[derive(Debug)]
struct State {
    trust: ClientTrust,
    /// Created the first time revocation checking is on, then kept (cache, fetches).
    revocation: Option<RevocationChecker>,
}

/// A bundle's TLS material, built and checked, not yet in force.
#[derive(Debug)]
pub struct Prepared {
    trust: ClientTrust,
    configs: TlsConfigs,
}

/// The lock held while a bundle is applied: [`prepare`](Self::prepare) builds
/// everything fallible, [`commit`](Self::commit) swaps it in.
#[derive(Debug)]
pub struct BundleGuard<'a> {
    manager: &'a TlsManager,
    state: MutexGuard<'a, State>,
}

impl TlsManager {
    /// Loads the files the config names and builds the first configs.
    pub fn new(config: &Config) -> Result<Self, SetupError> {
        let trust = ClientTrust::from_files(config)?;
        let checker = needs_checker(&trust)
            .then(|| revocation(config, &trust))
            .transpose()?;
        let channel_checker = config
            .channel
            .verify_revocation
            .then(|| channel_revocation(config))
            .transpose()?;
        let configs = build(config, &trust, checker.as_ref(), channel_checker.as_ref())?;
        Ok(Self {
            config: config.clone(),
            live: Arc::new(LiveTls::new(configs)),
            state: Mutex::new(State {
                trust,
                revocation: checker,
            }),
            channel_revocation: channel_checker,
        })
    }

    /// The configs new handshakes use.
    pub fn live(&self) -> Arc<LiveTls> {
        self.live.clone()
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The files changed on disk: rebuild with them (keeping a bundle's client trust
    /// when one is in force). On error the current material stays.
    pub fn reload(&self) -> Result<(), SetupError> {
        let mut state = self.lock();
        let trust = match state.trust.source {
            TrustSource::Files => ClientTrust::from_files(&self.config)?,
            TrustSource::Bundle(_) => state.trust.clone(),
        };
        let checker = self.checker(&mut state, &trust)?;
        let configs = build(
            &self.config,
            &trust,
            checker.as_ref(),
            self.channel_revocation.as_ref(),
        )?;
        self.live.replace(configs);
        state.trust = trust;
        Ok(())
    }

    /// Locks the TLS state for applying a bundle.
    pub fn for_bundle(&self) -> BundleGuard<'_> {
        BundleGuard {
            manager: self,
            state: self.lock(),
        }
    }

    fn checker(
        &self,
        state: &mut State,
        trust: &ClientTrust,
    ) -> Result<Option<RevocationChecker>, SetupError> {
        if !needs_checker(trust) {
            return Ok(None);
        }
        if state.revocation.is_none() {
            state.revocation = Some(revocation(&self.config, trust)?);
        }
        Ok(state.revocation.clone())
    }
}

fn needs_checker(trust: &ClientTrust) -> bool {
    trust.verify_revocation && !trust.roots.is_empty()
}

impl BundleGuard<'_> {
    /// Builds the TLS configs `bundle` asks for; nothing changes yet.
    pub fn prepare(&mut self, bundle: &SettingsBundle) -> Result<Prepared, String> {
        let trust = ClientTrust::from_bundle(bundle)?;
        let checker = self
            .manager
            .checker(&mut self.state, &trust)
            .map_err(|e| format!("revocation checking: {e}"))?;
        let configs = build(
            &self.manager.config,
            &trust,
            checker.as_ref(),
            self.manager.channel_revocation.as_ref(),
        )
        .map_err(|e| format!("TLS material: {e}"))?;
        Ok(Prepared { trust, configs })
    }

    /// Puts prepared material in force for new handshakes.
    pub fn commit(mut self, prepared: Prepared) {
        let t = &prepared.trust;
        let changed = describe(&self.state.trust) != describe(t);
        if changed {
            info!(
                roots = t.roots.len(),
                intermediates = t.intermediates.len(),
                verify_revocation = t.verify_revocation,
                min_tls = ?t.min_version,
                "client trust and TLS policy now from the settings bundle"
            );
        }
        self.manager.live.replace(prepared.configs);
        self.state.trust = prepared.trust;
    }
}

/// What a log line needs to tell whether the trust changed.
fn describe(t: &ClientTrust) -> impl PartialEq + '_ {
    (
        &t.roots,
        &t.intermediates,
        t.verify_revocation,
        t.min_version,
    )
}
