//! Failover: a connection point dies while requests flow and the survivor takes every
//! new request; it comes back by itself. A gateway instance restarts and the
//! connection points reconnect to it within seconds.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cmg_client::{collect_body, HttpsClient};
use cmg_e2e::{ccm_post, header_str, system_request, tag, tagged, Cert, TestCluster};
use http::StatusCode;
use tokio::sync::watch;

/// What one request of the load got.
#[derive(Debug)]
struct Outcome {
    started: Instant,
    /// Status and serving connection point, or the error.
    result: Result<(u16, String), String>,
}

async fn one_request(client: &HttpsClient, n: usize) -> Result<(u16, String), String> {
    let body = format!("load #{n}");
    let resp = client
        .request(tagged(
            ccm_post(),
            &system_request(),
            &tag("load"),
            body.clone(),
        ))
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let cp = header_str(&resp, "cmg-connection-point").to_string();
    let echoed = collect_body(resp).await.map_err(|e| e.to_string())?;
    if status != 200 {
        return Err(format!(
            "{status}: {}",
            String::from_utf8_lossy(&echoed).trim()
        ));
    }
    if echoed != body.as_bytes() {
        return Err(format!("echo differs: {echoed:?}"));
    }
    Ok((status, cp))
}

/// Waits until `rx`'s channel count satisfies `pred`, at most `within`.
async fn wait_count(
    rx: &mut watch::Receiver<usize>,
    within: Duration,
    pred: impl FnMut(&usize) -> bool,
) -> anyhow::Result<()> {
    tokio::time::timeout(within, rx.wait_for(pred)).await??;
    Ok(())
}

/// The connection points `client` reaches within a few requests (round robin).
async fn connection_points_seen(
    client: &HttpsClient,
    instance: &str,
) -> anyhow::Result<BTreeSet<String>> {
    let mut seen = BTreeSet::new();
    for n in 0..16 {
        let resp = client
            .request(tagged(
                ccm_post(),
                &system_request(),
                &tag("probe"),
                "probe",
            ))
            .await?;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(header_str(&resp, "cmg-gateway-instance"), instance);
        seen.insert(header_str(&resp, "cmg-connection-point").to_string());
        collect_body(resp).await?;
        if seen.len() == 2 && n >= 3 {
            break;
        }
    }
    Ok(seen)
}

