//! Token clients (bulk token traded through the gateway, monthly renewal, a blocked
//! token) and content downloads resumed after an interruption, against the fake site.

mod support;

use cmg_agent::testing::{FakeSite, BULK_TOKEN};
use cmg_agent::{AgentError, ConnectionKind};
use sha2::{Digest as _, Sha256};
use support::{agent, config, loopback, Cred};

const DAY: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

#[tokio::test]
async fn a_token_client_trades_its_bulk_token_through_the_gateway_and_renews_monthly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let site = FakeSite::start(dir.path(), loopback(), loopback()).await;
    let (mut a, clock) = agent(config(&site, dir.path(), Cred::Token, true));
    assert!(a.cycle().await, "errors: {:?}", a.state().errors);
    assert_eq!(a.kind(), ConnectionKind::Internet);
    let first = a.state().device_token.clone().expect("device token");
    {
        let f = site.fake();
        let exchange = f
            .seen
            .iter()
            .find(|s| s.path.ends_with("/CCM_STS/token"))
            .expect("exchange");
        assert_eq!(exchange.listener, "gateway");
        assert!(
            exchange.path.contains("/CCM_Proxy_ServerAuth/"),
            "{}",
            exchange.path
        );
        assert_eq!(exchange.bearer.as_deref(), Some(BULK_TOKEN));
        // Everything after the exchange carries the device token.
        let policy = f
            .seen
            .iter()
            .find(|s| s.path.contains(".sms_pol?assignments"))
            .expect("poll");
        assert_eq!(policy.bearer.as_deref(), Some(first.token.as_str()));
    }
    // Within the month nothing is renewed.
    clock.advance(29 * DAY);
    a.ensure_token().await.expect("no renewal needed");
    assert_eq!(a.state().device_token.as_ref(), Some(&first));
    // After a month the device token renews itself (no bulk token).
    clock.advance(2 * DAY);
    a.ensure_token().await.expect("renewed");
    let second = a.state().device_token.clone().expect("renewed token");
    assert_ne!(second.tracking_id, first.tracking_id);
    let renewal = site
        .fake()
        .seen
        .iter()
        .rev()
        .find(|s| s.path.ends_with("/CCM_STS/token"))
        .cloned()
        .expect("renewal");
    assert_eq!(renewal.bearer.as_deref(), Some(first.token.as_str()));

    // Blocked: the renewal is refused, the token dropped, and the bulk token is not
    // used again behind the administrator's back.
    site.fake().blocked.insert(second.token.clone());
    clock.advance(31 * DAY);
    let err = a.ensure_token().await.expect_err("blocked");
    assert!(err.to_string().contains("token_blocked"), "{err}");
    assert_eq!(a.state().token_refused.as_deref(), Some("token_blocked"));
    assert!(a.state().device_token.is_none());
    let exchanges = site
        .fake()
        .seen
        .iter()
        .filter(|s| s.path.ends_with("/CCM_STS/token"))
        .count();
    a.ensure_token().await.expect("nothing to do once refused");
    let after = site
        .fake()
        .seen
        .iter()
        .filter(|s| s.path.ends_with("/CCM_STS/token"))
        .count();
    assert_eq!(exchanges, after, "no new exchange after a refusal");
    let status = cmg_agent::StatusView::new(a.config(), a.state(), 0);
    assert_eq!(status.token_refused.as_deref(), Some("token_blocked"));
    site.stop().await;
}

#[tokio::test]
async fn a_token_client_on_the_intranet_registers_at_the_site() {
    let dir = tempfile::tempdir().expect("tempdir");
    let site = FakeSite::start(dir.path(), loopback(), loopback()).await;
    let (mut a, _clock) = agent(config(&site, dir.path(), Cred::Token, false));
    assert!(a.cycle().await, "errors: {:?}", a.state().errors);
    assert_eq!(a.kind(), ConnectionKind::Intranet);
    assert!(a.state().device_token.is_some());
    let exchange = site
        .fake()
        .seen
        .iter()
        .find(|s| s.path.contains("sts"))
        .cloned()
        .expect("exchange");
    assert_eq!(
        (exchange.listener, exchange.path.as_str()),
        ("intranet", "/api/v1/sts/token")
    );
    site.stop().await;
}

#[tokio::test]
async fn content_through_the_gateway_is_resumed_with_a_range_and_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let site = FakeSite::start(dir.path(), loopback(), loopback()).await;
    let (id, sha) = {
        let mut f = site.fake();
        f.cut_after = Some(70_000);
        (
            f.content_id.clone(),
            hex::encode(Sha256::digest(&f.content)),
        )
    };
    let (mut a, _clock) = agent(config(&site, dir.path(), Cred::Certificate, true));
    a.evaluate().await;
    let out = dir.path().join("content.bin");
    let err = a.download_content(&id, &sha, &out).await.expect_err("cut");
    assert!(
        matches!(
            err,
            AgentError::Content(cmg_agent::ContentFailure::Interrupted { .. })
        ),
        "{err}"
    );
    assert!(!out.exists());
    let partial = std::fs::metadata(dir.path().join("content.bin.partial"))
        .expect("partial kept")
        .len();
    assert_eq!(partial, 70_000);

    let done = a.download_content(&id, &sha, &out).await.expect("resumed");
    assert_eq!(done.resumed_from, 70_000);
    assert_eq!(done.bytes, 200_000);
    assert_eq!(
        hex::encode(Sha256::digest(std::fs::read(&out).expect("out"))),
        sha
    );
    let ranged: Vec<_> = site
        .fake()
        .seen
        .iter()
        .filter(|s| s.path.contains("CMG_Content"))
        .cloned()
        .collect();
    assert_eq!(ranged.len(), 2);
    assert_eq!(ranged[1].range.as_deref(), Some("bytes=70000-"));
    assert!(ranged.iter().all(|s| s.listener == "gateway"));

    // A wrong hash removes the download.
    let out2 = dir.path().join("other.bin");
    let err = a
        .download_content(&id, &"00".repeat(32), &out2)
        .await
        .expect_err("hash");
    assert!(
        matches!(
            err,
            AgentError::Content(cmg_agent::ContentFailure::HashMismatch { .. })
        ),
        "{err}"
    );
    assert!(!out2.exists() && !dir.path().join("other.bin.partial").exists());
    site.stop().await;
}
