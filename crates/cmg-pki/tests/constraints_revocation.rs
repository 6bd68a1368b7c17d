//! Revocation under cmg's own path check (a chain webpki refuses for a directoryName
//! name constraint, which RFC 5280 allows): the leaf's CRL and the intermediate's
//! CRL are fetched from their distribution points on a loopback server, and a
//! revoked intermediate is refused.

use std::time::Duration;

use cmg_pki::revocation::publish::CrlServer;
use cmg_pki::revocation::{FetchLimits, RevocationChecker, RevocationConfig};
use cmg_pki::{verify_chain, Purpose, TrustStore, VerifyError, VerifyOptions};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CrlDistributionPoint,
    DistinguishedName, DnType, ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, Issuer, KeyIdMethod,
    KeyPair, KeyUsagePurpose, NameConstraints, RevocationReason, RevokedCertParams, SerialNumber,
};
use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;

struct Made {
    params: CertificateParams,
    key: KeyPair,
    der: CertificateDer<'static>,
}

fn dn(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Contoso");
    dn.push(DnType::CommonName, cn);
    dn
}

fn ca_params(cn: &str, crl_url: Option<String>) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = dn(cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.key_identifier_method = KeyIdMethod::Sha256;
    p.crl_distribution_points = crl_url
        .into_iter()
        .map(|u| CrlDistributionPoint { uris: vec![u] })
        .collect();
    p
}

fn make(params: CertificateParams, by: Option<&Made>) -> Made {
    let key = KeyPair::generate().expect("key");
    let cert = match by {
        Some(by) => params
            .signed_by(&key, &Issuer::from_params(&by.params, &by.key))
            .expect("signed"),
        None => params.self_signed(&key).expect("self-signed"),
    };
    Made {
        der: cert.der().clone(),
        params,
        key,
    }
}

/// A CRL of `ca`, revoking `revoked` (serial numbers).
fn crl(ca: &Made, revoked: &[&[u8]]) -> Vec<u8> {
    let now = OffsetDateTime::now_utc();
    let params = CertificateRevocationListParams {
        this_update: now - time::Duration::hours(1),
        next_update: now + time::Duration::days(7),
        crl_number: SerialNumber::from_slice(&[1]),
        issuing_distribution_point: None,
        revoked_certs: revoked
            .iter()
            .map(|serial| RevokedCertParams {
                serial_number: SerialNumber::from_slice(serial),
                revocation_time: now - time::Duration::hours(1),
                reason_code: Some(RevocationReason::KeyCompromise),
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    };
    params
        .signed_by(&Issuer::from_params(&ca.params, &ca.key))
        .expect("crl")
        .der()
        .to_vec()
}

const CA_SERIAL: [u8; 2] = [0x01, 0x42];

/// root → CA (directoryName constraint O=Contoso) → leaf, each below the root naming
/// its issuer's CRL on `server`. The root's CRL revokes the CA when `revoke_ca`.
fn chain(server: &CrlServer, revoke_ca: bool) -> (Made, Made, Made) {
    let base = server.base_url();
    let root = make(ca_params("Fallback Root", None), None);
    let mut ca = ca_params("Fallback CA", Some(format!("{base}/root.crl")));
    ca.serial_number = Some(SerialNumber::from_slice(&CA_SERIAL));
    let mut subtree = DistinguishedName::new();
    subtree.push(DnType::OrganizationName, "Contoso");
    ca.name_constraints = Some(NameConstraints {
        permitted_subtrees: vec![GeneralSubtree::DirectoryName(subtree)],
        excluded_subtrees: Vec::new(),
    });
    ca.use_authority_key_identifier_extension = true;
    let ca = make(ca, Some(&root));
    let mut leaf = CertificateParams::new(vec!["device.contoso.example".into()]).expect("leaf");
    leaf.distinguished_name = dn("device");
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    leaf.use_authority_key_identifier_extension = true;
    leaf.crl_distribution_points = vec![CrlDistributionPoint {
        uris: vec![format!("{base}/ca.crl")],
    }];
    let leaf = make(leaf, Some(&ca));
    let revoked: &[&[u8]] = if revoke_ca { &[&CA_SERIAL] } else { &[] };
    server.set("root.crl", crl(&root, revoked));
    server.set("ca.crl", crl(&ca, &[]));
    (root, ca, leaf)
}

fn fetching_store(root: &Made) -> TrustStore {
    let config = RevocationConfig {
        limits: FetchLimits {
            connect_timeout: Duration::from_secs(1),
            timeout: Duration::from_secs(2),
            max_bytes: 256 * 1024,
        },
        handshake_wait: Duration::from_secs(2),
        retry_after: Duration::from_millis(200),
        ..RevocationConfig::default()
    };
    let roots = vec![root.der.clone()];
    let checker = RevocationChecker::new(config, roots.clone(), Vec::new()).expect("checker");
    TrustStore::new(roots, Vec::new())
        .expect("store")
        .with_revocation(checker)
}

async fn verify(store: &TrustStore, leaf: &Made, ca: &Made) -> Result<(), VerifyError> {
    let (store, leaf, ca) = (store.clone(), leaf.der.clone(), ca.der.clone());
    tokio::task::spawn_blocking(move || {
        verify_chain(&store, &leaf, &[ca], &VerifyOptions::new(Purpose::Client)).map(|_| ())
    })
    .await
    .expect("join")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetched_crls_decide_under_cmgs_own_path_check() {
    let server = CrlServer::start(([127, 0, 0, 1], 0).into())
        .await
        .expect("server");
    let (root, ca, leaf) = chain(&server, false);
    let store = fetching_store(&root);
    verify(&store, &leaf, &ca).await.expect("good chain");
    assert!(server.hits() >= 2, "both CRLs fetched: {}", server.hits());

    // Without the server's CRLs (nothing published under those names), fail closed.
    let empty = CrlServer::start(([127, 0, 0, 1], 0).into())
        .await
        .expect("server");
    let (root, ca, leaf) = chain(&empty, false);
    empty.set("root.crl", Vec::new());
    let err = verify(&fetching_store(&root), &leaf, &ca)
        .await
        .expect_err("no usable CRL of the root");
    assert_eq!(err.code(), "revocation_unknown", "{err}");
    assert!(err.to_string().contains("intermediate 1"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_intermediate_is_refused_under_cmgs_own_path_check() {
    let server = CrlServer::start(([127, 0, 0, 1], 0).into())
        .await
        .expect("server");
    let (root, ca, leaf) = chain(&server, true);
    let err = verify(&fetching_store(&root), &leaf, &ca)
        .await
        .expect_err("revoked CA");
    assert_eq!(err.code(), "revoked", "{err}");
}
