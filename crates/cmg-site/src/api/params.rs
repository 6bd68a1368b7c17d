//! The path and query parameters of the API, each a type that both the handler extracts
//! and the API document describes (`IntoParams`), with the shapes as patterns and bounds.
//! The extractors [`ApiPath`] and [`ApiQuery`] check every value against the same
//! shape the document states, so a request the document allows is never refused for its
//! form, and one it forbids is refused with `400` in the API's error shape. Lookups of a
//! well-formed name that is not on record are the store's `404`.
//!
//! It does not check request bodies (the model types carry their own schema attributes;
//! the store validates their content).

use axum::extract::{FromRequestParts, Path, Query};
use http::request::Parts;
use http::StatusCode;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use utoipa::IntoParams;

use super::error::ApiError;
use crate::names::*;

/// A period back from now, at most 90 days: `90s`, `15m`, `24h`, `14d`.
pub const PERIOD: &str =
    "^0*([0-9]{1,6}|[1-6][0-9]{6}|7[0-6][0-9]{5}|77[0-6][0-9]{4}|777[0-5][0-9]{3}|7776000)s$\
|^0*([0-9]{1,5}|1[01][0-9]{4}|12[0-8][0-9]{3}|129[0-5][0-9]{2}|129600)m$\
|^0*([0-9]{1,3}|1[0-9]{3}|20[0-9]{2}|21[0-5][0-9]|2160)h$\
|^0*([0-9]|[1-8][0-9]|90)d$";
/// Longest period [`PERIOD`] allows, seconds.
pub const MAX_PERIOD_SECS: u64 = 90 * 86_400;
/// Most entries a list query returns.
pub const MAX_LIMIT: u32 = 1000;

/// A period of [`PERIOD`]'s shape, in seconds; none when it is not one.
pub fn period_secs(s: &str) -> Option<u64> {
    // Bytes, not `str` slicing: the last byte of a non-ASCII text is no char boundary.
    let (unit, digits) = s.as_bytes().split_last()?;
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let unit = match unit {
        b's' => 1,
        b'm' => 60,
        b'h' => 3600,
        b'd' => 86_400,
        _ => return None,
    };
    let first = digits
        .iter()
        .position(|&b| b != b'0')
        .unwrap_or(digits.len());
    let digits = std::str::from_utf8(&digits[first..]).ok()?;
    let n: u64 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    n.checked_mul(unit).filter(|&s| s <= MAX_PERIOD_SECS)
}

fn bad(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code, message)
}

fn check_limit(limit: Option<u32>) -> Result<(), ApiError> {
    match limit {
        Some(n) if n == 0 || n > MAX_LIMIT => {
            Err(bad("bad_limit", format!("limit is 1 to {MAX_LIMIT}")))
        }
        _ => Ok(()),
    }
}

/// A parameter set the extractors check after deserialising it.
pub trait Checked {
    fn check(&self) -> Result<(), ApiError>;
}

/// Path parameters, checked: a rejection or a malformed value is the API's `400`.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Checked + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(v) = Path::<T>::from_request_parts(parts, state).await?;
        v.check()?;
        Ok(Self(v))
    }
}

/// Query parameters, checked: unknown parameters, a rejection or a value out of bounds
/// is the API's `400`.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Checked + Send> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Query(v) = Query::<T>::from_request_parts(parts, state).await?;
        v.check()?;
        Ok(Self(v))
    }
}

/// `{name}` of a gateway.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct GatewayPath {
    /// The gateway's name.
    #[param(pattern = "^[A-Za-z0-9_-]{1,63}$")]
    pub name: String,
}

impl Checked for GatewayPath {
    fn check(&self) -> Result<(), ApiError> {
        if is_gateway_name(&self.name) {
            Ok(())
        } else {
            Err(bad(
                "bad_name",
                "a gateway name is 1 to 63 letters, digits, '-' or '_'",
            ))
        }
    }
}

/// `{id}` of a role.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct RolePath {
    /// The role's ID, a decimal string.
    #[param(pattern = "^[0-9]{1,19}$")]
    pub id: String,
}

impl Checked for RolePath {
    fn check(&self) -> Result<(), ApiError> {
        if is_role_id(&self.id) {
            Ok(())
        } else {
            Err(bad("bad_role_id", "a role ID is 1 to 19 decimal digits"))
        }
    }
}

