//! Response builders shared by the handlers: every status the management point answers
//! with is built here or from [`builder`].

use http::{header, Response, StatusCode};

use crate::body::{self, RespBody};

/// The server header every response carries.
const SERVER: &str = concat!("cmg-mp/", env!("CARGO_PKG_VERSION"));

pub(crate) fn builder(status: StatusCode) -> http::response::Builder {
    Response::builder()
        .status(status)
        .header(header::SERVER, SERVER)
}

/// A short plain-text response.
pub(crate) fn text(status: StatusCode, message: &'static str) -> Response<RespBody> {
    builder(status)
        .header(header::CONTENT_TYPE, "text/plain")
        .body(body::full(message))
        .unwrap_or_else(|_| internal())
}

pub(crate) fn not_found() -> Response<RespBody> {
    text(StatusCode::NOT_FOUND, "not found\n")
}

pub(crate) fn method_not_allowed(allow: &'static str) -> Response<RespBody> {
    let mut resp = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    resp.headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static(allow));
    resp
}

/// The body did not arrive whole; the peer is usually gone, but answer honestly.
pub(crate) fn incomplete_body() -> Response<RespBody> {
    text(StatusCode::BAD_REQUEST, "request body incomplete\n")
}

/// Storing the body failed on this side.
pub(crate) fn store_failed() -> Response<RespBody> {
    text(StatusCode::INTERNAL_SERVER_ERROR, "cannot store body\n")
}

/// A bare 500, built without anything that can fail.
pub(crate) fn internal() -> Response<RespBody> {
    let mut resp = Response::new(body::empty());
    *resp.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    resp
}
