//! The console's static files, compiled into the binary and served at
//! `/ui/static/<hash>/<name>` with a year's `immutable` cache: the hash (the first 16
//! hex digits of the file's SHA-256) changes with the content, so a new build is never
//! served a stale copy.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::{header, StatusCode};
use sha2::{Digest as _, Sha256};

use super::UiState;

/// One file.
#[derive(Debug)]
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
    hash: String,
}

/// Every static file, with its hash (computed once, when the router is built).
#[derive(Debug)]
pub struct Assets {
    files: Vec<Asset>,
}

const FILES: &[(&str, &str, &[u8])] = &[
    (
        "htmx.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("static/htmx.min.js"),
    ),
    (
        "htmx.LICENSE",
        "text/plain; charset=utf-8",
        include_bytes!("static/htmx.LICENSE"),
    ),
    (
        "console.js",
        "text/javascript; charset=utf-8",
        include_bytes!("static/console.js"),
    ),
    (
        "console.css",
        "text/css; charset=utf-8",
        include_bytes!("static/console.css"),
    ),
];

impl Assets {
    pub fn new() -> Self {
        Self {
            files: FILES
                .iter()
                .map(|&(name, content_type, body)| Asset {
                    name,
                    content_type,
                    body,
                    hash: hex::encode(&Sha256::digest(body)[..8]),
                })
                .collect(),
        }
    }

    /// The URL of the file `name` (one of the files above).
    pub fn url(&self, name: &str) -> String {
        match self.files.iter().find(|a| a.name == name) {
            Some(a) => format!("/ui/static/{}/{}", a.hash, a.name),
            None => format!("/ui/static/missing/{name}"),
        }
    }
}

impl Default for Assets {
    fn default() -> Self {
        Self::new()
    }
}

pub(super) async fn serve(
    State(ui): State<UiState>,
    Path((hash, file)): Path<(String, String)>,
) -> Response {
    match ui
        .assets
        .files
        .iter()
        .find(|a| a.name == file && a.hash == hash)
    {
        Some(a) => (
            [
                (header::CONTENT_TYPE, a.content_type),
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
            ],
            a.body,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
