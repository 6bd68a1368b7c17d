//! The location service's HTTP face (`POST /api/v1/location`), the intranet
//! registration of certificate clients (`POST /api/v1/sts/register`) and the client
//! list (`GET /api/v1/clients`, admin). See docs/architecture.md, "The client".
//!
//! How a request came and who sent it ([`caller`]):
//! - from a connection point on record (its certificate at the TLS handshake): through
//!   a gateway; the client is the bearer device token's device, or the certificate the
//!   gateway names in `cmg-client-identity` when `cmg-client-auth` is `certificate`;
//! - otherwise on the intranet: a bearer device token, or the client certificate of
//!   the TLS handshake (verified by the listener against the gateways' client roots);
//!   `cmg-client-*` headers from anyone but a connection point are refused, so no
//!   intranet caller can pose as the gateway.

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use cmg_pki::describe::{connector_identity, describe};
use cmg_proto::device::{ClientAuth, LocationRequest, Via, MAX_LOCATION_REQUEST_BYTES};
use cmg_proto::headers;
use cmg_token::site::TokenKind;
use http::StatusCode;
use serde_json::Value;

use super::doc::{Admin, Internal};
use super::error::ApiError;
use super::params::{ApiQuery, ClientsQuery};
use super::publish::PeerCert;
use super::{ok, ApiResult, AppState};
use crate::location::{Caller, LocationRefusal};
use crate::model::{ApiErrorBody, ClientView, StsTokenRequest};
use crate::store::sts::{DeviceTokenIssued, StsError};

/// [`LocationRequest`] as the API document shows it.
#[derive(utoipa::ToSchema)]
#[schema(as = LocationRequest)]
#[allow(dead_code)] // a schema only
struct LocationRequestSchema {
    /// The client's site code.
    site: String,
    /// The client's addresses (IPv4 or IPv6), at most 64.
    addresses: Vec<String>,
    /// A content ID to locate.
    want_content: Option<String>,
}

fn refuse(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(status, code, message.into())
}

/// How the request reached the site: `Gateway` only from a connection point on record.
pub(super) async fn via(s: &AppState, peer: &PeerCert, h: &HeaderMap) -> Result<Via, ApiError> {
    if let Some(cert) = &peer.0 {
        if let Ok((_, id)) = connector_identity(cert) {
            // Any gateway's connection point: the location service is site-wide. On
            // record with this very certificate, so of this site.
            let sha = describe(cert)
                .map_err(|e| {
                    refuse(
                        StatusCode::FORBIDDEN,
                        "not_a_connection_point",
                        e.to_string(),
                    )
                })?
                .sha256_hex;
            return match s.store.connection_point_gateway(id.as_str(), &sha).await? {
                Some(_) => Ok(Via::Gateway),
                None => Err(refuse(
                    StatusCode::FORBIDDEN,
                    "not_a_connection_point",
                    format!("connection point {id} with this certificate is not on record"),
                )),
            };
        }
    }
    if h.contains_key(headers::CLIENT_AUTH) || h.contains_key(headers::CLIENT_IDENTITY) {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "forwarded_without_connection_point",
            "cmg-client-* headers are the gateway's: a forwarded request must come from a \
             connection point presenting its certificate",
        ));
    }
    Ok(Via::Intranet)
}

/// The authenticated client of a location request.
async fn caller(s: &AppState, peer: &PeerCert, h: &HeaderMap) -> Result<Caller, ApiError> {
    let via = via(s, peer, h).await?;
    if let Some(token) = super::sts::bearer(h) {
        let t = s
            .store
            .verify_site_token(token)
            .await
            .map_err(token_refusal)?;
        return match (t.kind, t.subject) {
            (TokenKind::Device, Some(device)) => Ok(Caller {
                id: device,
                auth: ClientAuth::Token,
                via,
            }),
            _ => Err(refuse(
                StatusCode::UNAUTHORIZED,
                "device_token_required",
                "the location service takes a device token (trade the bulk token first)",
            )),
        };
    }
    let id = match via {
        Via::Gateway => {
            let auth = h.get(headers::CLIENT_AUTH).and_then(|v| v.to_str().ok());
            let identity = h
                .get(headers::CLIENT_IDENTITY)
                .and_then(|v| v.to_str().ok());
            match (auth, identity.and_then(identity_of_header)) {
                (Some("certificate"), Some(id)) => id,
                _ => return Err(credentials_required()),
            }
        }
        Via::Intranet => match &peer.0 {
            Some(cert) => {
                let d = describe(cert).map_err(|e| {
                    refuse(StatusCode::UNAUTHORIZED, "bad_certificate", e.to_string())
                })?;
                format!("{}; sha256={}", d.subject, d.sha256_hex)
            }
            None => return Err(credentials_required()),
        },
    };
    Ok(Caller {
        id,
        auth: ClientAuth::Certificate,
        via,
    })
}

