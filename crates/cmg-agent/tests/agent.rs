//! The agent against a fake site, management point and gateway on loopback: intranet
//! and internet decisions, policy by either path, refused location answers, failover
//! with a hand-moved clock, restarts.

mod support;

use cmg_agent::testing::{candidate, FakeSite, Tamper};
use cmg_agent::{Agent, AgentError, ConnectionKind, LocationFailure, StatusView};
use cmg_proto::device::CandidateList;
use cmg_proto::location::{CandidateKind, Locality};
use support::{agent, config, loopback, Cred, MINUTE};

#[tokio::test]
async fn an_intranet_client_gets_policy_from_its_mp_and_keeps_it_across_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let site = FakeSite::start(dir.path(), loopback(), loopback()).await;
    let (mut a, _clock) = agent(config(&site, dir.path(), Cred::Certificate, false));
    assert!(a.cycle().await, "errors: {:?}", a.state().errors);
    assert_eq!(a.kind(), ConnectionKind::Intranet);
    let s = a.state();
    assert_eq!(s.policy.held.len(), 2);
    assert!(
        s.policy
            .last_path
            .as_deref()
            .is_some_and(|p| p.starts_with("intranet via MP1")),
        "{:?}",
        s.policy.last_path
    );
    assert_eq!(s.boundary_groups, ["HQ"]);
    // Registering on the intranet gave the certificate client a device token.
    assert!(s.device_token.is_some());
    assert!(site
        .fake()
        .seen
        .iter()
        .any(|r| r.path == "/api/v1/sts/register" && r.bearer.is_none()));
    let body = std::fs::read(dir.path().join("state/policy/Baseline")).expect("policy body");
    assert_eq!(body, b"baseline v1");

    // A second poll downloads nothing; a changed body only that one.
    let again = a.poll_policy().await.expect("poll");
    assert!(
        again.downloaded.is_empty() && again.unchanged == 2,
        "{again:?}"
    );
    site.fake().policies[1] = ("Apps".into(), 4, b"apps v4".to_vec());
    let changed = a.poll_policy().await.expect("poll");
    assert_eq!(changed.downloaded, ["Apps"]);
    let bodies = site
        .fake()
        .seen
        .iter()
        .filter(|s| s.path.contains(".sms_pol?Apps"))
        .count();
    assert_eq!(
        bodies, 2,
        "Apps downloaded at first and after its change only"
    );

    // Restart: the same state comes back.
    let device = a.state().device_id.clone();
    drop(a);
    let (b, _) = agent(config(&site, dir.path(), Cred::Certificate, false));
    assert_eq!(b.state().device_id, device);
    assert_eq!(b.state().policy.held.len(), 2);
    assert!(b.state().location_jws.is_some());
    site.stop().await;
}

#[tokio::test]
async fn always_internet_goes_through_the_gateway_even_when_the_intranet_answers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let site = FakeSite::start(dir.path(), loopback(), loopback()).await;
    let (mut a, _clock) = agent(config(&site, dir.path(), Cred::Certificate, true));
    assert!(a.cycle().await, "errors: {:?}", a.state().errors);
    assert_eq!(a.kind(), ConnectionKind::Internet);
    let reason = &a.state().connection.as_ref().expect("decided").reason;
    assert!(reason.contains("always_internet"), "{reason}");
    let path = a.state().policy.last_path.clone().unwrap_or_default();
    assert!(
        path.starts_with("internet via cmg1")
            && path.contains("instance gw1, connection point cp1"),
        "{path}"
    );
    let seen = site.fake().seen.clone();
    assert!(
        seen.iter().all(|s| s.listener == "gateway"),
        "nothing on the intranet: {seen:?}"
    );
    assert!(
        !seen.iter().any(|s| s.path.contains(".sms_aut")),
        "no probe when always_internet"
    );
    let view = StatusView::new(a.config(), a.state(), 0);
    let json = serde_json::to_value(&view).expect("json");
    assert_eq!(json["connection"]["type"], "internet");
    assert_eq!(json["management_point"]["name"], "cmg1");
    assert_eq!(json["management_point"]["type"], "Internet");
    assert_eq!(json["site"], "DEM");
    assert!(json["last_location_refresh"].is_string());
    assert_eq!(json["candidates"].as_array().map(Vec::len), Some(2));
    site.stop().await;
}

