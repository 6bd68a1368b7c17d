//! The connection analyzer page (`/ui/gateways/{name}/analyze`): a form (which instances,
//! a client certificate and its key in PEM, or a token) that runs `cmg_analyze` on the
//! site against the real deployment, with the view `crate::analyze::from_store` builds,
//! and shows one row per step (✓ / ⚠ / ✗ as text and colour, the detail, the remedy).
//!
//! The certificate, key and token live only for the run: they are not stored, not
//! logged, not echoed back into the form, and the form's copies are zeroized after the
//! run (copies the analyzer makes inside its run, and the request body buffered by the
//! CSRF check, are dropped without being wiped). The run is audited as
//! `gateway.analyze` with what was checked (instances, credential kind, counts), never
//! the credential.

use axum::extract::{Path, State};
use axum::response::Response;
use axum::Extension;
use cmg_analyze::{Credential, Report, Status, Targets};
use http::StatusCode;
use maud::{html, Markup};
use serde::Deserialize;
use zeroize::Zeroize as _;

use super::{ctx, respond};
use crate::api::error::ApiError;
use crate::names::is_gateway_name;
use crate::store::StoreError;
use crate::ui::form::UiForm;
use crate::ui::layout::{self, csrf_field, Nav, Notice};
use crate::ui::session::Session;
use crate::ui::UiState;

/// What the form last asked, shown again (never the key material or token).
#[derive(Debug, Default)]
struct Asked {
    instances: String,
    kind: &'static str,
}

async fn render(
    ui: &UiState,
    s: &Session,
    name: &str,
    asked: &Asked,
    notice: Option<Notice>,
    report: Option<&Report>,
) -> Response {
    let c = ctx(ui, s);
    if !is_gateway_name(name) {
        return layout::error_page(StoreError::not_found("gateway", name).into());
    }
    let g = match ui.app.store.gateway(name).await {
        Ok(g) => g,
        Err(e) => return layout::error_page(e.into()),
    };
    let body = html! {
        h1 { "Connection analyzer: " a href={"/ui/gateways/" (g.name)} { (g.name) } }
        p.muted { "Checks the path a client takes to " code { (g.service_name) } ", from this site: name \
            resolution and TCP to each instance, the server certificate, the client credential with the \
            gateway's own checks (chain, EKU, time, revocation), ServiceMetadata on both prefixes, a request \
            to every role that allows gateway traffic, and every connection point's channels." }
        @if let Some(r) = report { (rows(r)) }
        form.card #analyze method="post" action={"/ui/gateways/" (g.name) "/analyze"} {
            (csrf_field(c.session))
            label { "Instances (host:port, one per line; empty: every address of the service name on port 443)"
                textarea name="instances" rows="2" { (asked.instances) } }
            fieldset {
                legend { "A client certificate and its key (PEM)" }
                label { "Certificate file " input type="file" data-fill="cert_pem" accept=".pem,.crt,.cer"; }
                label { "Key file " input type="file" data-fill="key_pem" accept=".pem,.key"; }
                label { "Certificate (PEM, leaf first, then its intermediates)"
                    textarea #cert_pem name="cert_pem" rows="3" spellcheck="false" {} }
                label { "Private key (PEM; used for this run only, never stored)"
                    textarea #key_pem name="key_pem" rows="3" spellcheck="false" autocomplete="off" {} }
            }
            fieldset {
                legend { "Or a token" }
                label { "Bearer token (site-issued or from an OIDC issuer)"
                    textarea name="token" rows="2" spellcheck="false" autocomplete="off" {} }
            }
            @if !asked.kind.is_empty() { p.muted { "Last run with a " (asked.kind) "." } }
            button type="submit" { "Run the analyzer" }
        }
    };
    respond(
        notice.as_ref(),
        layout::page(
            c,
            Nav::Gateways,
            "Connection analyzer",
            notice.as_ref(),
            body,
        ),
    )
}

/// The report: a summary line and one row per step.
fn rows(r: &Report) -> Markup {
    let count = |st| r.steps.iter().filter(|s| s.status == st).count();
    html! {
        p #analysis-summary class={"summary " (if r.ok { "st-ready" } else { "st-error" })} {
            strong { @if r.ok { "✓ No step failed" } @else { "✗ A step failed" } }
            ": " (count(Status::Pass)) " passed, " (count(Status::Warn)) " warnings, "
            (count(Status::Fail)) " failed."
        }
        table #analysis {
            thead { tr { th { "Result" } th { "Step" } th { "Detail" } th { "Remedy" } } }
            tbody {
                @for s in &r.steps {
                    @let (class, word) = match s.status {
                        Status::Pass => ("st-ready", "pass"),
                        Status::Warn => ("st-warning", "warn"),
                        Status::Fail => ("st-error", "fail"),
                    };
                    tr class={"step-" (word)} {
                        td { span class={"status " (class)} { (s.status.symbol()) " " (word) } }
                        td { (s.name) }
                        td { (s.detail) }
                        td { (s.remedy) }
                    }
                }
            }
        }
    }
}

