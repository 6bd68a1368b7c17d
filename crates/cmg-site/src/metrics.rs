//! Prometheus metrics of the site and its admin listener (plain HTTP; bind it to loopback
//! or a private address): `GET /metrics` and `GET /ready` (200 while the database
//! answers, 503 otherwise).
//!
//! Counters are recorded where things happen (reports, alerts, webhook calls); the
//! per-gateway status gauge is computed from the database at each scrape.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use crate::model::HealthState;
use crate::Store;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabel {
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AlertLabels {
    event: String,
    level: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    gateway: String,
    status: String,
}

/// The site's series.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub reports_stored: Counter,
    reports_refused: Family<CodeLabel, Counter>,
    pub snapshots_counted: Counter,
    pub snapshots_ignored: Counter,
    pub egress_bytes: Counter,
    alerts: Family<AlertLabels, Counter>,
    pub webhook_delivered: Counter,
    pub webhook_failed: Counter,
    gateway_status: Family<StatusLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("cmg_site");
        let m = Self {
            reports_stored: Counter::default(),
            reports_refused: Family::default(),
            snapshots_counted: Counter::default(),
            snapshots_ignored: Counter::default(),
            egress_bytes: Counter::default(),
            alerts: Family::default(),
            webhook_delivered: Counter::default(),
            webhook_failed: Counter::default(),
            gateway_status: Family::default(),
            registry: Registry::default(),
        };
        registry.register(
            "reports_stored",
            "Connection point reports stored",
            m.reports_stored.clone(),
        );
        registry.register(
            "reports_refused",
            "Connection point reports refused, by error code",
            m.reports_refused.clone(),
        );
        registry.register(
            "snapshots_counted",
            "Traffic snapshots newer than their mark (counted)",
            m.snapshots_counted.clone(),
        );
        registry.register(
            "snapshots_ignored",
            "Traffic snapshots at or below their mark (already counted)",
            m.snapshots_ignored.clone(),
        );
        registry.register(
            "egress_bytes",
            "Egress (response bytes to clients) counted from reports",
            m.egress_bytes.clone(),
        );
        registry.register(
            "alert_transitions",
            "Traffic alerts raised and cleared",
            m.alerts.clone(),
        );
        registry.register(
            "webhook_delivered",
            "Alert webhook calls answered 2xx",
            m.webhook_delivered.clone(),
        );
        registry.register(
            "webhook_failed",
            "Alert webhook calls failed or timed out",
            m.webhook_failed.clone(),
        );
        registry.register(
            "gateway_status",
            "1 for each gateway's current status",
            m.gateway_status.clone(),
        );
        Self { registry, ..m }
    }

    pub fn report_refused(&self, code: &str) {
        self.reports_refused
            .get_or_create(&CodeLabel { code: code.into() })
            .inc();
    }

    pub fn alert(&self, event: &str, level: &str) {
        self.alerts
            .get_or_create(&AlertLabels {
                event: event.into(),
                level: level.into(),
            })
            .inc();
    }

    /// The text exposition, with the status gauge refreshed from `store`.
    pub async fn encode(&self, store: &Store, report_interval: Duration) -> String {
        self.gateway_status.clear();
        match store.gateway_statuses(report_interval, crate::now()).await {
            Ok(list) => {
                for g in list {
                    let status = match g.status {
                        HealthState::Ready => "Ready",
                        HealthState::Warning => "Warning",
                        HealthState::Error => "Error",
                        HealthState::Disconnected => "Disconnected",
                        HealthState::Stopped => "Stopped",
                    };
                    self.gateway_status
                        .get_or_create(&StatusLabels {
                            gateway: g.gateway,
                            status: status.into(),
                        })
                        .set(1);
                }
            }
            Err(e) => tracing::warn!(error = %e, "metrics: reading gateway statuses failed"),
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

async fn answer(
    store: &Store,
    metrics: &Metrics,
    report_interval: Duration,
    path: &str,
) -> Response<Full<Bytes>> {
    let (status, body) = match path {
        "/metrics" => (StatusCode::OK, metrics.encode(store, report_interval).await),
        "/ready" => match store.site().await {
            Ok(site) => (StatusCode::OK, format!("ready: site {}\n", site.code)),
            Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {e}\n")),
        },
        _ => (StatusCode::NOT_FOUND, "not found\n".into()),
    };
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    resp
}

/// Serves the admin listener until `stop` is cancelled.
pub async fn serve(
    store: Store,
    metrics: Arc<Metrics>,
    report_interval: Duration,
    listener: TcpListener,
    stop: CancellationToken,
) {
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(v) => v,
                Err(e) => {
                    tracing::debug!(error = %e, "admin accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.cancelled() => return,
        };
        let store = store.clone();
        let metrics = metrics.clone();
        tokio::spawn(
            async move {
                let svc = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let store = store.clone();
                    let metrics = metrics.clone();
                    async move {
                        Ok::<_, Infallible>(
                            answer(&store, &metrics, report_interval, req.uri().path()).await,
                        )
                    }
                });
                let conn = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(5))
                    .serve_connection(TokioIo::new(stream), svc);
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, "admin connection error");
                }
            }
            .instrument(tracing::info_span!("admin_conn", %peer)),
        );
    }
}