#[tokio::test]
async fn an_unreachable_intranet_mp_makes_the_client_internet() {
    let dir = tempfile::tempdir().expect("tempdir");
    let site = FakeSite::start(dir.path(), loopback(), loopback()).await;
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = closed.local_addr().expect("addr");
    drop(closed);
    let mp = format!("http://{addr}");
    let text = support::config_text(&site, dir.path(), Cred::Certificate, false, &mp);
    let c = cmg_agent::Config::from_toml(&dir.path().join("client.toml"), &text).expect("config");
    let (mut a, _) = agent(c);
    assert!(a.cycle().await, "errors: {:?}", a.state().errors);
    assert_eq!(a.kind(), ConnectionKind::Internet);
    let reason = a
        .state()
        .connection
        .as_ref()
        .map(|c| c.reason.clone())
        .unwrap_or_default();
    assert!(reason.contains("unreachable"), "{reason}");
    // The location came through the bootstrap gateway, then policy through cmg1.
    assert!(site
        .fake()
        .seen
        .iter()
        .any(|s| s.path.ends_with("/CCM_Location") && s.listener == "gateway"));
    assert_eq!(a.state().policy.held.len(), 2);
    site.stop().await;
}

#[tokio::test]
async fn refused_location_answers_keep_the_last_good_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let site = FakeSite::start(dir.path(), loopback(), loopback()).await;
    let (mut a, _clock) = agent(config(&site, dir.path(), Cred::Certificate, false));
    assert!(a.cycle().await);
    let good = a.state().location_jws.clone();
    let refreshed = a.state().last_location_refresh;
    for (tamper, code) in [
        (Tamper::Payload, "bad_signature"),
        (Tamper::Oversized, "too_large"),
        (Tamper::Garbage, "malformed"),
        (Tamper::OtherSite, "other_site"),
    ] {
        site.fake().tamper = tamper;
        let err = a.refresh_location(None).await.expect_err("refused");
        match &err {
            AgentError::Location(LocationFailure::Refused { code: got, .. }) => {
                assert_eq!(*got, code, "{tamper:?}: {err}")
            }
            other => panic!("{tamper:?}: {other}"),
        }
        assert_eq!(
            a.state().location_jws,
            good,
            "{tamper:?} replaced the good answer"
        );
        assert_eq!(a.state().last_location_refresh, refreshed);
        assert_eq!(a.state().intranet.current.as_deref(), Some("MP1"));
        let last = a
            .state()
            .errors
            .last()
            .map(|e| e.message.clone())
            .unwrap_or_default();
        assert!(last.contains("refused") && last.contains(code), "{last}");
    }
    site.stop().await;
}

