//! [`Agent`]: the client's steps, each one a method the run loop (`run.rs`) and the
//! tests call: decide the connection type, get or renew a device token, refresh
//! location, poll policy, download content. Every step records what it learnt in the
//! state and saves it; a failed step records its error (for `status`) and changes
//! nothing else, so the last good location, token and policy stay.

use std::path::Path;
use std::sync::Arc;

use cmg_proto::device::{CandidateList, ContentKind, LocationAnswer};
use cmg_proto::location::{Candidate, CandidateKind, Locality};
use cmg_token::LocationVerifier;

use crate::clock::{unix, Clock};
use crate::config::{Config, Credential};
use crate::content::{self, ContentFailure, Downloaded};
use crate::decide::{self, Probe};
use crate::endpoint::BaseUrl;
use crate::location::{self, LocationFailure, Route};
use crate::policy::{self, PolicyFailure, Polled};
use crate::select::Selection;
use crate::state::{Connection, ConnectionKind, PolicyRoute, State, StateError};
use crate::token::{self, StsRoute, TokenFailure};
use crate::transport::Transport;

/// Default policy polling interval while the site has not said (the product's 60 min).
pub const DEFAULT_POLICY_INTERVAL_SECS: u64 = 3600;

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("site_keys: {0}")]
    Keys(cmg_token::TokenError),
    #[error(transparent)]
    Location(#[from] LocationFailure),
    #[error(transparent)]
    Token(#[from] TokenFailure),
    #[error(transparent)]
    Policy(#[from] PolicyFailure),
    #[error(transparent)]
    Content(#[from] ContentFailure),
    /// Nothing to send the request to (why is in the text).
    #[error("{0}")]
    NoRoute(String),
}

/// The client agent: configuration, clock, transport, state.
#[derive(Debug)]
pub struct Agent {
    pub(crate) config: Config,
    pub(crate) clock: Arc<dyn Clock>,
    transport: Transport,
    verifier: LocationVerifier,
    pub(crate) state: State,
}

impl Agent {
    /// Loads the state (or starts one) and checks the stored location answer again.
    pub fn open(config: Config, clock: Arc<dyn Clock>) -> Result<Self, AgentError> {
        let verifier =
            location::verifier(&config.site_keys_pem, &config.site).map_err(AgentError::Keys)?;
        let identity = match &config.credential {
            Credential::Certificate { chain, key } => Some((chain.clone(), key.clone())),
            Credential::BulkToken { .. } => None,
        };
        let transport = Transport::new(
            config.trusted_roots.clone(),
            identity,
            config.resolve.clone(),
        );
        let site = config.site.as_str();
        let mut state = match State::load(&config.state_dir, site)? {
            Some(s) => s,
            None => State::new(
                site,
                config
                    .device_id
                    .clone()
                    .unwrap_or_else(cmg_token::site::new_uuid_v4),
            ),
        };
        if let Some(id) = &config.device_id {
            state.device_id.clone_from(id);
        }
        let mut agent = Self {
            config,
            clock,
            transport,
            verifier,
            state,
        };
        if let Some(jws) = agent.state.location_jws.clone() {
            if let Err(e) = location::verify(&agent.verifier, &jws, agent.clock.now(), "state") {
                // An expired answer keeps its candidates (better than none) until the
                // next refresh; any other refusal means the file was altered.
                if !matches!(
                    &e,
                    LocationFailure::Refused {
                        code: "expired",
                        ..
                    }
                ) {
                    agent.state.location_jws = None;
                    agent.state.intranet = Selection::default();
                    agent.state.internet = Selection::default();
                }
                agent.record(format!("stored location: {e}"));
            }
        }
        Ok(agent)
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub(crate) fn now(&self) -> i64 {
        unix(self.clock.now())
    }

    pub(crate) fn save(&mut self) {
        if let Err(e) = self.state.save(&self.config.state_dir) {
            tracing::error!(error = %e, "cannot save the client state");
        }
    }

    pub(crate) fn record(&mut self, message: String) {
        tracing::warn!(target: "cmg_agent", "{message}");
        let now = self.now();
        self.state.record_error(now, message);
    }

    /// The connection type in force (internet until decided).
    pub fn kind(&self) -> ConnectionKind {
        self.state
            .connection
            .as_ref()
            .map_or(ConnectionKind::Internet, |c| c.kind)
    }

    fn bearer(&self) -> Option<String> {
        if !self.config.credential.is_token() {
            return None;
        }
        self.state.device_token.as_ref().map(|t| t.token.clone())
    }

    /// Probes the intranet and decides. True when the connection type changed. The
    /// probe, and every request after it, use new connections: one kept from before a
    /// network change may run over a route that is gone (or, restored, look alive and
    /// be dead).
    pub async fn evaluate(&mut self) -> bool {
        self.transport = self.transport.fresh();
        let probe = if self.config.always_internet {
            None
        } else {
            Some(
                decide::probe(
                    &self.transport,
                    &self.config.intranet_mp,
                    self.config.timing.probe_timeout,
                )
                .await,
            )
        };
        let (kind, reason) = decide::decide(
            self.config.always_internet,
            probe.as_ref(),
            &self.config.intranet_mp,
        );
        let before = self.state.connection.as_ref().map(|c| c.kind);
        if before != Some(kind) {
            tracing::info!(target: "cmg_agent", connection = %kind, %reason, "connection type");
        }
        if let Some(Probe::Failed(_)) = probe {
            tracing::debug!(target: "cmg_agent", %reason, "intranet probe failed");
        }
        self.state.connection = Some(Connection {
            kind,
            reason,
            decided_at: self.now(),
        });
        if self.state.internet.candidates.is_empty() && self.state.location_jws.is_none() {
            let boot = self.bootstrap();
            self.state.internet.replace(boot, self.now());
        }
        self.save();
        before != Some(kind)
    }

    /// The configured gateway names as internet candidates: used only while the
    /// client has learnt no gateway from the site.
    fn bootstrap(&self) -> Vec<Candidate> {
        self.config
            .bootstrap_gateways
            .iter()
            .map(|g| {
                let url = if self.config.credential.is_token() {
                    &g.token
                } else {
                    &g.certificate
                };
                Candidate {
                    kind: CandidateKind::Internet,
                    name: g.certificate.host.clone(),
                    url: url.to_string(),
                    token_url: None,
                    locality: Locality::Unknown,
                }
            })
            .collect()
    }

    /// The management point in use for the current connection type: its name and base.
    fn management_point(&mut self) -> Result<(Option<String>, BaseUrl), AgentError> {
        let now = self.now();
        let kind = self.kind();
        let sel = match kind {
            ConnectionKind::Intranet => &mut self.state.intranet,
            ConnectionKind::Internet => &mut self.state.internet,
        };
        match sel.pick(now) {
            Some(t) => {
                let base = BaseUrl::parse(&t.candidate.url).map_err(|e| {
                    AgentError::NoRoute(format!("management point {}: {e}", t.candidate.name))
                })?;
                Ok((Some(t.candidate.name.clone()), base))
            }
            None if kind == ConnectionKind::Intranet => Ok((None, self.config.intranet_mp.clone())),
            None => Err(AgentError::NoRoute(if self.state.location_jws.is_some() {
                "on the internet with no gateway: the site lists none (is \"Enable clients to use a CMG\" No?)".into()
            } else {
                "on the internet with no gateway known: no location yet and no bootstrap_gateways"
                    .into()
            })),
        }
    }

    /// Counts a failure against the management point in use.
    fn fail_mp(&mut self, name: Option<&str>) {
        let Some(name) = name else { return };
        let now = self.now();
        let sel = match self.kind() {
            ConnectionKind::Intranet => &mut self.state.intranet,
            ConnectionKind::Internet => &mut self.state.internet,
        };
        if sel.fail(name, now) {
            let next = sel.current.clone().unwrap_or_default();
            tracing::warn!(target: "cmg_agent", from = name, to = %next,
                "5 failures within 10 minutes: moving to the next management point");
        }
    }

    /// Gets a device token (token clients: the bulk token traded; certificate clients
    /// on the intranet: registration by certificate) or renews the one held.
    pub async fn ensure_token(&mut self) -> Result<(), AgentError> {
        let now = self.now();
        let deadline = self.config.timing.request_timeout;
        let intranet = self.kind() == ConnectionKind::Intranet;
        let is_token = self.config.credential.is_token();
        if self.state.token_refused.is_some() {
            return Ok(());
        }
        let held = self.state.device_token.clone();
        if held.as_ref().is_some_and(|t| !token::needs_renewal(t, now)) {
            return Ok(());
        }
        if !is_token && held.is_none() && !intranet {
            // A certificate client needs no token; it gets one only by registering on
            // the intranet.
            return Ok(());
        }
        let route = if intranet {
            StsRoute::Site(self.config.site_url.clone())
        } else {
            let (_, base) = self.management_point()?;
            StsRoute::Gateway(base)
        };
        let result = match (&held, &self.config.credential) {
            (Some(t), _) => {
                token::exchange(&self.transport, &route, &t.token, None, now, deadline).await
            }
            (None, Credential::BulkToken { file }) => {
                let bulk = read_bulk(file)?;
                let device = self.state.device_id.clone();
                token::exchange(&self.transport, &route, &bulk, Some(&device), now, deadline).await
            }
            (None, Credential::Certificate { .. }) => {
                let device = self.state.device_id.clone();
                token::register_with_certificate(
                    &self.transport,
                    &self.config.site_url,
                    &device,
                    now,
                    deadline,
                )
                .await
            }
        };
        match result {
            Ok(t) => {
                tracing::info!(target: "cmg_agent", tracking_id = %t.tracking_id,
                    expires_at = t.expires_at, renewed = held.is_some(), "device token");
                self.state.device_token = Some(t);
                self.save();
                Ok(())
            }
            Err(e) => {
                if let TokenFailure::Refused { code, .. } = &e {
                    // A refused device token (blocked, expired) is not traded for a new
                    // one with the bulk token: blocking a device must stick.
                    self.state.token_refused = Some(code.clone());
                    if held.as_ref().is_some_and(|t| t.expires_at <= now) || code == "token_blocked"
                    {
                        self.state.device_token = None;
                    }
                }
                self.record(e.to_string());
                self.save();
                Err(e.into())
            }
        }
    }

    /// Asks the site where to go (straight on the intranet, through the gateway in use
    /// on the internet) and, when the answer verifies, takes its candidates and
    /// settings. `want_content`: also locate this content.
    pub async fn refresh_location(
        &mut self,
        want_content: Option<String>,
    ) -> Result<LocationAnswer, AgentError> {
        let (name, route) = match self.kind() {
            ConnectionKind::Intranet => (None, Route::Site(self.config.site_url.clone())),
            ConnectionKind::Internet => {
                let (name, base) = self.management_point()?;
                (name, Route::Gateway(base))
            }
        };
        let bearer = self.bearer();
        if self.config.credential.is_token() && bearer.is_none() {
            return Err(AgentError::NoRoute(
                "no device token yet: the location request needs one".into(),
            ));
        }
        let result = location::fetch(
            &self.transport,
            &route,
            &self.config.site,
            location::host_addresses(),
            want_content,
            bearer.as_deref(),
            &self.verifier,
            self.clock.now(),
            self.config.timing.request_timeout,
        )
        .await;
        match result {
            Ok((jws, answer)) => {
                let now = self.now();
                let (intranet, internet) = split(&answer);
                self.state.intranet.replace(intranet, now);
                self.state.internet.replace(internet, now);
                self.state.location_jws = Some(jws);
                self.state.last_location_refresh = Some(now);
                self.state
                    .boundary_groups
                    .clone_from(&answer.boundary_groups);
                self.state.policy_interval_secs = Some(answer.client_settings.policy_interval_secs);
                self.state.use_cmg = Some(answer.client_settings.enable_cmg);
                tracing::info!(target: "cmg_agent", groups = ?answer.boundary_groups,
                    candidates = answer.candidates.len(), "location refreshed");
                self.save();
                Ok(answer)
            }
            Err(e) => {
                if matches!(e, LocationFailure::Transport(_))
                    || matches!(&e, LocationFailure::Status { status, .. } if status.is_server_error())
                {
                    self.fail_mp(name.as_deref());
                }
                self.record(e.to_string());
                self.save();
                Err(e.into())
            }
        }
    }

    /// Polls policy at the management point in use.
    pub async fn poll_policy(&mut self) -> Result<Polled, AgentError> {
        let (name, base) = self.management_point()?;
        let bearer = self.bearer();
        let dir = self.config.state_dir.join("policy");
        let mut held = self.state.policy.clone();
        let result = policy::poll(
            &self.transport,
            &base,
            bearer.as_deref(),
            &mut held,
            &dir,
            self.config.timing.request_timeout,
        )
        .await;
        let now = self.now();
        match result {
            Ok(p) => {
                held.last_poll = Some(now);
                if !p.downloaded.is_empty() {
                    held.last_download = Some(now);
                }
                let mp = name.as_deref().unwrap_or("intranet_mp");
                let route = p
                    .path
                    .as_deref()
                    .map(|r| format!(", {r}"))
                    .unwrap_or_default();
                held.last_path = Some(format!("{} via {mp} ({base}{route})", self.kind()));
                held.last_route = Some(PolicyRoute {
                    connection: self.kind(),
                    management_point: mp.to_owned(),
                    url: base.to_string(),
                    gateway_instance: p.gateway_instance.clone(),
                    connection_point: p.connection_point.clone(),
                });
                self.state.policy = held;
                tracing::info!(target: "cmg_agent", path = ?self.state.policy.last_path,
                    downloaded = ?p.downloaded, unchanged = p.unchanged, "policy polled");
                self.save();
                Ok(p)
            }
            Err(e) => {
                if e.counts_against_mp() {
                    self.fail_mp(name.as_deref());
                }
                self.record(e.to_string());
                self.save();
                Err(e.into())
            }
        }
    }

    /// Locates content `id` through the site and downloads it from the first cloud
    /// location to `out`, resuming an earlier partial download, checking `sha256`.
    pub async fn download_content(
        &mut self,
        id: &str,
        sha256: &str,
        out: &Path,
    ) -> Result<Downloaded, AgentError> {
        let answer = self.refresh_location(Some(id.to_owned())).await?;
        let locations = answer.content.unwrap_or_default();
        let Some(loc) = locations.iter().find(|l| l.kind == ContentKind::Cloud) else {
            return Err(AgentError::NoRoute(format!(
                "the site gives no cloud location for content {id} (\"Allow access to cloud distribution point\" off, or no gateway serves content)"
            )));
        };
        let url = BaseUrl::parse(&loc.url)
            .map_err(|e| AgentError::NoRoute(format!("content location: {e}")))?;
        let bearer = self.bearer();
        match content::download(&self.transport, &url, bearer.as_deref(), out, sha256).await {
            Ok(d) => Ok(d),
            Err(e) => {
                self.record(e.to_string());
                self.save();
                Err(e.into())
            }
        }
    }
}

/// The answer's two lists, intranet then internet, each in the site's order: by the
/// tag each candidate carries (format 2), or in a format 1 answer by the rule the site
/// wrote them by (`LocationAnswer::list_of`).
pub fn split(answer: &LocationAnswer) -> (Vec<Candidate>, Vec<Candidate>) {
    let list = |l| {
        answer
            .candidates_in(l)
            .map(location::to_candidate)
            .collect()
    };
    (list(CandidateList::Intranet), list(CandidateList::Internet))
}

fn read_bulk(path: &Path) -> Result<String, AgentError> {
    std::fs::read_to_string(path)
        .map(|t| t.trim().to_owned())
        .map_err(|e| {
            AgentError::Token(TokenFailure::BulkFile {
                path: path.display().to_string(),
                message: e.to_string(),
            })
        })
}