/// `GET /ui/gateways/{name}/analyze`.
pub(super) async fn page(
    State(ui): State<UiState>,
    Extension(s): Extension<Session>,
    Path(name): Path<String>,
) -> Response {
    render(&ui, &s, &name, &Asked::default(), None, None).await
}

#[derive(Deserialize)]
pub(super) struct AnalyzeForm {
    #[serde(default)]
    instances: String,
    #[serde(default)]
    cert_pem: String,
    #[serde(default)]
    key_pem: String,
    #[serde(default)]
    token: String,
}

impl Drop for AnalyzeForm {
    fn drop(&mut self) {
        self.cert_pem.zeroize();
        self.key_pem.zeroize();
        self.token.zeroize();
    }
}

/// The credential the form gives, or why it gives none.
fn credential(f: &AnalyzeForm) -> Result<Credential, String> {
    let (cert, key, token) = (f.cert_pem.trim(), f.key_pem.trim(), f.token.trim());
    match (cert.is_empty(), key.is_empty(), token.is_empty()) {
        (true, true, true) => {
            Err("Give a client certificate and its key, or a token, to run the analyzer.".into())
        }
        (false, false, true) => {
            let certs = cmg_pki::pem::parse_certs(cert)
                .map_err(|e| format!("The certificate is not valid PEM: {e}."))?;
            if certs.is_empty() {
                return Err("The certificate field holds no PEM certificate.".into());
            }
            cmg_pki::pem::parse_key(key)
                .map_err(|e| format!("The private key is not valid PEM: {e}."))?;
            Ok(Credential::Certificate {
                chain_pem: cert.to_owned(),
                key_pem: key.to_owned(),
            })
        }
        (true, true, false) => Ok(Credential::Token(token.to_owned())),
        (false, true, true) | (true, false, true) => {
            Err("A certificate needs its private key, and a key its certificate.".into())
        }
        _ => Err("Give either a certificate and key, or a token, not both.".into()),
    }
}

/// `POST /ui/gateways/{name}/analyze`: runs the analyzer and shows its report.
pub(super) async fn run(
    State(ui): State<UiState>,
    Extension(s): Extension<Session>,
    Path(name): Path<String>,
    UiForm(f): UiForm<AnalyzeForm>,
) -> Response {
    let instances: Vec<String> = f
        .instances
        .split(|c: char| c == '\n' || c == ',' || c.is_whitespace())
        .filter(|a| !a.is_empty())
        .map(str::to_owned)
        .collect();
    let mut asked = Asked {
        instances: instances.join("\n"),
        kind: "",
    };
    let mut credential = match credential(&f) {
        Ok(c) => c,
        Err(m) => {
            let n = Notice::Err(StatusCode::BAD_REQUEST, m);
            return render(&ui, &s, &name, &asked, Some(n), None).await;
        }
    };
    drop(f);
    asked.kind = match credential {
        Credential::Certificate { .. } => "certificate",
        Credential::Token(_) => "token",
    };
    let report = async {
        if !is_gateway_name(&name) {
            return Err(ApiError::from(StoreError::not_found("gateway", &name)));
        }
        let now = crate::now();
        let d =
            crate::analyze::from_store(&ui.app.store, &name, ui.app.report_interval, now).await?;
        let targets = if instances.is_empty() {
            Targets::ServiceName
        } else {
            Targets::Addresses(instances.clone())
        };
        Ok(cmg_analyze::analyze(&d, &credential, &targets).await)
    }
    .await;
    match &mut credential {
        Credential::Certificate { chain_pem, key_pem } => {
            chain_pem.zeroize();
            key_pem.zeroize();
        }
        Credential::Token(t) => t.zeroize(),
    }
    let report = match report {
        Ok(r) => r,
        Err(e) => return render(&ui, &s, &name, &asked, Some(e.into()), None).await,
    };
    let count = |st| report.steps.iter().filter(|x| x.status == st).count();
    let detail = serde_json::json!({
        "instances": if instances.is_empty() { vec!["service name".to_owned()] } else { instances },
        "credential": asked.kind,
        "ok": report.ok,
        "passed": count(Status::Pass),
        "warnings": count(Status::Warn),
        "failed": count(Status::Fail),
    });
    if let Err(e) = ui
        .app
        .store
        .record_analysis(&name, detail, &s.actor())
        .await
    {
        return render(&ui, &s, &name, &asked, Some(ApiError::from(e).into()), None).await;
    }
    tracing::info!(gateway = %name, actor = %s.actor().0, ok = report.ok, "console: connection analyzer run");
    let notice = if report.ok {
        Notice::Ok("The analyzer ran: no step failed.".into())
    } else {
        Notice::Failed(format!(
            "The analyzer ran: {} step(s) failed.",
            count(Status::Fail)
        ))
    };
    render(&ui, &s, &name, &asked, Some(notice), Some(&report)).await
}
