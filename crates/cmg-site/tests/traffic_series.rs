//! `Store::traffic_series` in both databases: a gateway's hour buckets summed per step,
//! per endpoint or all endpoints, the same buckets `Store::traffic` totals, and a step
//! that is not whole hours refused.

#[macro_use]
mod support;

use cmg_site::model::{TrafficPoint, TrafficQuery, TrafficSeriesQuery};
use cmg_site::Store;
use support::traffic::{Add, Traffic};
use support::{gateway_pki, gateway_request, test_site, Kind};

/// A midnight (UTC): day 20000 since the epoch.
const H0: i64 = 20_000 * 86_400;
const HOUR: i64 = 3600;
const A: &str = "/CCM_Proxy_MutualAuth/1/CCM_System";
const B: &str = "/CCM_Proxy_ServerAuth/1/CCM_STS";

fn add(ok: u64, failed: u64, bytes_out: u64) -> Add {
    Add {
        status_classes: [0, ok, 0, 0, failed],
        bytes_in: 10 * (ok + failed),
        bytes_out,
        latency_us: 2_000 * (ok + failed),
    }
}

async fn series(
    store: &Store,
    gateway: &str,
    endpoint: Option<&str>,
    since: i64,
    step: i64,
) -> Vec<TrafficPoint> {
    store
        .traffic_series(&TrafficSeriesQuery {
            gateway: gateway.into(),
            endpoint: endpoint.map(str::to_owned),
            since,
            step,
        })
        .await
        .expect("series")
}

fn point(start: i64, ok: u64, failed: u64, bytes_out: u64) -> TrafficPoint {
    TrafficPoint {
        start,
        requests: ok + failed,
        bytes_in: 10 * (ok + failed),
        bytes_out,
        status_classes: [0, ok, 0, 0, failed],
        latency_us_sum: 2_000 * (ok + failed),
    }
}

both!(series_sum_hour_buckets_per_step);
async fn series_sum_hour_buckets_per_step(kind: Kind) {
    let (store, _db) = test_site(kind).await;
    let pki = gateway_pki("cmg.contoso.test");
    for g in ["gw1", "gw2"] {
        store
            .create_gateway(gateway_request(g, &pki), &support::admin())
            .await
            .expect("gateway");
    }
    assert!(
        series(&store, "gw1", None, H0 - 86_400, HOUR)
            .await
            .is_empty(),
        "no traffic, no steps"
    );

    let mut gw1 = Traffic::new(&store, "gw1", "cp1").await;
    let mut gw2 = Traffic::new(&store, "gw2", "cp2").await;
    gw1.at(H0 + 10, A, add(3, 1, 1_000)).await;
    gw1.at(H0 + 50, B, add(1, 0, 50)).await;
    gw1.at(H0 + HOUR + 5, A, add(2, 0, 400)).await;
    gw1.at(H0 + 7 * HOUR + 1, A, add(0, 2, 7)).await;
    gw2.at(H0 + 20, A, add(100, 0, 9_999)).await;

    // Hour steps: one point per hour with traffic, oldest first, both endpoints summed.
    let hours = series(&store, "gw1", None, H0 - 86_400, HOUR).await;
    assert_eq!(
        hours,
        vec![
            TrafficPoint {
                start: H0,
                requests: 5,
                bytes_in: 50,
                bytes_out: 1_050,
                status_classes: [0, 4, 0, 0, 1],
                latency_us_sum: 10_000,
            },
            point(H0 + HOUR, 2, 0, 400),
            point(H0 + 7 * HOUR, 0, 2, 7),
        ]
    );
    assert_eq!(hours[0].mean_latency_ms(), 2.0);

    // One endpoint.
    assert_eq!(
        series(&store, "gw1", Some(B), H0 - 86_400, HOUR).await,
        vec![point(H0, 1, 0, 50)]
    );
    // No such prefix, or none the store would take (a NUL, empty, too long): no traffic.
    let long = "/x".repeat(600);
    for nothing in ["/nothing", "/nul\0byte", "", long.as_str()] {
        assert!(
            series(&store, "gw1", Some(nothing), H0, HOUR)
                .await
                .is_empty(),
            "{nothing:?}"
        );
    }

    // Six-hour steps start at multiples of six hours: the first two hours are one step.
    let six = series(&store, "gw1", Some(A), H0 - 86_400, 6 * HOUR).await;
    assert_eq!(
        six,
        vec![point(H0, 5, 1, 1_400), point(H0 + 6 * HOUR, 0, 2, 7)]
    );
    // `since` counts from its hour, as the totals do: the first hour is left out, and the
    // step holding it keeps only the buckets after it.
    let later = series(&store, "gw1", Some(A), H0 + HOUR + 1_800, 6 * HOUR).await;
    assert_eq!(
        later,
        vec![point(H0, 2, 0, 400), point(H0 + 6 * HOUR, 0, 2, 7)]
    );

    // The steps add up to the totals of the same period, per gateway.
    for (gateway, since) in [("gw1", H0 - 86_400), ("gw1", H0 + HOUR), ("gw2", H0)] {
        let totals = store
            .traffic(&TrafficQuery {
                gateway: Some(gateway.into()),
                since,
            })
            .await
            .expect("totals");
        let steps = series(&store, gateway, None, since, 2 * HOUR).await;
        let sum = |f: fn(&TrafficPoint) -> u64| steps.iter().map(f).sum::<u64>();
        assert_eq!(
            sum(|p| p.requests),
            totals.iter().map(|t| t.requests).sum::<u64>()
        );
        assert_eq!(
            sum(|p| p.bytes_out),
            totals.iter().map(|t| t.bytes_out).sum::<u64>()
        );
        assert_eq!(
            sum(|p| p.bytes_in),
            totals.iter().map(|t| t.bytes_in).sum::<u64>()
        );
    }
    assert_eq!(
        series(&store, "gw2", None, H0, 86_400).await,
        vec![point(H0, 100, 0, 9_999)]
    );

    // A step that is not whole hours is refused.
    for step in [0, -HOUR, 1_800, HOUR + 1] {
        let e = store
            .traffic_series(&TrafficSeriesQuery {
                gateway: "gw1".into(),
                endpoint: None,
                since: H0,
                step,
            })
            .await
            .expect_err("refused");
        assert!(e.to_string().contains("hours"), "{step}: {e}");
    }
}