/// `{id}` of a connection point.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ConnectionPointPath {
    /// The connection point's ID.
    #[param(pattern = "^[A-Za-z0-9._-]{1,64}$")]
    pub id: String,
}

impl Checked for ConnectionPointPath {
    fn check(&self) -> Result<(), ApiError> {
        if is_connection_point_id(&self.id) {
            Ok(())
        } else {
            Err(bad(
                "bad_id",
                "a connection point ID is 1 to 64 letters, digits, '-', '_' or '.'",
            ))
        }
    }
}

/// `{name}` of a boundary group.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct BoundaryGroupPath {
    /// The boundary group's name.
    #[param(pattern = "^[A-Za-z0-9][A-Za-z0-9 ._-]{0,127}$")]
    pub name: String,
}

impl Checked for BoundaryGroupPath {
    fn check(&self) -> Result<(), ApiError> {
        if is_boundary_group_name(&self.name) {
            Ok(())
        } else {
            Err(bad(
                "bad_name",
                "a boundary group name is 1 to 128 letters, digits, spaces, '.', '-' or '_', \
                 starting with a letter or digit",
            ))
        }
    }
}

/// `{id}` of a bulk token: its tracking ID.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TokenPath {
    /// The token's tracking ID.
    #[param(pattern = "^[A-Za-z0-9._-]{1,128}$")]
    pub id: String,
}

impl Checked for TokenPath {
    fn check(&self) -> Result<(), ApiError> {
        if is_tracking_id(&self.id) {
            Ok(())
        } else {
            Err(bad(
                "bad_id",
                "a tracking ID is 1 to 128 letters, digits, '-', '_' or '.'",
            ))
        }
    }
}

/// `DELETE /api/v1/gateways/{name}`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeleteQuery {
    /// Delete even with connection points on record (they are removed too).
    #[serde(default)]
    pub force: bool,
}

impl Checked for DeleteQuery {
    fn check(&self) -> Result<(), ApiError> {
        Ok(())
    }
}

/// `GET /api/v1/audit`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Most entries to return (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// Only entries with an ID below this one (the next page).
    pub before: Option<i64>,
}

/// `GET /api/v1/clients`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ClientsQuery {
    /// Most clients to return (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

impl Checked for ClientsQuery {
    fn check(&self) -> Result<(), ApiError> {
        check_limit(self.limit)
    }
}

impl Checked for AuditQuery {
    fn check(&self) -> Result<(), ApiError> {
        check_limit(self.limit)
    }
}

/// `GET /api/v1/traffic`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TrafficParams {
    /// Only this gateway's traffic.
    #[param(pattern = "^[A-Za-z0-9_-]{1,63}$")]
    pub gateway: Option<String>,
    /// A period back from now: `90m`, `24h`, `14d` (default 24h, at most 90d).
    #[param(
        pattern = "^0*([0-9]{1,6}|[1-6][0-9]{6}|7[0-6][0-9]{5}|77[0-6][0-9]{4}|777[0-5][0-9]{3}|7776000)s$|^0*([0-9]{1,5}|1[01][0-9]{4}|12[0-8][0-9]{3}|129[0-5][0-9]{2}|129600)m$|^0*([0-9]{1,3}|1[0-9]{3}|20[0-9]{2}|21[0-5][0-9]|2160)h$|^0*([0-9]|[1-8][0-9]|90)d$"
    )]
    pub since: Option<String>,
}

impl Checked for TrafficParams {
    fn check(&self) -> Result<(), ApiError> {
        if self.gateway.as_deref().is_some_and(|g| !is_gateway_name(g)) {
            return Err(bad(
                "bad_name",
                "a gateway name is 1 to 63 letters, digits, '-' or '_'",
            ));
        }
        if self
            .since
            .as_deref()
            .is_some_and(|p| period_secs(p).is_none())
        {
            return Err(bad(
                "bad_period",
                "since is a period like 90m, 24h or 14d, at most 90d",
            ));
        }
        Ok(())
    }
}

impl TrafficParams {
    /// The period, seconds (default a day).
    pub fn period_secs(&self) -> u64 {
        self.since
            .as_deref()
            .and_then(period_secs)
            .unwrap_or(86_400)
    }
}

