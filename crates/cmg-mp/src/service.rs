//! One request: route on the path suffix, run the handler (which reads the body to its
//! end), journal what arrived, log one line.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::request::Parts;
use http::{header, Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use tokio_util::task::TaskTracker;

use crate::bits::{self, Sessions};
use crate::body::{read_body, BodyFailure, Received, RespBody, Sink, Spool};
use crate::incoming::{self, Target};
use crate::journal::{now_rfc3339, Journal, JournalEntry};
use crate::metrics::Metrics;
use crate::mplist::SiteList;
use crate::policy::Policies;
use crate::{respond, sms};
use cmg_proto::device::policy::ASSIGNMENTS_QUERY;

/// Everything a request handler shares; owned by the bound server, never global.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) incoming_dir: PathBuf,
    pub(crate) tmp_dir: PathBuf,
    pub(crate) journal: Journal,
    /// The pre-built `.sms_pol` pattern.
    pub(crate) pattern: Bytes,
    pub(crate) sessions: Sessions,
    /// DER of the HTTPS leaf certificate, for `MPCERT`.
    pub(crate) cert_der: Option<Vec<u8>>,
    pub(crate) metrics: Metrics,
    /// The site's management point list (`[site]`), when known.
    pub(crate) site_list: Arc<SiteList>,
    /// The policy directory (`[policy]`).
    pub(crate) policies: Option<Policies>,
}

/// The request path suffixes served (matched lowercase).
const SYSTEM_REQUEST: &str = "/ccm_system/request";
/// The token clients' endpoint (`ccm_system_tokenauth`), served like `CCM_System`.
const TOKEN_SYSTEM_REQUEST: &str = "/ccm_system_tokenauth/request";
const SMS_AUT: &str = "/sms_mp/.sms_aut";
const SMS_POL: &str = "/sms_mp/.sms_pol";

/// Serves one request. The handler runs in its own tracked task so that, even if the
/// connection drops the response future (peer gone), the body is still read to its
/// failure and the request journaled: every request gets exactly one entry.
pub(crate) async fn serve(
    state: Arc<State>,
    tasks: TaskTracker,
    req: Request<Incoming>,
) -> Result<Response<RespBody>, std::convert::Infallible> {
    let work = tasks.spawn(async move {
        let started = Instant::now();
        let (parts, body) = req.into_parts();
        let (resp, received) = route(&state, &parts, body).await;
        record(&state, &parts, &resp, &received, started);
        resp
    });
    Ok(work.await.unwrap_or_else(|e| {
        tracing::error!(target: "cmg_mp", error = %e, "request handler failed");
        respond::internal()
    }))
}

async fn route(state: &State, parts: &Parts, body: Incoming) -> (Response<RespBody>, Received) {
    let path = parts.uri.path();
    let lower = path.to_ascii_lowercase();
    let method = &parts.method;
    if lower.ends_with(SYSTEM_REQUEST) || lower.ends_with(TOKEN_SYSTEM_REQUEST) {
        if method == Method::POST || method.as_str() == "CCM_POST" {
            return echo(state, parts, body).await;
        }
        return drained(body, respond::method_not_allowed("CCM_POST, POST")).await;
    }
    if lower.ends_with(SMS_AUT) {
        if method != Method::GET {
            return drained(body, respond::method_not_allowed("GET")).await;
        }
        let query = parts.uri.query().unwrap_or_default();
        let what = query.split('&').next().unwrap_or_default();
        let resp = if what.eq_ignore_ascii_case("MPLIST2") || what.eq_ignore_ascii_case("MPLIST") {
            // MPLIST2 through a gateway is the internet list; anything else the intranet one.
            let internet = what.eq_ignore_ascii_case("MPLIST2") && lower.starts_with("/ccm_proxy_");
            sms::mp_list(&host(parts), state.site_list.get().as_deref(), internet)
        } else if what.eq_ignore_ascii_case("MPCERT") {
            sms::mp_cert(state.cert_der.as_deref())
        } else {
            respond::not_found()
        };
        return drained(body, resp).await;
    }
    if lower.ends_with(SMS_POL) {
        if method != Method::GET {
            return drained(body, respond::method_not_allowed("GET")).await;
        }
        let query = parts.uri.query().unwrap_or_default();
        if query.is_empty() || query.to_ascii_lowercase().starts_with("size=") {
            return drained(body, sms::policy(&state.pattern, parts.uri.query())).await;
        }
        return drained(body, policy_answer(state, query).await).await;
    }
    if let Some(target) = incoming::target(path) {
        let name = match target {
            Target::Name(name) => name,
            Target::BadName => {
                let resp = respond::text(StatusCode::BAD_REQUEST, "bad upload name\n");
                return drained(body, resp).await;
            }
        };
        return match method.as_str() {
            "PUT" | "POST" => {
                incoming::store(&state.incoming_dir, &state.tmp_dir, &name, body).await
            }
            "GET" => {
                let received = read_body(body, &mut Sink::Discard).await;
                (incoming::fetch(&state.incoming_dir, &name).await, received)
            }
            "BITS_POST" => {
                let dirs = bits::Dirs {
                    incoming: &state.incoming_dir,
                    tmp: &state.tmp_dir,
                };
                bits::handle(&state.sessions, dirs, parts, &name, body).await
            }
            _ => {
                drained(
                    body,
                    respond::method_not_allowed("GET, PUT, POST, BITS_POST"),
                )
                .await
            }
        };
    }
    drained(body, respond::not_found()).await
}

