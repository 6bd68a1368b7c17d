//! The shapes of a gateway's traffic over time: which buckets to sum into steps, and one
//! step's sums. The totals per endpoint are `EndpointTrafficView` (in `model`).

use serde::{Deserialize, Serialize};

/// Which traffic to sum per step of time (`Store::traffic_series`).
#[derive(Debug, Clone)]
pub struct TrafficSeriesQuery {
    pub gateway: String,
    /// Only this endpoint; `None` sums every endpoint of the gateway.
    pub endpoint: Option<String>,
    /// Unix seconds; hour buckets from the hour holding it are summed (as `TrafficQuery`).
    pub since: i64,
    /// The step, seconds: a positive multiple of an hour. Steps start at multiples of it
    /// since the Unix epoch (UTC), so a day's step starts at midnight UTC.
    pub step: i64,
}

/// The traffic of one step: every instance's (and, unless asked for one, every
/// endpoint's) hour buckets from `start` to `start + step`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TrafficPoint {
    /// Unix seconds, a multiple of the step.
    pub start: i64,
    pub requests: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Responses by class: 1xx, 2xx, 3xx, 4xx, 5xx.
    #[schema(min_items = 5, max_items = 5)]
    pub status_classes: [u64; 5],
    /// Sum of the requests' latencies, microseconds (the mean is this over `requests`).
    pub latency_us_sum: u64,
}

impl TrafficPoint {
    /// Mean latency in milliseconds, 0 without requests.
    pub fn mean_latency_ms(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.latency_us_sum as f64 / self.requests as f64 / 1000.0
        }
    }
}
