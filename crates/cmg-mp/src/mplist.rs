//! The site's management point list, kept current for `.sms_aut?MPLIST`: with `[site]`
//! the management point reads `GET <site>/api/v1/management-points` (site CA as the
//! only root, bounded by time and size) at start and every `refresh`, after a failure
//! again after 5 s (doubling up to `refresh`), and keeps the last good list meanwhile.
//! Until the first answer, and without `[site]`, it lists itself only.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use cmg_core::fetch::{FetchLimits, HttpFetcher};
use cmg_core::Shutdown;
use cmg_proto::device::{ManagementPointList, MAX_MP_LIST_BYTES, MP_LIST_PATH};

use crate::config::SiteLink;
use crate::error::MpError;

/// The last good list, shared with the request handlers.
#[derive(Debug, Default)]
pub(crate) struct SiteList(RwLock<Option<Arc<ManagementPointList>>>);

impl SiteList {
    pub(crate) fn get(&self) -> Option<Arc<ManagementPointList>> {
        match self.0.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn set(&self, list: ManagementPointList) {
        let list = Some(Arc::new(list));
        match self.0.write() {
            Ok(mut g) => *g = list,
            Err(p) => *p.into_inner() = list,
        }
    }
}

/// The fetcher for `link` (trusting only its CA files).
pub(crate) fn fetcher(link: &SiteLink) -> Result<HttpFetcher, MpError> {
    let mut roots = rustls::RootCertStore::empty();
    for f in &link.ca {
        cmg_pki::pem::add_roots(&mut roots, f)?;
    }
    HttpFetcher::with_roots(roots, &limits())
        .map(|f| f.with_accept("application/json"))
        .map_err(|e| MpError::Site(e.to_string()))
}

fn limits() -> FetchLimits {
    FetchLimits {
        connect_timeout: Duration::from_secs(3),
        timeout: Duration::from_secs(10),
        max_bytes: MAX_MP_LIST_BYTES,
    }
}

/// Keeps `list` current until `shutdown`.
pub(crate) async fn follow(
    link: SiteLink,
    fetcher: HttpFetcher,
    list: Arc<SiteList>,
    shutdown: Shutdown,
) {
    let url = format!("{}{MP_LIST_PATH}", link.url);
    let first_retry = Duration::from_secs(5).min(link.refresh);
    let mut retry = first_retry;
    loop {
        let failure = match fetcher.get(&url, &limits()).await {
            Ok(body) => match serde_json::from_slice::<ManagementPointList>(&body) {
                Ok(l) => {
                    tracing::debug!(target: "cmg_mp", intranet = l.intranet.len(), internet = l.internet.len(), "management point list from the site");
                    list.set(l);
                    None
                }
                Err(e) => Some(format!("does not parse: {e}")),
            },
            Err(e) => Some(e.to_string()),
        };
        let wait = match failure {
            None => {
                retry = first_retry;
                link.refresh
            }
            Some(error) => {
                tracing::warn!(target: "cmg_mp", %url, %error, "cannot use the site's management point list; keeping the last one");
                let wait = retry;
                retry = (retry * 2).min(link.refresh);
                wait
            }
        };
        tokio::select! {
            () = shutdown.token.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}