fn credentials_required() -> ApiError {
    refuse(
        StatusCode::UNAUTHORIZED,
        "client_credentials_required",
        "a client certificate or a device token (Authorization: Bearer) is required",
    )
}

fn token_refusal(e: StsError) -> ApiError {
    match e {
        StsError::Store(e) => e.into(),
        StsError::InvalidToken(t) => {
            tracing::warn!(code = t.code(), "location service refused a token");
            refuse(StatusCode::UNAUTHORIZED, t.code(), t.to_string())
        }
        other => refuse(StatusCode::UNAUTHORIZED, "token_refused", other.to_string()),
    }
}

/// `<subject>; sha256=<hex>` from the gateway's `subject="<subject>"; sha256=<hex>`.
fn identity_of_header(v: &str) -> Option<String> {
    let sha = v.rsplit_once("sha256=")?.1.trim();
    if sha.is_empty() || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let subject = v
        .split_once("subject=\"")
        .and_then(|(_, rest)| rest.rsplit_once("\"; sha256=").map(|(s, _)| s))
        .unwrap_or("");
    Some(format!("{subject}; sha256={sha}"))
}

#[utoipa::path(post, path = "/api/v1/location", operation_id = "locate", tag = "clients",
    security((), ("siteToken" = [])),
    request_body(content = LocationRequestSchema, content_type = "application/json"),
    responses(
        (status = 200, description = "The signed location answer (compact JWS, typ cmg-location+jws)",
            content_type = "application/jose", body = String),
        (status = 400, description = "The body is refused (`bad_json`, `too_many_addresses`, `bad_content_id`)", body = ApiErrorBody),
        (status = 401, description = "No or a refused client certificate or device token", body = ApiErrorBody),
        (status = 403, description = "Clients may not use a gateway (`cmg_disabled`), or a forwarded request not from a connection point", body = ApiErrorBody),
        (status = 409, description = "The request names another site (`other_site`)", body = ApiErrorBody),
        (status = 413, description = "The body is over 16 KiB (`body_too_large`)", body = ApiErrorBody),
        Internal))]
pub(super) async fn locate(
    State(s): State<AppState>,
    Extension(peer): Extension<PeerCert>,
    h: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    if body.len() > MAX_LOCATION_REQUEST_BYTES {
        return Err(refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("a location request is at most {MAX_LOCATION_REQUEST_BYTES} bytes"),
        ));
    }
    let caller = caller(&s, &peer, &h).await?;
    let req: LocationRequest = serde_json::from_slice(&body)
        .map_err(|e| refuse(StatusCode::BAD_REQUEST, "bad_json", e.to_string()))?;
    match crate::location::answer(&s.store, &caller, &req).await {
        Ok(signed) => Ok(([(header::CONTENT_TYPE, "application/jose")], signed).into_response()),
        Err(LocationRefusal::Store(e)) => Err(e.into()),
        Err(e @ LocationRefusal::OtherSite { .. }) => {
            Err(refuse(StatusCode::CONFLICT, "other_site", e.to_string()))
        }
        Err(LocationRefusal::BadRequest { code, message }) => {
            Err(refuse(StatusCode::BAD_REQUEST, code, message))
        }
        Err(e @ LocationRefusal::CmgDisabled) => {
            tracing::info!(client = %caller.id, "location through a gateway refused: clients may not use a CMG");
            Err(refuse(StatusCode::FORBIDDEN, "cmg_disabled", e.to_string()))
        }
    }
}

