//! `cmg cert demo-pki DIR` and `cmg cert verify`: the verification is
//! `cmg_pki::cli::verify_files`, which runs `cmg_pki::verify::verify_chain`, the same
//! function the gateway's TLS client verifier calls.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use cmg_pki::demo::{DemoPki, DemoPkiSpec};
use cmg_pki::verify::Purpose;
use cmg_proto::{ConnectorId, SiteCode};

#[derive(Debug, Subcommand)]
pub enum CertCommand {
    /// Write a complete demo PKI into DIR (CAs, gateway, connection points, clients,
    /// and for tests expired / wrong-EKU / untrusted / revoked client certificates).
    DemoPki {
        dir: PathBuf,
        /// The gateway's service name (server certificate name).
        #[arg(long, default_value = cmg_cluster::spec::SERVICE_NAME)]
        service_name: String,
        #[arg(long, default_value = cmg_cluster::spec::SITE)]
        site: String,
        /// Connection point IDs to issue certificates for.
        #[arg(long = "connector", default_values_t = vec!["cp1".to_string(), "cp2".to_string()])]
        connectors: Vec<String>,
    },
    /// Verify LEAF.pem (further certificates in it are presented intermediates):
    /// exit 0 with a summary when valid for the purpose, 1 with the reason otherwise
    /// (2 when a file or argument cannot be used).
    Verify {
        /// Trusted roots (a file may be a PEM bundle of several).
        #[arg(long = "trust", required = true)]
        trust: Vec<PathBuf>,
        #[arg(long = "intermediate")]
        intermediates: Vec<PathBuf>,
        /// CRL files: revocation is then checked, failing closed as in the gateway.
        #[arg(long = "crl")]
        crls: Vec<PathBuf>,
        /// Fetch CRLs from the chain's http:// distribution points (fail-closed).
        #[arg(long)]
        crl_fetch: bool,
        /// Ask the OCSP responders (AIA) of certificates no usable CRL covers
        /// (fail-closed).
        #[arg(long)]
        ocsp: bool,
        /// Print one JSON object: {"ok":false,"check":..,"code":..,"detail":..}.
        #[arg(long)]
        json: bool,
        /// Verification time, RFC 3339 (default: now).
        #[arg(long)]
        time: Option<String>,
        #[arg(long, default_value = "client")]
        purpose: Purpose,
        /// DNS name the certificate must be valid for.
        #[arg(long)]
        name: Option<String>,
        leaf: PathBuf,
    },
}

pub fn run(cmd: CertCommand) -> ExitCode {
    match cmd {
        CertCommand::DemoPki {
            dir,
            service_name,
            site,
            connectors,
        } => match demo_pki(dir, service_name, site, connectors) {
            Ok(summary) => {
                println!("{summary}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("cmg cert demo-pki: {e}");
                ExitCode::from(2)
            }
        },
        CertCommand::Verify {
            trust,
            intermediates,
            crls,
            crl_fetch,
            ocsp,
            json,
            time,
            purpose,
            name,
            leaf,
        } => {
            let req = cmg_pki::cli::VerifyRequest {
                trust,
                intermediates,
                crls,
                crl_fetch,
                ocsp,
                time,
                purpose,
                name,
                leaf,
            };
            let verdict = cmg_pki::cli::verify_request(&req);
            match json {
                true => println!("{}", verdict.json(&req)),
                false => println!("{}", verdict.line(&req)),
            }
            match verdict {
                cmg_pki::cli::Verdict::Ok { .. } => ExitCode::SUCCESS,
                cmg_pki::cli::Verdict::Rejected(_) => ExitCode::from(1),
                cmg_pki::cli::Verdict::Input(_) => ExitCode::from(2),
            }
        }
    }
}

fn demo_pki(
    dir: PathBuf,
    service_name: String,
    site: String,
    connectors: Vec<String>,
) -> Result<String, String> {
    let site = SiteCode::new(site).map_err(|e| e.to_string())?;
    let connectors = connectors
        .into_iter()
        .map(|c| ConnectorId::new(c).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let spec = DemoPkiSpec {
        service_name,
        site,
        connectors,
        crl_url: None,
    };
    let paths = DemoPki::generate(&spec)
        .map_err(|e| e.to_string())?
        .write(&dir)
        .map_err(|e| e.to_string())?;
    serde_json::to_string_pretty(&paths).map_err(|e| e.to_string())
}
