//! `cmg demo`: the whole system on loopback (demo PKI, reference management point, the
//! site, two gateway instances, two connection points, two devices running the `cmg
//! client` agent, one on the intranet and one on the internet), built from the site as
//! an administrator would (gateway, trust, role and connection points through its REST
//! API, instances from its exports), a self-check through every instance and
//! connection point, of the site's view and of each device's connection type and
//! policy path, `demo.json` for scripts, then serving until Ctrl-C.

mod check;
mod clients;
mod site_check;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use cmg_cluster::{Cluster, ClusterSpec};

use crate::{logging, signal};

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep the demo's state (PKI, configs, logs, journal, demo.json) in DIR
    /// (default: a temporary directory removed at exit).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Exit after the self-check: status 0 only if every check passed.
    #[arg(long)]
    once: bool,
    /// Number of gateway instances (1 to 16).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=16))]
    gateways: u8,
    /// Number of connection points.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=8))]
    connectors: u8,
    /// Data-path threads of each gateway instance.
    #[arg(long, default_value_t = 2)]
    gateway_threads: usize,
}

pub fn run(args: DemoArgs) -> ExitCode {
    let (dir, _temp) = match &args.dir {
        Some(d) => (d.clone(), None),
        None => match tempfile::Builder::new().prefix("cmg-demo-").tempdir() {
            Ok(t) => (t.path().to_path_buf(), Some(t)),
            Err(e) => {
                eprintln!("cmg demo: cannot create a temporary directory: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let _guards = match logging::init(Some(&dir.join("logs")), true) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("cmg demo: cannot open {}: {e}", dir.join("logs").display());
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cmg demo: cannot start runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let code = rt.block_on(demo(args, dir));
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    code
}

async fn demo(args: DemoArgs, dir: PathBuf) -> ExitCode {
    println!("cmg demo: starting in {}", dir.display());
    let mut spec = ClusterSpec::demo(dir.clone());
    spec.gateways = args.gateways.into();
    spec.connectors = args.connectors.into();
    spec.gateway_threads = args.gateway_threads;
    spec.site = true;
    let started = std::time::Instant::now();
    let mut cluster = match Cluster::start(spec).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cmg demo: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = clients::enrol(&mut cluster).await {
        eprintln!("cmg demo: enrolling the clients: {e}");
        return ExitCode::from(2);
    }
    let contract = match cluster.write_contract() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("cmg demo: {e}");
            return ExitCode::from(2);
        }
    };
    println!("  started in {:?}", started.elapsed());
    if let Some(site) = &cluster.site {
        println!(
            "  site: {} (database {}, admin token {})",
            site.url,
            site.dir.join("site.db").display(),
            site.admin_token_file.display()
        );
    }
    for g in &cluster.gateways {
        println!(
            "  gateway {}: client https://{} channel {} admin http://{}",
            g.name, g.client, g.channel, g.admin
        );
    }
    for c in &cluster.connectors {
        println!("  connection point {}: channels to every gateway up", c.id);
    }
    println!(
        "  management point: http://{} (journal {})",
        cluster.mp_addr,
        cluster.mp_journal.display()
    );
    for d in &cluster.devices {
        println!(
            "  client {} (expected {}): cmg client status --config {}",
            d.spec.name,
            d.spec.expect(),
            d.config.display()
        );
    }
    println!("  contract: {}", contract.display());
    println!();

    let mut report = check::run(&cluster).await;
    clients::run(&mut cluster, &mut report).await;
    report.print();
    let passed = report.passed();
    if args.once {
        cluster.shutdown().await;
        return if passed {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        };
    }
    let g = &cluster.gateways[0];
    let p = &cluster.pki;
    println!();
    println!("The demo keeps running; press Ctrl-C to stop. Try:");
    println!(
        "  curl --resolve {sn}:{port}:127.0.0.1 --cacert {ca} --cert {cert} --key {key} \\\n    -X CCM_POST --data-binary 'hello' https://{sn}:{port}{url}/request -i",
        sn = cmg_cluster::spec::SERVICE_NAME,
        port = g.client.port(),
        ca = p.root_ca.display(),
        cert = p.client_cert.display(),
        key = p.client_key.display(),
        url = cmg_cluster::spec::external_prefix("CCM_System"),
    );
    if let Some(site) = &cluster.site {
        println!(
            "  cmg site --dir {} status --url {}",
            site.dir.display(),
            site.url
        );
    }
    println!("Logs: {}", dir.join("logs").display());
    signal::stop_requested().await;
    println!("cmg demo: stopping");
    cluster.shutdown().await;
    if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