/// A step of a traffic series: whole hours, 1 to 720 (`6h`), or days, 1 to 30 (`1d`).
pub const STEP: &str =
    "^0*([1-9]|[1-9][0-9]|[1-6][0-9]{2}|7[01][0-9]|720)h$|^0*([1-9]|[12][0-9]|30)d$";

/// A step of [`STEP`]'s shape, in seconds; none when it is not one.
pub fn step_secs(s: &str) -> Option<i64> {
    let (unit, digits) = s.as_bytes().split_last()?;
    let (unit, max) = match unit {
        b'h' => (3600, 720),
        b'd' => (86_400, 30),
        _ => return None,
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let first = digits.iter().position(|&b| b != b'0')?;
    let digits = std::str::from_utf8(&digits[first..]).ok()?;
    if digits.len() > 3 {
        return None;
    }
    let n: i64 = digits.parse().ok()?;
    (1..=max).contains(&n).then_some(n * unit)
}

/// `GET /api/v1/traffic/series`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TrafficSeriesParams {
    /// The gateway.
    #[param(pattern = "^[A-Za-z0-9_-]{1,63}$")]
    pub gateway: String,
    /// Only this endpoint (a prefix as `GET /api/v1/traffic` lists them); all when absent.
    #[param(min_length = 1, max_length = 1024)]
    pub endpoint: Option<String>,
    /// A period back from now: `90m`, `24h`, `14d` (default 24h, at most 90d).
    #[param(
        pattern = "^0*([0-9]{1,6}|[1-6][0-9]{6}|7[0-6][0-9]{5}|77[0-6][0-9]{4}|777[0-5][0-9]{3}|7776000)s$|^0*([0-9]{1,5}|1[01][0-9]{4}|12[0-8][0-9]{3}|129[0-5][0-9]{2}|129600)m$|^0*([0-9]{1,3}|1[0-9]{3}|20[0-9]{2}|21[0-5][0-9]|2160)h$|^0*([0-9]|[1-8][0-9]|90)d$"
    )]
    pub since: Option<String>,
    /// The step: whole hours `1h` to `720h` or days `1d` to `30d` (default 1h). Steps
    /// start at multiples of it since the Unix epoch (UTC).
    #[param(
        pattern = "^0*([1-9]|[1-9][0-9]|[1-6][0-9]{2}|7[01][0-9]|720)h$|^0*([1-9]|[12][0-9]|30)d$"
    )]
    pub step: Option<String>,
}

impl Checked for TrafficSeriesParams {
    fn check(&self) -> Result<(), ApiError> {
        TrafficParams {
            gateway: Some(self.gateway.clone()),
            since: self.since.clone(),
        }
        .check()?;
        if self
            .endpoint
            .as_deref()
            .is_some_and(|e| e.is_empty() || e.chars().count() > 1024)
        {
            return Err(bad("bad_endpoint", "an endpoint is 1 to 1024 characters"));
        }
        if self.step.as_deref().is_some_and(|p| step_secs(p).is_none()) {
            return Err(bad(
                "bad_step",
                "step is whole hours (1h to 720h) or days (1d to 30d)",
            ));
        }
        Ok(())
    }
}

impl TrafficSeriesParams {
    /// The period, seconds (default a day).
    pub fn period_secs(&self) -> u64 {
        self.since
            .as_deref()
            .and_then(period_secs)
            .unwrap_or(86_400)
    }
    /// The step, seconds (default an hour).
    pub fn step_secs(&self) -> i64 {
        self.step.as_deref().and_then(step_secs).unwrap_or(3600)
    }
}

/// `GET /api/v1/alerts`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AlertParams {
    /// The whole history, not only the active alerts.
    #[serde(default)]
    pub all: bool,
    /// Most alerts to return (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

impl Checked for AlertParams {
    fn check(&self) -> Result<(), ApiError> {
        check_limit(self.limit)
    }
}

/// `GET /api/v1/publish/gateways/{name}/bundle`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BundleQuery {
    /// The version the connection point holds: the answer waits for a newer one.
    #[serde(default)]
    pub after: u64,
    /// Seconds to wait at most (capped by the server's long-poll limit).
    pub wait: Option<u64>,
}

impl Checked for BundleQuery {
    fn check(&self) -> Result<(), ApiError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
