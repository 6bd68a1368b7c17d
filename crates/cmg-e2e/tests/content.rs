//! Content serving (cloud distribution point) through real gateways, from a real Azure
//! Storage emulator (Azurite, `cmg_test_support::azurite`) behind a counting proxy: the switch
//! and the storage account come in the site's settings bundle; authentication is the
//! gateway's usual; GET, HEAD, single ranges, missing blobs, path checks, key rotation
//! and storage outages.
//!
//! Needs node (20 or later) and npm: Azurite is installed from the committed lock file
//! (`npm ci --prefix crates/cmg-test-support/azurite`) when missing.

use std::time::{Duration, Instant};

use bytes::Bytes;
use cmg_client::collect_body;
use cmg_e2e::{header_str, pattern, raw, sha256_hex, tag, tagged, Cert, TestCluster};
use cmg_proto::settings::{ContentSettings, StorageAccount};
use cmg_test_support::azurite::{self, Azurite, ProxyMode, StorageProxy};
use cmg_test_support::patience;
use http::{header, Method, StatusCode};
use object_store::{ObjectStoreExt, PutPayload};

/// Bound on applying a published bundle (scaled by `CMG_TEST_PATIENCE` at its use).
const APPLY: Duration = Duration::from_secs(10);
const BIG: usize = 8 << 20;

fn url(blob: &str) -> String {
    format!("/CCM_Proxy_MutualAuth/CMG_Content/{blob}")
}

fn token_url(blob: &str) -> String {
    format!("/CCM_Proxy_ServerAuth/CMG_Content/{blob}")
}

/// Emulator, proxy and a cluster whose gateways bound storage waits to `timeout`.
struct Setup {
    tc: TestCluster,
    azurite: Azurite,
    proxy: StorageProxy,
    version: u64,
}

impl Setup {
    async fn start(timeout: &str) -> anyhow::Result<Self> {
        let azurite = Azurite::start().await?;
        let proxy = StorageProxy::start(azurite.port).await?;
        let extra = format!("\n[content]\ntimeout = \"{timeout}\"\nidle_timeout = \"5s\"\n");
        let tc = TestCluster::start_with(|s| s.gateway_extra = extra).await?;
        Ok(Self {
            tc,
            azurite,
            proxy,
            version: 1,
        })
    }

    /// The storage account with key `key` (0: key1, 1: key2), through the proxy, the
    /// key sealed to every instance as the site seals it.
    fn account(&self, key: usize) -> StorageAccount {
        self.account_with_key(key, &self.azurite.keys[key])
    }

    fn account_with_key(&self, key: usize, clear: &str) -> StorageAccount {
        let account = StorageAccount {
            account: azurite::ACCOUNT.into(),
            endpoint: Some(azurite::endpoint(self.proxy.port)),
            container: azurite::CONTAINER.into(),
            key_name: ["key1", "key2"][key].into(),
            sealed_keys: Vec::new(),
        };
        self.tc
            .seal_storage(account, clear)
            .expect("seal the storage key")
    }

    /// Publishes the next bundle with `content` and waits until every gateway runs it.
    async fn publish(&mut self, content: ContentSettings) -> anyhow::Result<()> {
        self.version += 1;
        let mut b = self.tc.base_bundle(self.version)?;
        b.content = content;
        self.tc.publish(&b)?;
        self.tc.wait_settings(self.version, patience(APPLY)).await?;
        Ok(())
    }

    async fn put(&self, blob: &str, data: Bytes) -> anyhow::Result<()> {
        self.azurite
            .store(0)?
            .put(
                &object_store::path::Path::parse(blob)?,
                PutPayload::from(data),
            )
            .await?;
        Ok(())
    }

