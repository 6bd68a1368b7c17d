//! The console's traffic page in memory (tower `oneshot`): a gateway's traffic over 24
//! hours, 14 days and 30 days as SVG charts over time (requests, status classes, bytes,
//! latency), each labelled for assistive technology and with its numbers in a table, the
//! totals per endpoint kept, one endpoint's charts on their own; no traffic says so;
//! an endpoint name that tries to inject markup is shown escaped, in the SVG too.

#[path = "console/harness.rs"]
mod harness;
#[allow(unused_macros)]
mod support;

use harness::{app, Browser};
use http::StatusCode;
use support::traffic::{Add, Traffic};
use support::{gateway_pki, gateway_request, test_site, Kind};

const A: &str = "/CCM_Proxy_MutualAuth/72057594037927939/CCM_System";
const B: &str = "/CCM_Proxy_ServerAuth/72057594037927939/CCM_STS";
const HOUR: i64 = 3600;
const CHARTS: [&str; 4] = [
    "chart-requests",
    "chart-status",
    "chart-bytes",
    "chart-latency",
];

async fn signed_in() -> (cmg_site::Store, support::TestDb, Browser, Traffic) {
    let (store, db) = test_site(Kind::Sqlite).await;
    let pki = gateway_pki("gw1.example.test");
    store
        .create_gateway(gateway_request("gw1", &pki), &support::admin())
        .await
        .expect("gateway");
    let traffic = Traffic::new(&store, "gw1", "cp1").await;
    let mut b = Browser::new(app(&store));
    b.sign_in("alice").await;
    (store, db, b, traffic)
}

fn add(ok: u64, failed: u64) -> Add {
    Add {
        status_classes: [0, ok, 0, 0, failed],
        bytes_in: 100 * (ok + failed),
        bytes_out: 1_000 * (ok + failed),
        latency_us: 4_000 * (ok + failed),
    }
}

/// How often `needle` occurs in `hay`.
fn count(hay: &str, needle: &str) -> usize {
    hay.matches(needle).count()
}

