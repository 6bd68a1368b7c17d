//! The page shell (head, navigation, sign-out) and the small pieces every page uses:
//! times, byte counts, status labels, notices after an action.

use axum::response::{IntoResponse, Response};
use http::StatusCode;
use maud::{html, Markup, DOCTYPE};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::assets::Assets;
use super::session::Session;
use crate::api::error::ApiError;
use crate::model::HealthState;

/// What every signed-in page is rendered with.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    pub assets: &'a Assets,
    pub session: &'a Session,
    /// Unix seconds, for relative ages.
    pub now: i64,
}

/// The pages of the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Gateways,
    Roles,
    ConnectionPoints,
    Tokens,
    Keys,
    Boundary,
    Audit,
}

const NAV: &[(Nav, &str, &str)] = &[
    (Nav::Gateways, "/ui/gateways", "Gateways"),
    (Nav::Roles, "/ui/roles", "Roles and URL mappings"),
    (
        Nav::ConnectionPoints,
        "/ui/connection-points",
        "Connection points",
    ),
    (Nav::Tokens, "/ui/tokens", "Tokens"),
    (Nav::Keys, "/ui/keys", "Keys"),
    (Nav::Boundary, "/ui/boundary-groups", "Boundary groups"),
    (Nav::Audit, "/ui/audit", "Audit log"),
    // The connection analyzer's page joins this list when it is built.
];

/// The outcome of an action, shown above the page it returns to.
#[derive(Debug, Clone)]
pub enum Notice {
    Ok(String),
    /// The action ran, and what it found is a failure (a connection analyzer run with a
    /// failed step): shown as an error, answered 200.
    Failed(String),
    Err(StatusCode, String),
}

impl Notice {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Ok(_) | Self::Failed(_) => StatusCode::OK,
            Self::Err(s, _) => *s,
        }
    }
}

impl From<ApiError> for Notice {
    fn from(e: ApiError) -> Self {
        Self::Err(e.status, e.message)
    }
}

fn head(assets: &Assets, title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            // htmx must not add an inline style (the CSP refuses it) or evaluate code.
            meta name="htmx-config" content=r#"{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false}"#;
            title { (title) " · cmg" }
            link rel="stylesheet" href=(assets.url("console.css"));
            script src=(assets.url("htmx.min.js")) defer {}
            script src=(assets.url("console.js")) defer {}
        }
    }
}

/// A page without navigation (sign-in).
pub fn standalone(assets: &Assets, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(assets, title))
            body { (body) }
        }
    }
}

/// A signed-in page.
pub fn page(ctx: Ctx<'_>, here: Nav, title: &str, notice: Option<&Notice>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(ctx.assets, title))
            body {
                header.top {
                    span.brand { "cmg console" }
                    nav {
                        @for (nav, href, label) in NAV {
                            a href=(href) class=[(*nav == here).then_some("here")] { (label) }
                        }
                    }
                    div.who {
                        span { "Signed in as " strong { (ctx.session.name) } }
                        form.inline method="post" action="/ui/sign-out" {
                            (csrf_field(ctx.session))
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main {
                    @match notice {
                        Some(Notice::Ok(m)) => p.notice.ok role="status" { (m) },
                        Some(Notice::Failed(m) | Notice::Err(_, m)) => p.notice.err role="alert" { (m) },
                        None => {},
                    }
                    (body)
                }
            }
        }
    }
}

/// A page with no session and no assets: refusals and faults.
pub fn bare(title: &str, message: &str) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { (title) " · cmg" } }
            body {
                h1 { (title) }
                p { (message) }
                p { a href="/ui/gateways" { "Back to the console" } }
            }
        }
    }
}

/// A failure to render a page at all (the store failed, or the thing is not on record).
pub fn error_page(e: ApiError) -> Response {
    let title = if e.status == StatusCode::NOT_FOUND {
        "Not found"
    } else {
        "Error"
    };
    (e.status, bare(title, &e.message)).into_response()
}

/// The hidden CSRF field every form carries.
pub fn csrf_field(s: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(s.csrf); }
}

/// `at` (Unix seconds) as `<time>`: UTC and the age as text, the ISO form in
/// `datetime` for the script that shows it in the viewer's zone.
pub fn time(at: i64, now: i64) -> Markup {
    let Ok(t) = OffsetDateTime::from_unix_timestamp(at) else {
        return html! { "?" };
    };
    let iso = t.format(&Rfc3339).unwrap_or_default();
    let utc = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    let rel = relative(at, now);
    html! { time datetime=(iso) data-rel=(rel) { (utc) " (" (rel) ")" } }
}

/// How long ago (or how far ahead) `at` is from `now`.
pub fn relative(at: i64, now: i64) -> String {
    let d = now - at;
    let a = d.unsigned_abs();
    let span = if a < 60 {
        format!("{a} s")
    } else if a < 3600 {
        format!("{} min", a / 60)
    } else if a < 2 * 86_400 {
        format!("{} h", a / 3600)
    } else {
        format!("{} days", a / 86_400)
    };
    if a < 5 {
        "just now".into()
    } else if d > 0 {
        format!("{span} ago")
    } else {
        format!("in {span}")
    }
}

/// Bytes in decimal units (the alert threshold is in GB = 10⁹ bytes).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

/// A gateway status as text and colour (never colour alone).
pub fn status(s: HealthState) -> Markup {
    let (class, text) = match s {
        HealthState::Ready => ("st-ready", "Ready"),
        HealthState::Warning => ("st-warning", "Warning"),
        HealthState::Error => ("st-error", "Error"),
        HealthState::Disconnected => ("st-disconnected", "Disconnected"),
        HealthState::Stopped => ("st-stopped", "Stopped"),
    };
    html! { span class={"status " (class)} { (text) } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_and_sizes_read_as_words() {
        assert_eq!(relative(100, 102), "just now");
        assert_eq!(relative(0, 90), "1 min ago");
        assert_eq!(relative(0, 7200), "2 h ago");
        assert_eq!(relative(0, 3 * 86_400), "3 days ago");
        assert_eq!(relative(600, 0), "in 10 min");
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(1_500_000), "1.5 MB");
        assert_eq!(bytes(10_000_000_000_000), "10.0 TB");
    }

    #[test]
    fn times_carry_iso_utc_and_age() {
        let m = time(1_700_000_000, 1_700_000_060).into_string();
        assert!(m.contains(r#"datetime="2023-11-14T22:13:20Z""#), "{m}");
        assert!(m.contains("2023-11-14 22:13:20 UTC (1 min ago)"), "{m}");
    }
}
