//! The analyzer's answer: one [`Step`] per check, in the order they ran, and whether
//! none failed. The JSON shape (`{"steps": [{"name", "status", "detail", "remedy"}],
//! "ok"}`) is a contract for scripts; [`Report::text`] is what a person reads.

use serde::{Deserialize, Serialize};

/// How one step came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    /// Works, but something needs attention (or could not be checked).
    Warn,
    Fail,
}

impl Status {
    /// ✓, ⚠ or ✗.
    pub fn symbol(self) -> &'static str {
        match self {
            Self::Pass => "✓",
            Self::Warn => "⚠",
            Self::Fail => "✗",
        }
    }
}

/// One check: what was checked, how it came out, what was seen, and what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub name: String,
    pub status: Status,
    pub detail: String,
    /// Empty when there is nothing to do.
    pub remedy: String,
}

impl Step {
    pub fn pass(name: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            status: Status::Pass,
            detail: detail.into(),
            remedy: String::new(),
        }
    }

    pub fn warn(
        name: impl Into<String>,
        detail: impl Into<String>,
        remedy: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            status: Status::Warn,
            detail: detail.into(),
            remedy: remedy.into(),
        }
    }

    pub fn fail(
        name: impl Into<String>,
        detail: impl Into<String>,
        remedy: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            status: Status::Fail,
            detail: detail.into(),
            remedy: remedy.into(),
        }
    }
}

/// Every step, and `ok` = no step failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub steps: Vec<Step>,
    pub ok: bool,
}

impl Report {
    pub fn new(steps: Vec<Step>) -> Self {
        let ok = steps.iter().all(|s| s.status != Status::Fail);
        Self { steps, ok }
    }

    /// One line per step (`✓ name: detail`), the remedy indented below a step that did
    /// not pass, then a summary line.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for s in &self.steps {
            out.push_str(&format!("{} {}: {}\n", s.status.symbol(), s.name, s.detail));
            if s.status != Status::Pass && !s.remedy.is_empty() {
                out.push_str(&format!("    remedy: {}\n", s.remedy));
            }
        }
        let count = |st| self.steps.iter().filter(|s| s.status == st).count();
        out.push_str(&format!(
            "{} passed, {} warnings, {} failed\n",
            count(Status::Pass),
            count(Status::Warn),
            count(Status::Fail)
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ok_only_without_a_failed_step_and_json_shape() {
        let r = Report::new(vec![Step::pass("a", "fine"), Step::warn("b", "hm", "look")]);
        assert!(r.ok);
        let v = serde_json::to_value(&r).expect("json");
        assert_eq!(
            v,
            serde_json::json!({"steps": [
                {"name": "a", "status": "pass", "detail": "fine", "remedy": ""},
                {"name": "b", "status": "warn", "detail": "hm", "remedy": "look"}],
                "ok": true})
        );
        let r = Report::new(vec![Step::pass("a", "x"), Step::fail("c", "bad", "fix it")]);
        assert!(!r.ok);
        let text = r.text();
        assert!(text.contains("✗ c: bad\n    remedy: fix it\n"), "{text}");
        assert!(text.ends_with("1 passed, 0 warnings, 1 failed\n"), "{text}");
    }
}
