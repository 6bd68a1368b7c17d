//! The console's pages and actions, one file per part of the navigation. A page is a
//! `GET`; an action is a `POST` that calls what the REST API's handler calls and then
//! renders its page again with a notice saying what happened (or why not, with the
//! API's status code).

mod analyze;
mod audit;
mod boundary;
mod connection_points;
mod gateway;
mod gateways;
mod keys;
mod roles;
mod tokens;
mod traffic;

use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::Markup;

use super::layout::{Ctx, Notice};
use super::session::Session;
use super::UiState;

pub(super) fn routes() -> Router<UiState> {
    Router::new()
        .route("/gateways", get(gateways::page))
        .route("/gateways/table", get(gateways::table))
        .route("/gateways/{name}", get(gateway::page))
        .route("/gateways/{name}/settings", post(gateway::settings))
        .route("/gateways/{name}/alert/clear", post(gateway::clear_stop))
        .route("/gateways/{name}/storage/rotate", post(gateway::rotate))
        .route("/gateways/{name}/export", post(gateway::export))
        .route("/gateways/{name}/traffic", get(traffic::page))
        .route(
            "/gateways/{name}/analyze",
            get(analyze::page).post(analyze::run),
        )
        .route("/roles", get(roles::page).post(roles::create))
        .route("/roles/{id}/traffic", post(roles::traffic))
        .route("/roles/{id}/delete", post(roles::delete))
        .route(
            "/connection-points",
            get(connection_points::page).post(connection_points::add),
        )
        .route(
            "/connection-points/{id}/remove",
            post(connection_points::remove),
        )
        .route("/tokens", get(tokens::page).post(tokens::create))
        .route("/tokens/{id}/block", post(tokens::block))
        .route("/tokens/{id}/unblock", post(tokens::unblock))
        .route("/keys", get(keys::page))
        .route("/keys/roll", post(keys::roll))
        .route("/boundary-groups", get(boundary::page).post(boundary::put))
        .route("/boundary-groups/{name}/delete", post(boundary::delete))
        .route("/client-settings", post(boundary::client_settings))
        .route("/audit", get(audit::page))
}

fn ctx<'a>(ui: &'a UiState, session: &'a Session) -> Ctx<'a> {
    Ctx {
        assets: &ui.assets,
        session,
        now: crate::now(),
    }
}

/// A rendered page with the status its notice calls for.
fn respond(notice: Option<&Notice>, markup: Markup) -> Response {
    let status = notice.map_or(http::StatusCode::OK, Notice::status);
    (status, markup).into_response()
}

/// The notice of an action's result.
fn outcome<T>(r: Result<T, crate::api::error::ApiError>, ok: impl FnOnce(T) -> String) -> Notice {
    match r {
        Ok(v) => Notice::Ok(ok(v)),
        Err(e) => e.into(),
    }
}