/// The rows of the table of steps (the charts' text alternative).
fn step_rows(body: &str) -> usize {
    let table = body
        .split(r#"<details id="traffic-steps">"#)
        .nth(1)
        .and_then(|t| t.split("</details>").next())
        .unwrap_or_else(|| panic!("no table of steps:\n{body}"));
    count(table, "<tr>") - 1
}

/// Each chart is an `<svg role="img">` labelled by its own title and description.
fn assert_accessible_charts(body: &str) {
    for id in CHARTS {
        assert!(
            body.contains(&format!(
                r#"<svg id="{id}" class="chart" width="760" height="210" viewBox="0 0 760 210" role="img" aria-labelledby="{id}-title {id}-desc">"#
            )),
            "{id}:\n{body}"
        );
        assert!(
            body.contains(&format!(r#"<title id="{id}-title">"#)),
            "{id}"
        );
        assert!(body.contains(&format!(r#"<desc id="{id}-desc">"#)), "{id}");
    }
    // Every SVG element is closed: an open `<rect>` or `<line>` (HTML has no void SVG
    // elements) would hide everything after it.
    for tag in ["rect", "line", "text", "g", "svg", "title", "desc"] {
        assert_eq!(
            count(body, &format!("<{tag} ")) + count(body, &format!("<{tag}>")),
            count(body, &format!("</{tag}>")),
            "<{tag}> left open"
        );
    }
    // Time labels carry their instant for the script that shows local time; the page has
    // no inline script or style.
    assert!(body.contains(r#"class="tick-x" "#) && body.contains("data-at=\""));
    assert!(
        !body.contains("<script>") && !body.contains("style="),
        "{body}"
    );
}

#[tokio::test]
async fn no_traffic_says_so_in_every_period() {
    let (_store, _db, mut b, _traffic) = signed_in().await;
    for period in ["24h", "14d", "30d"] {
        let page = b
            .get(&format!("/ui/gateways/gw1/traffic?period={period}"))
            .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert!(page.body.contains("No traffic in this period."), "{period}");
        assert!(!page.body.contains("<svg"), "{period}: no empty charts");
        assert!(!page.body.contains("traffic-totals"), "{period}");
    }
    // Unknown gateways and malformed names are not found.
    assert_eq!(
        b.get("/ui/gateways/nope/traffic").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn one_bucket_is_one_column_in_each_chart() {
    let (_store, _db, mut b, mut traffic) = signed_in().await;
    traffic.at(cmg_site::now(), A, add(3, 1)).await;
    let page = b.get("/ui/gateways/gw1/traffic?period=24h").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert_accessible_charts(&page.body);
    // One column of requests, a share of 2xx and of 5xx, bytes in and out, latency.
    assert_eq!(
        count(&page.body, r#"<rect class="req""#),
        1,
        "{}",
        page.body
    );
    assert_eq!(count(&page.body, r#"<rect class="c2""#), 1);
    assert_eq!(count(&page.body, r#"<rect class="c5""#), 1);
    assert_eq!(
        count(&page.body, r#"<rect class="c4""#),
        0,
        "no 4xx, no column"
    );
    assert_eq!(count(&page.body, r#"<rect class="in""#), 1);
    assert_eq!(count(&page.body, r#"<rect class="out""#), 1);
    assert_eq!(count(&page.body, r#"<rect class="lat""#), 1);
    assert!(
        page.body
            .contains("4 requests to all endpoints over the last 24 hours, at most 4 in one step."),
        "{}",
        page.body
    );
    assert!(page
        .body
        .contains("over the last 24 hours: 3 2xx, 0 3xx, 0 4xx, 1 5xx, 0 1xx."));
    assert!(page.body.contains("400 B in, 4.0 kB out"));
    assert!(page.body.contains("4.0 ms over the last 24 hours"));
    // The step's tooltip: its time, then its values.
    assert!(page
        .body
        .contains(r#"data-after=": 75% 2xx, 0% 3xx, 0% 4xx, 25% 5xx, 0% 1xx""#));
    // Hour steps from the hour 24 hours ago to this one, every one in the table.
    assert_eq!(step_rows(&page.body), 25);
    // The totals stay, each endpoint a link to its own charts.
    assert!(page.body.contains(r#"<table id="traffic-totals">"#));
    assert!(page.body.contains(&format!(
        r#"<a href="/ui/gateways/gw1/traffic?period=24h&amp;endpoint={A}"><code>{A}</code></a>"#
    )));
}

#[tokio::test]
async fn many_buckets_over_each_period_and_one_endpoint() {
    let (_store, _db, mut b, mut traffic) = signed_in().await;
    let now = cmg_site::now();
    // An hour of traffic in each of the last 20 hours (k + 1 requests in hour k back),
    // endpoint B in the last 3, and a day of endpoint A 10 and 20 days ago.
    for k in 0..20 {
        traffic.at(now - k * HOUR, A, add(k as u64 + 1, 0)).await;
    }
    for k in 0..3 {
        traffic.at(now - k * HOUR, B, add(0, 2)).await;
    }
    traffic.at(now - 10 * 24 * HOUR, A, add(1_000, 0)).await;
    traffic.at(now - 20 * 24 * HOUR, A, add(5_000, 0)).await;

    let day = b.get("/ui/gateways/gw1/traffic?period=24h").await;
    assert_accessible_charts(&day.body);
    assert_eq!(count(&day.body, r#"<rect class="req""#), 20, "{}", day.body);
    assert!(day
        .body
        .contains("216 requests to all endpoints over the last 24 hours"));
    assert_eq!(step_rows(&day.body), 25);

    let two_weeks = b.get("/ui/gateways/gw1/traffic?period=14d").await;
    assert_accessible_charts(&two_weeks.body);
    assert!(two_weeks
        .body
        .contains("1216 requests to all endpoints over the last 14 days"));
    assert!(two_weeks.body.contains("Requests per 6 hours"));
    assert_eq!(step_rows(&two_weeks.body), 57, "6-hour steps");
    let columns = count(&two_weeks.body, r#"<rect class="req""#);
    assert!(
        (4..=6).contains(&columns),
        "20 hours and a day: {columns} columns"
    );

    let month = b.get("/ui/gateways/gw1/traffic?period=30d").await;
    assert!(month
        .body
        .contains("6216 requests to all endpoints over the last 30 days"));
    assert_eq!(step_rows(&month.body), 61, "12-hour steps");
    assert!(
        month.body.contains(r#"data-fmt="dhm""#),
        "day and time on the axis"
    );
    // The value axis is round: 5000 requests in the top step, so ticks every 2000.
    assert!(month.body.contains(r#"class="tick-y" "#) && month.body.contains(">8000</text>"));

    // One endpoint: only its traffic, the period kept in the links.
    let one = b
        .get(&format!("/ui/gateways/gw1/traffic?period=24h&endpoint={B}"))
        .await;
    assert_accessible_charts(&one.body);
    assert!(one.body.contains(&format!(
        "6 requests to endpoint {B} over the last 24 hours"
    )));
    assert_eq!(count(&one.body, r#"<rect class="c5""#), 3);
    assert_eq!(count(&one.body, r#"<rect class="c2""#), 0);
    assert!(one.body.contains(&format!(
        r#"href="/ui/gateways/gw1/traffic?period=14d&amp;endpoint={B}""#
    )));
    assert!(one
        .body
        .contains(r#"<a href="/ui/gateways/gw1/traffic?period=24h">all endpoints</a>"#));
    // Both endpoints' totals are still listed.
    assert!(one.body.contains(&format!("<code>{A}</code>")));
    let none = b
        .get("/ui/gateways/gw1/traffic?period=24h&endpoint=/nothing")
        .await;
    assert!(none
        .body
        .contains("No traffic to this endpoint in this period."));
    assert!(!none.body.contains("<svg"));
}

#[tokio::test]
async fn an_endpoint_name_that_injects_markup_is_escaped_in_the_svg() {
    let (_store, _db, mut b, mut traffic) = signed_in().await;
    let x = r#"/x"><script>alert(1)</script><svg onload=alert(2)>&amp;"#;
    traffic.at(cmg_site::now(), x, add(1, 0)).await;
    let raw = |body: &str| {
        body.contains("<script>alert") || body.contains("<svg onload") || body.contains(r#"/x">"#)
    };

    let all = b.get("/ui/gateways/gw1/traffic").await;
    assert_eq!(all.status, StatusCode::OK);
    assert!(!raw(&all.body), "{}", all.body);
    assert!(all.body.contains(
        "<code>/x&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;svg onload=alert(2)&gt;&amp;amp;</code>"
    ), "{}", all.body);
    // The link to its charts carries it percent-encoded.
    assert!(all.body.contains(
        "endpoint=/x%22%3E%3Cscript%3Ealert%281%29%3C/script%3E%3Csvg%20onload%3Dalert%282%29%3E%26amp%3B\""
    ), "{}", all.body);

    // Its own charts name it in the SVG's title and description: escaped there too.
    let one = b
        .get(&format!(
            "/ui/gateways/gw1/traffic?endpoint={}",
            harness::enc(x)
        ))
        .await;
    assert_eq!(one.status, StatusCode::OK);
    assert!(!raw(&one.body), "{}", one.body);
    let escaped =
        "/x&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;svg onload=alert(2)&gt;&amp;amp;";
    assert!(
        one.body.contains(&format!(
            r#"<title id="chart-requests-title">Requests per hour to endpoint {escaped}</title>"#
        )),
        "{}",
        one.body
    );
    assert!(one.body.contains(&format!(
        r#"<desc id="chart-requests-desc">1 request to endpoint {escaped} over"#
    )));
}
