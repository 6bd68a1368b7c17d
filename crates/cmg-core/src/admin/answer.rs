//! One request's answer: the routing table, method checks and content types. No I/O
//! beyond what the role's [`AdminRoutes`] does, so it is tested in memory.

use bytes::Bytes;
use http::header::{ALLOW, CONTENT_TYPE};
use http::{HeaderValue, Method, Response, StatusCode};
use http_body_util::Full;

use super::common::CommonMetrics;
use super::{AdminRoutes, Readiness, OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE};

/// The role's routes and the families every scrape ends with.
#[derive(Debug)]
pub(crate) struct Answerer<R> {
    pub routes: std::sync::Arc<R>,
    pub common: CommonMetrics,
}

impl<R: AdminRoutes> Answerer<R> {
    pub(crate) fn new(routes: std::sync::Arc<R>) -> Self {
        Self {
            routes,
            common: CommonMetrics::new(R::ROLE),
        }
    }

    /// The answer to `method path`. `HEAD` is answered as `GET` (hyper sends no body).
    pub(crate) async fn answer(&self, method: &Method, path: &str) -> Response<Full<Bytes>> {
        let builtin = matches!(path, "/metrics" | "/ready" | "/live");
        if *method != Method::GET && *method != Method::HEAD {
            return if builtin || self.routes.route(path).is_some() {
                let mut resp = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
                resp.headers_mut()
                    .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
                resp
            } else {
                not_found()
            };
        }
        match path {
            "/metrics" => {
                let mut out = String::new();
                self.routes.encode_metrics(&mut out).await;
                self.common.encode(&mut out);
                out.push_str("# EOF\n");
                let mut resp = text(StatusCode::OK, out);
                resp.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static(OPENMETRICS_CONTENT_TYPE),
                );
                resp
            }
            "/ready" => match self.routes.ready().await {
                Readiness::Ready(why) => text(StatusCode::OK, format!("ready: {}\n", line(&why))),
                Readiness::NotReady(why) => text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("not ready: {}\n", line(&why)),
                ),
            },
            "/live" => text(StatusCode::OK, "live\n"),
            _ => match self.routes.route(path) {
                Some((status, body)) => text(status, body),
                None => not_found(),
            },
        }
    }
}

/// `reason` on one line: control characters (line breaks) become spaces.
fn line(reason: &str) -> String {
    reason
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn not_found() -> Response<Full<Bytes>> {
    text(StatusCode::NOT_FOUND, "not found\n")
}

fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(TEXT_CONTENT_TYPE));
    resp
}
