//! The API document (OpenAPI 3.1), generated from the handlers' `#[utoipa::path]`
//! attributes and the request, response and parameter types, and served at
//! `GET /api/v1/openapi.json`. Here: the document's frame (title, security schemes, the
//! error schema) and the refusals the handlers share, each as a set of documented
//! status codes with the one error shape of [`super::error`].
//!
//! It does not list the operations: [`super::router`] registers each handler once, for
//! the router and the document together, so neither can drift from the other.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::{Extension, Json};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr};
use utoipa::{IntoResponses, Modify, OpenApi};

use crate::model::ApiErrorBody;

/// The frame the handlers' operations are added to.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "cmg site API",
        version = "1",
        description = "The cmg site's admin API (bearer admin token) and publishing API \
            (connection point client certificate issued by the site CA). Every refusal is \
            the `Error` schema, `{\"error\": code, \"message\": text}`. Request bodies refuse \
            unknown fields and are limited to 1 MiB. Generated from the code."
    ),
    components(schemas(ApiErrorBody)),
    security(("adminToken" = [])),
    modifiers(&SecuritySchemes)
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut admin = Http::new(HttpAuthScheme::Bearer);
        admin.description = Some("The site's admin token (`DIR/admin.token`).".into());
        components.add_security_scheme("adminToken", SecurityScheme::Http(admin));
        let mut site = Http::new(HttpAuthScheme::Bearer);
        site.description = Some("A bulk registration token or a device token of this site.".into());
        components.add_security_scheme("siteToken", SecurityScheme::Http(site));
        components.add_security_scheme(
            "connectionPointCertificate",
            SecurityScheme::MutualTls {
                description: Some(
                    "A connection point's client certificate, issued by the site CA.".into(),
                ),
                extensions: None,
                deprecated: None,
            },
        );
    }
}

/// `GET /api/v1/openapi.json`: this document.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    operation_id = "get_openapi",
    tag = "site",
    security(()),
    responses(
        (status = 200, description = "The OpenAPI document of this API", content_type = "application/json",
            body = Object),
        Internal,
    )
)]
pub(super) async fn openapi_json(
    Extension(doc): Extension<Arc<utoipa::openapi::OpenApi>>,
) -> Json<utoipa::openapi::OpenApi> {
    Json(doc.as_ref().clone())
}

fn refusal(description: &str) -> RefOr<Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Error")))
                .build(),
        )
        .build()
        .into()
}

fn set(codes: &[(&str, &str)]) -> BTreeMap<String, RefOr<Response>> {
    codes
        .iter()
        .map(|(code, description)| (code.to_string(), refusal(description)))
        .collect()
}

/// The refusals of every admin operation: no or a wrong admin token, a site not
/// initialised, an internal fault.
pub struct Admin;

impl IntoResponses for Admin {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut r = set(&[(
            "401",
            "No or a wrong admin token (`admin_token_required`, `bad_admin_token`)",
        )]);
        r.append(&mut Internal::responses());
        r
    }
}

/// A fault of the site: `internal` (detail in the log) or `not_initialised`.
pub struct Internal;

impl IntoResponses for Internal {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        set(&[
            (
                "500",
                "The site could not complete the request (`internal`)",
            ),
            (
                "503",
                "The site's database is not initialised (`not_initialised`)",
            ),
        ])
    }
}

/// A JSON body refused: bad JSON, a wrong type or an unknown field, a value the store
/// refuses; a body over 1 MiB; not `application/json`.
pub struct BadBody;

impl IntoResponses for BadBody {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        set(&[
            (
                "400",
                "The body, a parameter or a value is refused (`bad_json`, `invalid_body`, \
                 `bad_name`, ... : the message says which)",
            ),
            ("413", "The body is over 1 MiB (`body_too_large`)"),
            (
                "415",
                "The body is not `application/json` (`unsupported_media_type`)",
            ),
        ])
    }
}

/// A path or query parameter of the wrong shape.
pub struct BadParam;

impl IntoResponses for BadParam {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        set(&[(
            "400",
            "A path or query parameter is refused (`bad_name`, `bad_role_id`, `bad_id`, \
             `bad_query`, `bad_limit`, `bad_period`)",
        )])
    }
}

/// What the path names is not on record.
pub struct NotFound;

impl IntoResponses for NotFound {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        set(&[("404", "Not on record (`not_found`)")])
    }
}

/// The change conflicts with what is on record.
pub struct Conflict;

impl IntoResponses for Conflict {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        set(&[(
            "409",
            "Conflicts with what is on record (`already_exists`, or the refusal's own code)",
        )])
    }
}

/// The publishing API's refusals of a connection point.
pub struct Publish;

impl IntoResponses for Publish {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut r = set(&[
            (
                "401",
                "No client certificate (`client_certificate_required`)",
            ),
            (
                "403",
                "Not a connection point on record for this gateway (`not_a_connection_point`, \
                 `wrong_gateway`, `identity_mismatch`)",
            ),
        ]);
        r.append(&mut Internal::responses());
        r
    }
}