#[utoipa::path(post, path = "/api/v1/sts/register", operation_id = "sts_register", tag = "token service",
    security(()),
    request_body(content = StsTokenRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "A device token for the registering certificate client", body = DeviceTokenIssued),
        (status = 400, description = "The body or the device ID is refused", body = ApiErrorBody),
        (status = 401, description = "No client certificate (`client_certificate_required`)", body = ApiErrorBody),
        (status = 403, description = "Only on the intranet (`intranet_only`)", body = ApiErrorBody),
        Internal))]
pub(super) async fn register(
    State(s): State<AppState>,
    Extension(peer): Extension<PeerCert>,
    h: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    if via(&s, &peer, &h).await? == Via::Gateway {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "intranet_only",
            "certificate clients register on the intranet; through a gateway, trade a bulk token",
        ));
    }
    let Some(cert) = &peer.0 else {
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            "client_certificate_required",
            "intranet registration needs the client's certificate at the TLS handshake",
        ));
    };
    let req: StsTokenRequest = serde_json::from_slice(&body)
        .map_err(|e| refuse(StatusCode::BAD_REQUEST, "bad_json", e.to_string()))?;
    let Some(device) = req.device_id else {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "device_id_required",
            "registering needs a device_id",
        ));
    };
    let d = describe(cert)
        .map_err(|e| refuse(StatusCode::UNAUTHORIZED, "bad_certificate", e.to_string()))?;
    let who = format!("{}; sha256={}", d.subject, d.sha256_hex);
    match s.store.register_device(&who, &device).await {
        Ok(issued) => Ok(ok(issued)?.into_response()),
        Err(StsError::Store(e)) => Err(e.into()),
        Err(StsError::BadRequest { code, message }) => {
            Err(refuse(StatusCode::BAD_REQUEST, code, message))
        }
        Err(e) => Err(refuse(StatusCode::UNAUTHORIZED, "refused", e.to_string())),
    }
}

/// [`ManagementPointList`] as the API document shows it.
#[derive(utoipa::ToSchema)]
#[schema(as = ManagementPointList)]
#[allow(dead_code)] // a schema only
struct MpListSchema {
    site: String,
    intranet: Vec<ListedMpSchema>,
    internet: Vec<ListedMpSchema>,
}

#[derive(utoipa::ToSchema)]
#[schema(as = ListedMp)]
#[allow(dead_code)] // a schema only
struct ListedMpSchema {
    /// The role ID.
    name: String,
    /// The intranet host, or `<service>/CCM_Proxy_MutualAuth/<role id>`.
    fqdn: String,
    url: String,
}

#[utoipa::path(get, path = "/api/v1/management-points", operation_id = "get_management_points",
    tag = "clients", security(()),
    responses((status = 200, description = "The site's management points, intranet and internet", body = MpListSchema),
        Internal))]
pub(super) async fn management_points(State(s): State<AppState>) -> ApiResult<Json<Value>> {
    ok(crate::location::mp_list(&s.store).await?)
}

#[utoipa::path(get, path = "/api/v1/clients", operation_id = "get_clients", tag = "clients",
    params(ClientsQuery),
    responses((status = 200, description = "The clients, most recently seen first", body = [ClientView]),
        super::doc::BadParam, Admin))]
pub(super) async fn clients(
    State(s): State<AppState>,
    ApiQuery(q): ApiQuery<ClientsQuery>,
) -> ApiResult<Json<Value>> {
    ok(s.store.clients(q.limit.unwrap_or(100)).await?)
}

#[cfg(test)]
mod tests {
    use super::identity_of_header;

    #[test]
    fn the_gateway_identity_header_names_the_certificate() {
        assert_eq!(
            identity_of_header("subject=\"CN=device1, O=Contoso\"; sha256=ab12").as_deref(),
            Some("CN=device1, O=Contoso; sha256=ab12")
        );
        assert_eq!(
            identity_of_header("sha256=ab12").as_deref(),
            Some("; sha256=ab12")
        );
        assert_eq!(identity_of_header("subject=\"CN=x\""), None);
        assert_eq!(identity_of_header("sha256=zz"), None);
    }
}