#[tokio::test]
async fn the_answer_tags_each_candidates_list_and_status_shows_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let site = FakeSite::start(dir.path(), loopback(), loopback()).await;
    let gw = format!("https://{}", site.gateway_base(false));
    {
        // The same gateway twice: the intranet fallback (tagged intranet, though its
        // locality is the site default) and the internet candidate. Only the tag says
        // which list each is in.
        let mut f = site.fake();
        f.candidates = vec![
            candidate(
                CandidateList::Intranet,
                CandidateKind::Intranet,
                "MP1",
                &format!("http://{}", site.intranet),
                Locality::CurrentGroup,
            ),
            candidate(
                CandidateList::Intranet,
                CandidateKind::Internet,
                "cmg1",
                &gw,
                Locality::SiteDefault,
            ),
            candidate(
                CandidateList::Internet,
                CandidateKind::Internet,
                "cmg1",
                &gw,
                Locality::SiteDefault,
            ),
        ];
    }
    let (mut a, _clock) = agent(config(&site, dir.path(), Cred::Certificate, false));
    assert!(a.cycle().await, "errors: {:?}", a.state().errors);
    let names = |sel: &cmg_agent::Selection| -> Vec<String> {
        sel.candidates
            .iter()
            .map(|t| t.candidate.name.clone())
            .collect()
    };
    assert_eq!(names(&a.state().intranet), ["MP1", "cmg1"]);
    assert_eq!(names(&a.state().internet), ["cmg1"]);
    let view = StatusView::new(a.config(), a.state(), 0);
    let json = serde_json::to_value(&view).expect("json");
    let lists: Vec<(String, String, String)> = json["candidates"]
        .as_array()
        .expect("candidates")
        .iter()
        .map(|c| {
            (
                c["list"].as_str().unwrap_or_default().to_owned(),
                c["type"].as_str().unwrap_or_default().to_owned(),
                c["name"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let l = |a: &str, b: &str, c: &str| (a.to_owned(), b.to_owned(), c.to_owned());
    assert_eq!(
        lists,
        [
            l("intranet", "Intranet", "MP1"),
            l("intranet", "Internet", "cmg1"),
            l("internet", "Internet", "cmg1"),
        ]
    );
    let text = view.text();
    assert!(
        text.contains("intranet list") && text.contains("internet list"),
        "{text}"
    );
    site.stop().await;
}

#[tokio::test]
async fn five_failures_in_ten_minutes_move_the_client_to_the_next_mp() {
    let dir = tempfile::tempdir().expect("tempdir");
    let site = FakeSite::start(dir.path(), loopback(), loopback()).await;
    let gw = format!("https://{}", site.gateway_base(false));
    {
        // Two intranet sources: MP1, then the gateway its group references.
        let mut f = site.fake();
        f.candidates = vec![
            candidate(
                CandidateList::Intranet,
                CandidateKind::Intranet,
                "MP1",
                &format!("http://{}", site.intranet),
                Locality::CurrentGroup,
            ),
            candidate(
                CandidateList::Intranet,
                CandidateKind::Internet,
                "cmg1",
                &gw,
                Locality::CurrentGroup,
            ),
        ];
    }
    let (mut a, clock) = agent(config(&site, dir.path(), Cred::Certificate, false));
    assert!(a.cycle().await);
    site.fake().failing.insert("intranet");
    // Failures spread wider than 10 minutes never add up to 5.
    for _ in 0..6 {
        a.poll_policy().await.expect_err("503");
        clock.advance(3 * MINUTE);
    }
    assert_eq!(a.state().intranet.current.as_deref(), Some("MP1"));
    clock.advance(20 * MINUTE);
    for i in 0..4 {
        a.poll_policy().await.expect_err("503");
        assert_eq!(
            a.state().intranet.current.as_deref(),
            Some("MP1"),
            "moved after {} failures",
            i + 1
        );
        clock.advance(MINUTE);
    }
    a.poll_policy().await.expect_err("fifth failure");
    assert_eq!(a.state().intranet.current.as_deref(), Some("cmg1"));
    let p = a
        .poll_policy()
        .await
        .expect("policy through the next source");
    assert!(p.path.is_some());
    // The client sticks to it even though MP1 answers again.
    site.fake().failing.clear();
    clock.advance(60 * MINUTE);
    a.poll_policy().await.expect("poll");
    assert_eq!(a.state().intranet.current.as_deref(), Some("cmg1"));
    site.stop().await;
}

#[tokio::test]
async fn use_cmg_no_keeps_certificate_and_token_clients_off_the_gateway() {
    for cred in [Cred::Certificate, Cred::Token] {
        let dir = tempfile::tempdir().expect("tempdir");
        let site = FakeSite::start(dir.path(), loopback(), loopback()).await;
        site.fake().settings.enable_cmg = false;
        // On the intranet it learns the settings, and no gateway.
        let (mut a, _clock) = agent(config(&site, dir.path(), cred, false));
        assert!(a.cycle().await, "{cred:?}: {:?}", a.state().errors);
        assert_eq!(a.state().use_cmg, Some(false));
        assert!(a.state().internet.candidates.is_empty(), "{cred:?}");
        drop(a);
        // The same client on the internet has no gateway to use: no policy, a clear error.
        let (mut b, _clock) = agent(config(&site, dir.path(), cred, true));
        b.evaluate().await;
        let err = b.poll_policy().await.expect_err("no gateway");
        assert!(
            err.to_string().contains("Enable clients to use a CMG"),
            "{cred:?}: {err}"
        );
        assert!(
            site.fake().seen.iter().all(|s| s.listener == "intranet"),
            "{cred:?} used the gateway"
        );
        site.stop().await;
    }
}

#[tokio::test]
async fn a_corrupt_or_foreign_state_file_is_refused_clearly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let site = FakeSite::start(dir.path(), loopback(), loopback()).await;
    std::fs::create_dir_all(dir.path().join("state")).expect("mkdir");
    std::fs::write(dir.path().join("state/state.json"), "{{{").expect("write");
    let err = Agent::open(
        config(&site, dir.path(), Cred::Certificate, false),
        std::sync::Arc::new(cmg_agent::SystemClock),
    )
    .expect_err("corrupt");
    assert!(
        err.to_string().contains("not a cmg client state file"),
        "{err}"
    );
    cmg_agent::State::new("XYZ", "d".into())
        .save(&dir.path().join("state"))
        .expect("save");
    let err = Agent::open(
        config(&site, dir.path(), Cred::Certificate, false),
        std::sync::Arc::new(cmg_agent::SystemClock),
    )
    .expect_err("foreign");
    assert!(err.to_string().contains("site `XYZ`"), "{err}");
    site.stop().await;
}
