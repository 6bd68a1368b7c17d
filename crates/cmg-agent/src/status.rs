//! `cmg client status`: what the product shows in `SMS_ActiveMPCandidate` (each
//! management point candidate with its type, Intranet or Internet, and locality) and
//! in the control panel ("Connection type: Currently intranet / Currently Internet"),
//! read from the state file alone (the agent need not run). JSON keys are stable:
//! `site`, `connection`, `management_point`, `candidates`, `last_location_refresh`,
//! and the rest below.

use std::fmt::Write as _;

use cmg_proto::location::{CandidateKind, Locality};
use serde::Serialize;

use crate::clock::rfc3339;
use crate::config::Config;
use crate::select::Selection;
use crate::state::{ConnectionKind, State};

#[derive(Debug, Clone, Serialize)]
pub struct StatusView {
    pub site: String,
    pub device_id: String,
    /// `certificate` or `token`.
    pub credential: &'static str,
    pub connection: Option<ConnectionView>,
    pub management_point: Option<CandidateView>,
    pub candidates: Vec<CandidateView>,
    pub last_location_refresh: Option<String>,
    pub boundary_groups: Vec<String>,
    /// "Enable clients to use a CMG" as the site last said.
    pub use_cmg: Option<bool>,
    pub token_expiry: Option<String>,
    /// The site's reason when it refused the device token.
    pub token_refused: Option<String>,
    pub last_policy_poll: Option<String>,
    pub last_policy_download: Option<String>,
    /// The path the last policy took (connection type, MP, gateway instance and
    /// connection point when the gateway names them).
    pub policy_path: Option<String>,
    /// The same as data (connection, management point, URL, instance, connection point).
    pub policy_route: Option<crate::state::PolicyRoute>,
    pub policies: usize,
    pub last_errors: Vec<ErrorView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConnectionView {
    /// `intranet` or `internet`.
    #[serde(rename = "type")]
    pub kind: ConnectionKind,
    pub reason: String,
    pub decided_at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct CandidateView {
    /// `Intranet` or `Internet`, as `SMS_ActiveMPCandidate.Type`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The list it is in (as the site's answer tags it): used while `intranet` or
    /// while `internet`.
    pub list: ConnectionKind,
    pub name: String,
    pub url: String,
    /// 3 current group, 2 neighbour, 1 site default, 0 unknown (bootstrap).
    pub locality: u8,
    pub failures: usize,
    pub in_use: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ErrorView {
    pub at: String,
    pub message: String,
}

fn kind_name(k: CandidateKind) -> &'static str {
    match k {
        CandidateKind::Intranet => "Intranet",
        CandidateKind::Internet => "Internet",
    }
}

fn locality_number(l: Locality) -> u8 {
    l as u8
}

impl StatusView {
    /// The view of `state` for `config` at `now` (Unix seconds).
    pub fn new(config: &Config, state: &State, now: i64) -> Self {
        let kind = state.connection.as_ref().map(|c| c.kind);
        let list = |sel: &Selection, list: ConnectionKind| -> Vec<CandidateView> {
            sel.candidates
                .iter()
                .map(|t| CandidateView {
                    kind: kind_name(t.candidate.kind),
                    list,
                    name: t.candidate.name.clone(),
                    url: t.candidate.url.clone(),
                    locality: locality_number(t.candidate.locality),
                    failures: t.recent_failures(now),
                    in_use: kind == Some(list) && sel.current.as_ref() == Some(&t.candidate.name),
                })
                .collect()
        };
        let mut candidates = list(&state.intranet, ConnectionKind::Intranet);
        candidates.extend(list(&state.internet, ConnectionKind::Internet));
        Self {
            site: state.site.clone(),
            device_id: state.device_id.clone(),
            credential: if config.credential.is_token() {
                "token"
            } else {
                "certificate"
            },
            connection: state.connection.as_ref().map(|c| ConnectionView {
                kind: c.kind,
                reason: c.reason.clone(),
                decided_at: rfc3339(c.decided_at),
            }),
            management_point: candidates.iter().find(|c| c.in_use).cloned(),
            candidates,
            last_location_refresh: state.last_location_refresh.map(rfc3339),
            boundary_groups: state.boundary_groups.clone(),
            use_cmg: state.use_cmg,
            token_expiry: state.device_token.as_ref().map(|t| rfc3339(t.expires_at)),
            token_refused: state.token_refused.clone(),
            last_policy_poll: state.policy.last_poll.map(rfc3339),
            last_policy_download: state.policy.last_download.map(rfc3339),
            policy_path: state.policy.last_path.clone(),
            policy_route: state.policy.last_route.clone(),
            policies: state.policy.held.len(),
            last_errors: state
                .errors
                .iter()
                .rev()
                .map(|e| ErrorView {
                    at: rfc3339(e.at),
                    message: e.message.clone(),
                })
                .collect(),
        }
    }

    /// The human-readable form.
    pub fn text(&self) -> String {
        let mut s = String::new();
        let none = || "never".to_owned();
        let _ = writeln!(
            s,
            "site:                  {} (device {}, {} client)",
            self.site, self.device_id, self.credential
        );
        match &self.connection {
            Some(c) => {
                let shown = match c.kind {
                    ConnectionKind::Intranet => "Currently intranet",
                    ConnectionKind::Internet => "Currently Internet",
                };
                let _ = writeln!(s, "connection type:       {shown} ({})", c.reason);
            }
            None => {
                let _ = writeln!(s, "connection type:       not decided yet");
            }
        }
        let mp = self
            .management_point
            .as_ref()
            .map_or("none".to_owned(), |m| {
                format!("{} {} ({})", m.name, m.url, m.kind)
            });
        let _ = writeln!(s, "management point:      {mp}");
        let _ = writeln!(
            s,
            "last location refresh: {}",
            self.last_location_refresh.clone().unwrap_or_else(none)
        );
        if !self.boundary_groups.is_empty() {
            let _ = writeln!(
                s,
                "boundary groups:       {}",
                self.boundary_groups.join(", ")
            );
        }
        if self.use_cmg == Some(false) {
            let _ = writeln!(s, "use CMG:               No (client settings)");
        }
        let token = match (&self.token_expiry, &self.token_refused) {
            (_, Some(code)) => format!("refused by the site ({code})"),
            (Some(exp), None) => format!("expires {exp}"),
            (None, None) => "none".into(),
        };
        let _ = writeln!(s, "device token:          {token}");
        let _ = writeln!(
            s,
            "last policy download:  {} ({} policies)",
            self.last_policy_download.clone().unwrap_or_else(none),
            self.policies
        );
        if let Some(p) = &self.policy_path {
            let _ = writeln!(s, "last policy path:      {p}");
        }
        // Each list as the site's answer tagged it: the one used while intranet, the
        // one used while internet (a gateway may be in both).
        for list in [ConnectionKind::Intranet, ConnectionKind::Internet] {
            let _ = writeln!(s, "candidates, {list} list:");
            for c in self.candidates.iter().filter(|c| c.list == list) {
                let mark = if c.in_use { "*" } else { " " };
                let _ = writeln!(
                    s,
                    " {mark} {:<8} {:<20} locality {} failures {} {}",
                    c.kind, c.name, c.locality, c.failures, c.url
                );
            }
        }
        if !self.last_errors.is_empty() {
            let _ = writeln!(s, "last errors:");
            for e in &self.last_errors {
                let _ = writeln!(s, "  {} {}", e.at, e.message);
            }
        }
        s
    }
}
