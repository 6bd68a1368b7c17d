//! Acting on traffic alerts: evaluation after each report and on a timer, and the
//! optional webhook (the site's `alert_webhook` URL) each transition is POSTed to as JSON.
//!
//! Webhook calls run in their own task with a bounded timeout; a failure is logged and
//! never delays or fails report ingestion. The store does the evaluation itself
//! ([`Store::evaluate_alert`]).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Method, Request, StatusCode};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tracing::Instrument as _;

use crate::metrics::Metrics;
use crate::store::{AlertEvent, Store};

/// Why a webhook call failed.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("webhook request: {0}")]
    Request(String),
    #[error("webhook did not answer within {0:?}")]
    Timeout(Duration),
    #[error("webhook answered {0}")]
    Status(StatusCode),
}

/// Posts alert transitions to the webhook. Cheap to clone.
#[derive(Clone)]
pub struct Notifier {
    http: Client<hyper_rustls::HttpsConnector<cmg_core::proxy::ProxyConnector>, Full<Bytes>>,
    timeout: Duration,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Notifier {
    /// A notifier trusting the public web PKI roots for `https://` webhooks, going
    /// through `proxy` (HTTP CONNECT) when one applies to the webhook's host.
    pub fn new(
        timeout: Duration,
        metrics: Arc<Metrics>,
        proxy: Option<Arc<cmg_core::proxy::Proxy>>,
    ) -> Result<Self, WebhookError> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| WebhookError::Request(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(cmg_core::proxy::ProxyConnector::new(proxy, timeout));
        Ok(Self {
            http: Client::builder(TokioExecutor::new()).build(connector),
            timeout,
            metrics,
        })
    }

    /// POSTs one event to `url`.
    pub async fn send(&self, url: &str, event: &AlertEvent) -> Result<(), WebhookError> {
        let body = serde_json::to_vec(event).map_err(|e| WebhookError::Request(e.to_string()))?;
        let req = Request::builder()
            .method(Method::POST)
            .uri(url)
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::USER_AGENT, "cmg-site")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| WebhookError::Request(e.to_string()))?;
        let resp = tokio::time::timeout(self.timeout, self.http.request(req))
            .await
            .map_err(|_| WebhookError::Timeout(self.timeout))?
            .map_err(|e| WebhookError::Request(e.to_string()))?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(WebhookError::Status(resp.status()))
        }
    }

    /// Sends `events` to the site's webhook, if one is set, in a task of its own.
    pub fn notify(&self, store: &Store, events: Vec<AlertEvent>) {
        if events.is_empty() {
            return;
        }
        let this = self.clone();
        let store = store.clone();
        tokio::spawn(
            async move {
                let url = match store.alert_webhook().await {
                    Ok(Some(u)) => u,
                    Ok(None) => return,
                    Err(e) => {
                        tracing::warn!(error = %e, "alert webhook: reading the URL failed");
                        return;
                    }
                };
                for e in &events {
                    match this.send(&url, e).await {
                        Ok(()) => {
                            this.metrics.webhook_delivered.inc();
                            tracing::info!(gateway = %e.gateway, event = %e.event,
                            level = e.level.as_str(), "alert webhook delivered")
                        }
                        Err(err) => {
                            this.metrics.webhook_failed.inc();
                            tracing::warn!(gateway = %e.gateway, event = %e.event,
                                error = %err, "alert webhook failed")
                        }
                    }
                }
            }
            .instrument(tracing::info_span!("alert_webhook")),
        );
    }

    /// Evaluates one gateway's alert (or every gateway's) now and notifies; errors are
    /// logged, not returned (callers are report ingestion and the timer).
    pub async fn evaluate(&self, store: &Store, gateway: Option<&str>) {
        let now = crate::now();
        let r = match gateway {
            Some(g) => store.evaluate_alert(g, now).await,
            None => store.evaluate_all_alerts(now).await,
        };
        match r {
            Ok(events) => {
                for e in &events {
                    self.metrics.alert(&e.event, e.level.as_str());
                }
                self.notify(store, events)
            }
            Err(e) => tracing::warn!(gateway = ?gateway, error = %e, "alert evaluation failed"),
        }
    }
}

/// Parses a period like `90s`, `15m`, `24h`, `14d`.
pub fn parse_period(s: &str) -> Option<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().ok()?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    n.checked_mul(mult).map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods() {
        assert_eq!(parse_period("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_period("14d"), Some(Duration::from_secs(14 * 86_400)));
        assert_eq!(parse_period("2h"), Some(Duration::from_secs(7200)));
        for bad in ["", "10", "h", "5w", "-1h", "99999999999999999999d"] {
            assert_eq!(parse_period(bad), None, "{bad}");
        }
    }
}