/// `GET /api/v1/traffic/series` answers what the store sums, and refuses a malformed
/// step or an unknown gateway in the API's error shape.
#[tokio::test]
async fn the_rest_api_serves_the_series() {
    use http::{Method, StatusCode};
    let site = support::spawn_site(Kind::Sqlite).await;
    let pki = gateway_pki("cmg.contoso.test");
    site.store
        .create_gateway(gateway_request("gw1", &pki), &support::admin())
        .await
        .expect("gateway");
    let now = cmg_site::now();
    let mut traffic = Traffic::new(&site.store, "gw1", "cp1").await;
    traffic.at(now - 3 * HOUR, A, add(3, 1, 1_000)).await;
    traffic.at(now, B, add(1, 0, 50)).await;

    let admin = site.admin();
    let get = |path: String| {
        let admin = admin.clone();
        async move { admin.call(Method::GET, &path, None).await.expect("call") }
    };
    let r = get("/api/v1/traffic/series?gateway=gw1&since=1d&step=1h".into()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let got: Vec<TrafficPoint> = serde_json::from_value(r.json()).expect("points");
    assert_eq!(
        got,
        series(&site.store, "gw1", None, now - 86_400, HOUR).await
    );
    assert_eq!(got.len(), 2);
    assert_eq!(got.iter().map(|p| p.requests).sum::<u64>(), 5);

    let r = get(format!(
        "/api/v1/traffic/series?gateway=gw1&endpoint={B}&step=1d"
    ))
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let got: Vec<TrafficPoint> = serde_json::from_value(r.json()).expect("points");
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].requests, 1);
    assert_eq!(
        got[0].start % 86_400,
        0,
        "a day's step starts at midnight UTC"
    );

    for (query, status, code) in [
        ("gateway=gw1&step=30m", StatusCode::BAD_REQUEST, "bad_step"),
        ("gateway=gw1&step=721h", StatusCode::BAD_REQUEST, "bad_step"),
        (
            "gateway=gw1&since=91d",
            StatusCode::BAD_REQUEST,
            "bad_period",
        ),
        ("gateway=nope", StatusCode::NOT_FOUND, "not_found"),
    ] {
        let r = get(format!("/api/v1/traffic/series?{query}")).await;
        assert_eq!(r.status, status, "{query}: {}", r.text());
        assert_eq!(r.json()["error"], code, "{query}: {}", r.text());
    }
}
