//! Which management point the client uses (seed 004, FACTS: "a client keeps its MP
//! until [the next location refresh] or until 5 failures within 10 minutes"): the
//! candidates of the current connection type, in the site's order (locality 3, 2, 1,
//! then 0 for bootstrap names); the client sticks to the one it uses while it has
//! fewer than [`FAILURES_TO_MOVE`] failures in the last [`FAILURE_WINDOW`], and then
//! moves to the next candidate in order that is not itself over the limit. Pure: time
//! comes in as Unix seconds, so tests move it by hand.

use cmg_proto::location::Candidate;
use serde::{Deserialize, Serialize};

/// Failures within the window that make the client move on.
pub const FAILURES_TO_MOVE: usize = 5;
/// The window failures are counted in, in seconds (10 minutes).
pub const FAILURE_WINDOW: i64 = 600;

/// A candidate as the client tracks it: the site's entry and its recent failures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tracked {
    #[serde(flatten)]
    pub candidate: Candidate,
    /// Unix seconds of failures within the window (older ones are pruned).
    #[serde(default)]
    pub failures: Vec<i64>,
}

impl Tracked {
    pub fn new(candidate: Candidate) -> Self {
        Self {
            candidate,
            failures: Vec::new(),
        }
    }

    /// Failures within the window ending at `now`.
    pub fn recent_failures(&self, now: i64) -> usize {
        self.failures
            .iter()
            .filter(|t| now - **t < FAILURE_WINDOW)
            .count()
    }

    fn usable(&self, now: i64) -> bool {
        self.recent_failures(now) < FAILURES_TO_MOVE
    }
}

/// The candidates of one connection type and the one in use.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selection {
    pub candidates: Vec<Tracked>,
    /// Name of the management point in use.
    #[serde(default)]
    pub current: Option<String>,
}

impl Selection {
    /// A new list from the site (a location refresh): failures of candidates that are
    /// still listed are kept, and so is the one in use while it is listed and usable.
    pub fn replace(&mut self, fresh: Vec<Candidate>, now: i64) {
        let old = std::mem::take(&mut self.candidates);
        self.candidates = fresh
            .into_iter()
            .map(|c| {
                let failures = old
                    .iter()
                    .find(|o| o.candidate.name == c.name && o.candidate.kind == c.kind)
                    .map(|o| o.failures.clone())
                    .unwrap_or_default();
                Tracked {
                    candidate: c,
                    failures,
                }
            })
            .collect();
        self.pick(now);
    }

    /// The management point to use now, choosing one if none is in use (or the one in
    /// use is gone or over the failure limit).
    pub fn pick(&mut self, now: i64) -> Option<&Tracked> {
        let keep = self.current.as_ref().and_then(|name| {
            self.candidates
                .iter()
                .position(|t| &t.candidate.name == name && t.usable(now))
        });
        let index = keep.or_else(|| {
            // The next usable one after the current in order, wrapping; else the first.
            let start = self
                .current
                .as_ref()
                .and_then(|n| self.candidates.iter().position(|t| &t.candidate.name == n))
                .map_or(0, |i| i + 1);
            let n = self.candidates.len();
            (0..n)
                .map(|k| (start + k) % n)
                .find(|&i| self.candidates[i].usable(now))
                .or((n > 0).then_some(0))
        });
        self.current = index.map(|i| self.candidates[i].candidate.name.clone());
        index.map(|i| &self.candidates[i])
    }

    /// The management point in use, without choosing.
    pub fn current(&self) -> Option<&Tracked> {
        let name = self.current.as_ref()?;
        self.candidates.iter().find(|t| &t.candidate.name == name)
    }

    /// Counts a failure of `name` at `now`. True when the client moved to another
    /// management point because of it.
    pub fn fail(&mut self, name: &str, now: i64) -> bool {
        let Some(t) = self
            .candidates
            .iter_mut()
            .find(|t| t.candidate.name == name)
        else {
            return false;
        };
        t.failures.retain(|f| now - *f < FAILURE_WINDOW);
        t.failures.push(now);
        let before = self.current.clone();
        self.pick(now);
        before != self.current
    }
}

#[cfg(test)]
mod tests;