/// A bounded request load: `workers` tasks, each sending up to `max_per_worker`
/// requests in turn to the given clients, until stopped.
struct Load {
    outcomes: Arc<Mutex<Vec<Outcome>>>,
    stop: Arc<AtomicBool>,
    done: watch::Receiver<usize>,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(clients: &[HttpsClient], workers: usize, max_per_worker: usize) -> Self {
        let outcomes = Arc::new(Mutex::new(Vec::<Outcome>::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (done_tx, done) = watch::channel(0usize);
        let done_tx = Arc::new(done_tx);
        let workers = (0..workers)
            .map(|w| {
                let (clients, outcomes, stop, done_tx) = (
                    clients.to_vec(),
                    outcomes.clone(),
                    stop.clone(),
                    done_tx.clone(),
                );
                tokio::spawn(async move {
                    for n in 0..max_per_worker {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let started = Instant::now();
                        let result = one_request(&clients[(w + n) % clients.len()], n).await;
                        outcomes
                            .lock()
                            .expect("outcomes lock")
                            .push(Outcome { started, result });
                        done_tx.send_modify(|d| *d += 1);
                    }
                })
            })
            .collect();
        Self {
            outcomes,
            stop,
            done,
            workers,
        }
    }

    /// Requests completed so far.
    fn done(&self) -> usize {
        *self.done.borrow()
    }

    /// Waits (at most 30 s) until `n` requests have completed.
    async fn wait_done(&self, n: usize) -> anyhow::Result<()> {
        let mut rx = self.done.clone();
        tokio::time::timeout(Duration::from_secs(30), rx.wait_for(|d| *d >= n))
            .await
            .map_err(|_| {
                anyhow::anyhow!("load stalled before {n} requests ({} done)", self.done())
            })??;
        Ok(())
    }

    /// Stops the workers and returns every outcome.
    async fn finish(self) -> anyhow::Result<Vec<Outcome>> {
        self.stop.store(true, Ordering::Relaxed);
        for w in self.workers {
            w.await?;
        }
        Ok(std::mem::take(
            &mut *self.outcomes.lock().expect("outcomes lock"),
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_connection_point_fails_over_and_reconnects_by_itself() -> anyhow::Result<()> {
    const WORKERS: usize = 4;
    const MAX_PER_WORKER: usize = 1000;
    const AFTER_NOTICE: usize = 200;

    let mut tc = TestCluster::start().await?;
    let survivor = tc.connectors[1].id.to_string();
    let clients = [
        tc.client(0, Cert::Valid, true)?,
        tc.client(1, Cert::Valid, false)?,
    ];

    let load = Load::start(&clients, WORKERS, MAX_PER_WORKER);
    load.wait_done(40).await?;

    let killed_at = Instant::now();
    tc.kill_connector(0);
    for g in &tc.gateways {
        wait_count(&mut g.registry.subscribe(), Duration::from_secs(15), |n| {
            *n <= 1
        })
        .await?;
    }
    let noticed_at = Instant::now();
    for g in &tc.gateways {
        // The survivor's channels only: one per data-path thread.
        let left: Vec<String> = g
            .registry
            .snapshot()
            .iter()
            .map(|c| c.connector.to_string())
            .collect();
        assert!(
            !left.is_empty() && left.iter().all(|c| *c == survivor),
            "{} still lists a dead channel: {left:?}",
            g.name
        );
    }
    let at_notice = load.done();
    let enough = load.wait_done(at_notice + AFTER_NOTICE + WORKERS).await;
    let outcomes = load.finish().await?;
    enough?;

    let (before, after): (Vec<&Outcome>, Vec<&Outcome>) =
        outcomes.iter().partition(|o| o.started < noticed_at);
    let failed_before: Vec<&Outcome> = before
        .iter()
        .copied()
        .filter(|o| !matches!(o.result, Ok((200, _))))
        .collect();
    eprintln!(
        "failover: {} requests; noticed {:?} after the kill; {} of {} requests started before that failed: {:?}",
        outcomes.len(),
        noticed_at - killed_at,
        failed_before.len(),
        before.len(),
        failed_before.iter().map(|o| &o.result).collect::<Vec<_>>()
    );
    assert!(
        after.len() >= AFTER_NOTICE,
        "only {} requests after the failover was noticed",
        after.len()
    );
    for o in &after {
        match &o.result {
            Ok((200, cp)) => assert_eq!(cp, &survivor, "a request after the failover went to {cp}"),
            other => panic!("a request started after the failover was noticed failed: {other:?}"),
        }
    }

    // Restarted, it dials both instances again by itself.
    let restarted_at = Instant::now();
    tc.start_connector(0).await?;
    tc.wait_all_channels(Duration::from_secs(15)).await?;
    eprintln!(
        "failover: connection point back on both instances after {:?}",
        restarted_at.elapsed()
    );
    let status = tc.connectors[0]
        .status
        .as_ref()
        .expect("started")
        .borrow()
        .clone();
    assert!(status.all_up() && status.channels.len() == 2, "{status:?}");
    let all: BTreeSet<String> = tc.connectors.iter().map(|c| c.id.to_string()).collect();
    for (gw, client) in clients.iter().enumerate() {
        let listed: BTreeSet<String> = tc.gateways[gw]
            .registry
            .snapshot()
            .iter()
            .map(|c| c.connector.to_string())
            .collect();
        assert_eq!(listed, all, "channels of {}", tc.gateways[gw].name);
        assert_eq!(
            connection_points_seen(client, &tc.gateways[gw].name).await?,
            all
        );
    }
    drop(clients);
    tc.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_gateway_is_rejoined_within_seconds() -> anyhow::Result<()> {
    let mut tc = TestCluster::start().await?;
    let all: BTreeSet<String> = tc.connectors.iter().map(|c| c.id.to_string()).collect();

    tc.kill_gateway(0);
    // The other instance keeps serving meanwhile.
    let other = tc.client(1, Cert::Valid, true)?;
    assert_eq!(
        connection_points_seen(&other, &tc.gateways[1].name).await?,
        all
    );

    tc.restart_gateway(0).await?;
    let restarted_at = Instant::now();
    tc.wait_all_channels(Duration::from_secs(15)).await?;
    eprintln!(
        "gateway restart: both connection points back after {:?}",
        restarted_at.elapsed()
    );
    let listed: BTreeSet<String> = tc.gateways[0]
        .registry
        .snapshot()
        .iter()
        .map(|c| c.connector.to_string())
        .collect();
    assert_eq!(listed, all);
    // Each connection point keeps one channel per data-path thread (2 here), and the
    // restarted instance places them on different threads of its own.
    let lanes = tc.spec.connector_threads;
    tokio::time::timeout(
        Duration::from_secs(15),
        tc.gateways[0]
            .registry
            .subscribe_channels()
            .wait_for(|n| *n == all.len() * lanes),
    )
    .await??;
    let channels = tc.gateways[0].registry.snapshot();
    for cp in &all {
        let shards: BTreeSet<usize> = channels
            .iter()
            .filter(|c| c.connector.as_str() == cp)
            .map(|c| c.shard)
            .collect();
        assert_eq!(
            shards,
            (0..lanes).collect(),
            "threads of {cp}'s channels: {channels:?}"
        );
    }
    for c in &tc.connectors {
        let status = c.status.as_ref().expect("started").borrow().clone();
        assert!(status.all_up(), "{}: {status:?}", c.id);
    }

    for http2 in [false, true] {
        let client = tc.client(0, Cert::Valid, http2)?;
        assert_eq!(
            connection_points_seen(&client, &tc.gateways[0].name).await?,
            all,
            "h2={http2}"
        );
    }
    tc.shutdown().await;
    Ok(())
}

/// A connection point stopped gracefully closes its channels with GOAWAY: requests in
/// flight finish and new ones go to the other connection point, so none fails (a
/// request the GOAWAY refused unprocessed is replayed by the gateway on another channel).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gracefully_stopped_connection_point_loses_no_request() -> anyhow::Result<()> {
    let mut tc = TestCluster::start().await?;
    let survivor = tc.connectors[1].id.to_string();
    let clients = [
        tc.client(0, Cert::Valid, true)?,
        tc.client(1, Cert::Valid, false)?,
    ];
    let load = Load::start(&clients, 4, 1000);
    load.wait_done(40).await?;
    let stopping = Instant::now();
    tc.stop_connector(0).await;
    // Nothing holds the drain: the requests in flight are short, and the gateways'
    // settings long polls on its channels end with the GOAWAY (a few ms here), well
    // inside the 10 s grace period.
    let took = stopping.elapsed();
    eprintln!("graceful stop of the connection point took {took:?}");
    assert!(took < Duration::from_secs(5), "graceful stop took {took:?}");
    for g in &tc.gateways {
        wait_count(&mut g.registry.subscribe(), Duration::from_secs(15), |n| {
            *n <= 1
        })
        .await?;
    }
    let stopped_at = Instant::now();
    let enough = load.wait_done(load.done() + 100).await;
    let outcomes = load.finish().await?;
    enough?;
    let failed: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| !matches!(o.result, Ok((200, _))))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} requests failed: {failed:?}",
        failed.len(),
        outcomes.len()
    );
    for o in outcomes.iter().filter(|o| o.started >= stopped_at) {
        assert!(
            matches!(&o.result, Ok((200, cp)) if *cp == survivor),
            "{o:?}"
        );
    }
    tc.shutdown().await;
    Ok(())
}