/// `.sms_pol?assignments` (the listing) or `.sms_pol?<id>` (a body).
async fn policy_answer(state: &State, query: &str) -> Response<RespBody> {
    let Some(policies) = &state.policies else {
        return respond::text(StatusCode::NOT_FOUND, "no policy directory configured\n");
    };
    if query == ASSIGNMENTS_QUERY {
        return match policies.list().await {
            Ok(list) => match serde_json::to_vec(&list) {
                Ok(json) => respond::builder(StatusCode::OK)
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(crate::body::full(json))
                    .unwrap_or_else(|_| respond::internal()),
                Err(_) => respond::internal(),
            },
            Err(e) => {
                tracing::warn!(target: "cmg_mp", error = %e, "listing policy failed");
                respond::internal()
            }
        };
    }
    match policies.body(query).await {
        Ok(Some(b)) => respond::builder(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/octet-stream")
            .header(header::CONTENT_LENGTH, b.len())
            .body(crate::body::full(b))
            .unwrap_or_else(|_| respond::internal()),
        Ok(None) => respond::not_found(),
        Err(e) => {
            tracing::warn!(target: "cmg_mp", error = %e, "reading a policy body failed");
            respond::internal()
        }
    }
}

/// `CCM_POST .../CCM_System/request`: echoes the body byte for byte, with its hash.
async fn echo(state: &State, parts: &Parts, body: Incoming) -> (Response<RespBody>, Received) {
    let mut sink = Sink::Spool(Spool::new(&state.tmp_dir));
    let received = read_body(body, &mut sink).await;
    match &received.failure {
        Some(BodyFailure::Stream(_)) => return (respond::incomplete_body(), received),
        Some(BodyFailure::Store(_)) => return (respond::store_failed(), received),
        None => {}
    }
    let Sink::Spool(spool) = sink else {
        return (respond::internal(), received);
    };
    let echoed = match spool.into_body().await {
        Ok(echoed) => echoed,
        Err(e) => {
            tracing::warn!(target: "cmg_mp", error = %e, "cannot rewind echo spool");
            return (respond::store_failed(), received);
        }
    };
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .cloned()
        .unwrap_or(header::HeaderValue::from_static("application/octet-stream"));
    let mut b = respond::builder(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONTENT_LENGTH, received.bytes)
        .header("x-mp-body-sha256", &received.sha256)
        .header("x-mp-body-bytes", received.bytes);
    if let Some(identity) = parts.headers.get(cmg_proto::headers::CLIENT_IDENTITY) {
        b = b.header("x-mp-client-identity", identity);
    }
    let resp = b.body(echoed).unwrap_or_else(|_| respond::internal());
    (resp, received)
}

/// Reads and discards the body, then answers `resp`.
async fn drained(body: Incoming, resp: Response<RespBody>) -> (Response<RespBody>, Received) {
    let received = read_body(body, &mut Sink::Discard).await;
    if !received.complete() && resp.status().is_success() {
        return (respond::incomplete_body(), received);
    }
    (resp, received)
}

/// The host the client asked for, without the port (`Host` or `:authority`).
fn host(parts: &Parts) -> String {
    let authority = parts
        .uri
        .authority()
        .map(|a| a.host().to_owned())
        .or_else(|| {
            let h = parts.headers.get(header::HOST)?.to_str().ok()?;
            let h = h.parse::<http::uri::Authority>().ok()?;
            Some(h.host().to_owned())
        });
    authority.unwrap_or_else(|| "localhost".to_owned())
}

fn record(
    state: &State,
    parts: &Parts,
    resp: &Response<RespBody>,
    received: &Received,
    started: Instant,
) {
    let entry = JournalEntry {
        ts: now_rfc3339(),
        method: parts.method.as_str().to_owned(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body_bytes: received.bytes,
        body_sha256: received.sha256.clone(),
        complete: received.complete(),
        status: resp.status().as_u16(),
    };
    state.journal.append(&entry);
    state.metrics.request(entry.status, received.bytes);
    let client = parts
        .headers
        .get(cmg_proto::headers::CLIENT_IDENTITY)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    match &received.failure {
        None => tracing::info!(
            target: "cmg_mp",
            method = %parts.method,
            path = %parts.uri.path(),
            client,
            status = entry.status,
            body_bytes = received.bytes,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "request"
        ),
        Some(failure) => tracing::info!(
            target: "cmg_mp",
            method = %parts.method,
            path = %parts.uri.path(),
            client,
            status = entry.status,
            body_bytes = received.bytes,
            elapsed_ms = started.elapsed().as_millis() as u64,
            %failure,
            "request body incomplete"
        ),
    }
}
