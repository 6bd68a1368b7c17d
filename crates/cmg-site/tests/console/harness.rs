//! The console in memory: the site's whole router (`server::app`) called with tower's
//! `oneshot`, and a browser's part played by hand: a cookie jar, the `Host` and
//! `Origin` headers, the CSRF token read from the last page.

#![allow(dead_code)] // each test binary uses part of it

use axum::body::Body;
use axum::Router;
use cmg_site::alerts::Notifier;
use cmg_site::api::AppState;
use cmg_site::metrics::Metrics;
use cmg_site::{server, Secret, Store};
use http::{header, HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt as _;
use std::sync::Arc;
use std::time::Duration;
use tower::ServiceExt as _;

pub const HOST: &str = "site.test:8443";
pub const ORIGIN: &str = "https://site.test:8443";
pub const TOKEN: &str = "console-test-admin-token-0123456789";

pub fn app(store: &Store) -> Router {
    let metrics = Arc::new(Metrics::new());
    let notifier = Notifier::new(Duration::from_secs(5), metrics.clone(), None).expect("notifier");
    let state = AppState::new(
        store.clone(),
        &Secret::new(TOKEN),
        Duration::from_secs(5),
        notifier,
        metrics,
    );
    server::app(state)
}

#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
    pub bytes: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect()
    }
    /// The first CSRF field of the page.
    pub fn csrf(&self) -> Option<String> {
        let at = self.body.find(r#"name="csrf" value=""#)? + r#"name="csrf" value=""#.len();
        let end = self.body[at..].find('"')?;
        Some(self.body[at..at + end].to_owned())
    }
}

pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A browser: the router, its cookies, the CSRF token of the last page.
pub struct Browser {
    pub router: Router,
    pub cookies: Vec<(String, String)>,
    pub csrf: String,
    pub origin: Option<String>,
    /// Send `HX-Request: true`, as htmx does.
    pub htmx: bool,
}

impl Browser {
    pub fn new(router: Router) -> Self {
        Self {
            router,
            cookies: Vec::new(),
            csrf: String::new(),
            origin: Some(ORIGIN.into()),
            htmx: false,
        }
    }

    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.cookies
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub async fn request(&mut self, method: Method, path: &str, body: Option<String>) -> Reply {
        let mut b = Request::builder()
            .method(method.clone())
            .uri(path)
            .header(header::HOST, HOST);
        if method != Method::GET {
            if let Some(o) = &self.origin {
                b = b.header(header::ORIGIN, o);
            }
        }
        if self.htmx {
            b = b.header("hx-request", "true");
        }
        if !self.cookies.is_empty() {
            let jar: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            b = b.header(header::COOKIE, jar.join("; "));
        }
        let req = match body {
            Some(form) => b
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(form)),
            None => b.body(Body::empty()),
        }
        .expect("request");
        let res = self.router.clone().oneshot(req).await.expect("infallible");
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes()
            .to_vec();
        let reply = Reply {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
            bytes,
        };
        for c in reply.set_cookies() {
            let pair = c.split(';').next().unwrap_or("");
            if let Some((k, v)) = pair.split_once('=') {
                self.cookies.retain(|(n, _)| n != k);
                if !v.is_empty() && !c.contains("Max-Age=0") {
                    self.cookies.push((k.to_owned(), v.to_owned()));
                }
            }
        }
        if let Some(t) = reply.csrf() {
            self.csrf = t;
        }
        reply
    }

    pub async fn get(&mut self, path: &str) -> Reply {
        self.request(Method::GET, path, None).await
    }

    /// POSTs `fields` with this page's CSRF token.
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Reply {
        let mut all = vec![("csrf", self.csrf.clone())];
        all.extend(fields.iter().map(|(k, v)| (*k, (*v).to_owned())));
        self.post_raw(path, &all).await
    }

    /// POSTs exactly `fields` (no token added).
    pub async fn post_raw(&mut self, path: &str, fields: &[(&str, String)]) -> Reply {
        let body = fields
            .iter()
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect::<Vec<_>>()
            .join("&");
        self.request(Method::POST, path, Some(body)).await
    }

    /// Signs in as `name`.
    pub async fn sign_in(&mut self, name: &str) -> Reply {
        let page = self.get("/ui/sign-in").await;
        assert_eq!(page.status, StatusCode::OK);
        self.post("/ui/sign-in", &[("name", name), ("token", TOKEN)])
            .await
    }
}