    /// `method path` on gateway `gw` with `cert`, extra headers; status, headers, body.
    async fn get(
        &self,
        gw: usize,
        cert: Cert,
        method: Method,
        path: &str,
        headers: &[(header::HeaderName, &str)],
    ) -> anyhow::Result<(StatusCode, http::HeaderMap, Bytes)> {
        let mut req = tagged(method, path, &tag("content"), Bytes::new());
        for (k, v) in headers {
            req.headers_mut().insert(k.clone(), v.parse()?);
        }
        let resp = self.tc.client(gw, cert, true)?.request(req).await?;
        let (parts, body) = resp.into_parts();
        let body = collect_body(http::Response::from_parts(parts.clone(), body)).await?;
        Ok((parts.status, parts.headers, body))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blobs_are_served_to_authenticated_clients_only() -> anyhow::Result<()> {
    let mut s = Setup::start("10s").await?;
    let big = pattern(BIG, 7);
    s.put("pkg/PS100001/big.bin", big.clone()).await?;
    s.put("pkg/small.txt", Bytes::from_static(b"0123456789"))
        .await?;

    // Off (the cluster's first bundle): refused with the reason, storage never asked.
    let before = s.proxy.sent();
    let (st, _, body) = s
        .get(0, Cert::Valid, Method::GET, &url("pkg/small.txt"), &[])
        .await?;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert!(
        String::from_utf8_lossy(&body).contains("content_serving_disabled"),
        "{body:?}"
    );
    assert_eq!(
        s.proxy.sent(),
        before,
        "storage asked while content serving is off"
    );

    s.publish(ContentSettings {
        enabled: true,
        storage: Some(s.account(0)),
    })
    .await?;

    // Whole blob, both instances, HTTP/2 and HTTP/1.1: bytes intact.
    for gw in 0..s.tc.gateways.len() {
        for http2 in [true, false] {
            let resp =
                s.tc.client(gw, Cert::Valid, http2)?
                    .request(tagged(
                        Method::GET,
                        &url("pkg/PS100001/big.bin"),
                        &tag("c"),
                        Bytes::new(),
                    ))
                    .await?;
            assert_eq!(resp.status(), StatusCode::OK, "gw{gw} h2={http2}");
            assert_eq!(header_str(&resp, "content-length"), BIG.to_string());
            assert!(!header_str(&resp, "etag").is_empty());
            assert!(!header_str(&resp, "last-modified").is_empty());
            let body = collect_body(resp).await?;
            assert_eq!(sha256_hex(&body), sha256_hex(&big), "gw{gw} h2={http2}");
        }
    }

    // HEAD: the length and validators, no body.
    let (st, h, body) = s
        .get(
            0,
            Cert::Valid,
            Method::HEAD,
            &url("pkg/PS100001/big.bin"),
            &[],
        )
        .await?;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(h[header::CONTENT_LENGTH], BIG.to_string().as_str());
    assert_eq!(h[header::ACCEPT_RANGES], "bytes");
    assert!(h.contains_key(header::ETAG));
    assert!(body.is_empty());

    // Ranges: 206 with Content-Range; past the end 416.
    let (st, h, body) = s
        .get(
            0,
            Cert::Valid,
            Method::GET,
            &url("pkg/PS100001/big.bin"),
            &[(header::RANGE, "bytes=1000-1999")],
        )
        .await?;
    assert_eq!(st, StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        h[header::CONTENT_RANGE],
        format!("bytes 1000-1999/{BIG}").as_str()
    );
    assert_eq!(&body[..], &big[1000..2000]);
    let (st, h, body) = s
        .get(
            1,
            Cert::Valid,
            Method::GET,
            &url("pkg/small.txt"),
            &[(header::RANGE, "bytes=-3")],
        )
        .await?;
    assert_eq!(st, StatusCode::PARTIAL_CONTENT);
    assert_eq!(h[header::CONTENT_RANGE], "bytes 7-9/10");
    assert_eq!(&body[..], b"789");
    let (st, h, _) = s
        .get(
            0,
            Cert::Valid,
            Method::GET,
            &url("pkg/small.txt"),
            &[(header::RANGE, "bytes=10-")],
        )
        .await?;
    assert_eq!(st, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(h[header::CONTENT_RANGE], "bytes */10");

    // Missing blob: 404; a method other than GET/HEAD: 405.
    let (st, _, body) = s
        .get(0, Cert::Valid, Method::GET, &url("pkg/none.bin"), &[])
        .await?;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert!(String::from_utf8_lossy(&body).contains("content_not_found"));
    let (st, _, _) = s
        .get(0, Cert::Valid, Method::DELETE, &url("pkg/small.txt"), &[])
        .await?;
    assert_eq!(st, StatusCode::METHOD_NOT_ALLOWED);

    // Tokens on the ServerAuth form.
    let token = s.tc.tokens.device_token.clone();
    let bearer = format!("Bearer {token}");
    let (st, _, body) = s
        .get(
            0,
            Cert::None,
            Method::GET,
            &token_url("pkg/small.txt"),
            &[(header::AUTHORIZATION, &bearer)],
        )
        .await?;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(&body[..], b"0123456789");

    // Unauthenticated: refused, and not one byte goes to storage.
    let before = s.proxy.sent();
    let (st, _, body) = s
        .get(0, Cert::None, Method::GET, &url("pkg/small.txt"), &[])
        .await?;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert!(String::from_utf8_lossy(&body).contains("client_certificate_required"));
    let (st, _, _) = s
        .get(0, Cert::None, Method::GET, &token_url("pkg/small.txt"), &[])
        .await?;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, _, _) = s
        .get(
            0,
            Cert::None,
            Method::GET,
            &token_url("pkg/small.txt"),
            &[(header::AUTHORIZATION, "Bearer forged")],
        )
        .await?;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    // Traversal-looking targets, sent raw: 400 before anything else.
    for target in [
        "/CCM_Proxy_MutualAuth/CMG_Content/../CMG_Content/pkg/small.txt",
        "/CCM_Proxy_MutualAuth/CMG_Content/pkg/%2e%2e/small.txt",
        "/CCM_Proxy_MutualAuth/CMG_Content/pkg%2fsmall.txt",
        "/CCM_Proxy_MutualAuth/CMG_Content/pkg\\small.txt",
        "/CCM_Proxy_MutualAuth/CMG_Content/pkg//small.txt",
    ] {
        let resp = raw::exchange(&s.tc, 0, &raw::request("GET", target, "trav", "", b"")).await?;
        assert_eq!(resp.status, 400, "{target}: {}", resp.head);
    }
    assert_eq!(
        s.proxy.sent(),
        before,
        "storage asked for a refused request"
    );

    // Switched off again: refused at once.
    s.publish(ContentSettings {
        enabled: false,
        storage: Some(s.account(0)),
    })
    .await?;
    let (st, _, _) = s
        .get(1, Cert::Valid, Method::GET, &url("pkg/small.txt"), &[])
        .await?;
    assert_eq!(st, StatusCode::FORBIDDEN);

    // Throughput, one run on this machine: the same blob through a gateway (TLS,
    // HTTP/2) and straight from the emulator (plain HTTP, no proxy).
    s.publish(ContentSettings {
        enabled: true,
        storage: Some(s.account(0)),
    })
    .await?;
    let t = Instant::now();
    let (_, _, body) = s
        .get(
            0,
            Cert::Valid,
            Method::GET,
            &url("pkg/PS100001/big.bin"),
            &[],
        )
        .await?;
    let via_gateway = t.elapsed();
    assert_eq!(body.len(), BIG);
    let t = Instant::now();
    let direct = s
        .azurite
        .store(0)?
        .get(&object_store::path::Path::parse("pkg/PS100001/big.bin")?)
        .await?
        .bytes()
        .await?;
    let via_storage = t.elapsed();
    assert_eq!(direct.len(), BIG);
    let mib = |d: Duration| BIG as f64 / (1 << 20) as f64 / d.as_secs_f64();
    eprintln!(
        "content throughput, {} MiB: through gateway {:.1} MiB/s ({:?}), direct from Azurite {:.1} MiB/s ({:?})",
        BIG >> 20,
        mib(via_gateway),
        via_gateway,
        mib(via_storage),
        via_storage
    );
    s.tc.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_key_is_used_and_storage_outages_fail_fast() -> anyhow::Result<()> {
    let mut s = Setup::start("1500ms").await?;
    s.put("a.txt", Bytes::from_static(b"alpha")).await?;

    // key1, then key2 (the site's rotation): both serve. A wrong key does not, so the
    // key in the bundle is the one that signs.
    for key in [0, 1] {
        s.publish(ContentSettings {
            enabled: true,
            storage: Some(s.account(key)),
        })
        .await?;
        for gw in 0..s.tc.gateways.len() {
            let (st, _, body) = s
                .get(gw, Cert::Valid, Method::GET, &url("a.txt"), &[])
                .await?;
            assert_eq!(st, StatusCode::OK, "key{} gw{gw}", key + 1);
            assert_eq!(&body[..], b"alpha");
        }
    }
    // Valid base64 (64 zero bytes), not a key of the account.
    let wrong = s.account_with_key(1, &format!("{}==", "A".repeat(86)));
    s.publish(ContentSettings {
        enabled: true,
        storage: Some(wrong),
    })
    .await?;
    let (st, _, body) = s
        .get(0, Cert::Valid, Method::GET, &url("a.txt"), &[])
        .await?;
    assert_eq!(st, StatusCode::BAD_GATEWAY, "{body:?}");
    s.publish(ContentSettings {
        enabled: true,
        storage: Some(s.account(1)),
    })
    .await?;

    // Storage hangs: 504 within the bound; storage refuses: 502 at once. Requests to
    // published URLs on the same instance go on meanwhile.
    for (mode, status, within) in [
        (
            ProxyMode::Hang,
            StatusCode::GATEWAY_TIMEOUT,
            Duration::from_secs(5),
        ),
        (
            ProxyMode::Refuse,
            StatusCode::BAD_GATEWAY,
            Duration::from_secs(5),
        ),
    ] {
        s.proxy.set_mode(mode);
        let t = Instant::now();
        let path = url("a.txt");
        let content = s.get(0, Cert::Valid, Method::GET, &path, &[]);
        let other = async {
            let resp =
                s.tc.client(0, Cert::Valid, true)?
                    .request(tagged(
                        cmg_e2e::ccm_post(),
                        &cmg_e2e::system_request(),
                        &tag("other"),
                        Bytes::from_static(b"hi"),
                    ))
                    .await?;
            let st = resp.status();
            collect_body(resp).await?;
            Ok::<_, anyhow::Error>((st, t.elapsed()))
        };
        let (content, other) = tokio::join!(content, other);
        let (st, _, body) = content?;
        let took = t.elapsed();
        assert_eq!(st, status, "{mode:?}: {body:?}");
        assert!(took < within, "{mode:?} took {took:?}");
        let (other_status, other_took) = other?;
        assert_eq!(other_status, StatusCode::OK);
        assert!(
            other_took < Duration::from_secs(2),
            "other client waited {other_took:?}"
        );
    }
    s.proxy.set_mode(ProxyMode::Pass);
    let (st, _, _) = s
        .get(1, Cert::Valid, Method::GET, &url("a.txt"), &[])
        .await?;
    assert_eq!(st, StatusCode::OK, "storage back");
    s.tc.shutdown().await;
    Ok(())
}
