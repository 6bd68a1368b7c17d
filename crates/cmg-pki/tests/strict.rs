//! The RFC 5280 corpus: chains and CRLs minted here (rcgen, and the openssl CLI for
//! the CRLs rcgen cannot make), each judged by `verify_chain` and by
//! `openssl verify -x509_strict` as a second opinion. Where the two disagree, the case
//! carries the reason, and docs/pki.md lists it; any other disagreement fails.
//!
//! Needs the `openssl` command (`.ci/run` installs it).

#[path = "strict/constraints.rs"]
mod constraints;

use std::path::Path;
use std::process::Command;

use cmg_pki::{verify_chain, Purpose, TrustStore, VerifyOptions};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CustomExtension,
    DistinguishedName, DnType, ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, Issuer, KeyIdMethod,
    KeyPair, KeyUsagePurpose, NameConstraints, SanType, SerialNumber,
};
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer};
use time::{Duration, OffsetDateTime};

/// A certificate with its key and the parameters it was made from.
struct Made {
    params: CertificateParams,
    key: KeyPair,
    der: CertificateDer<'static>,
    pem: String,
}

impl Made {
    fn issuer(&self) -> Issuer<'_, &KeyPair> {
        Issuer::from_params(&self.params, &self.key)
    }
}

fn dn(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Contoso");
    dn.push(DnType::CommonName, cn);
    dn
}

/// A CA's parameters as RFC 5280 wants them; cases break one thing at a time.
fn ca_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = dn(cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.key_identifier_method = KeyIdMethod::Sha256;
    p
}

fn leaf_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::new(vec![format!("{cn}.contoso.example")]).expect("params");
    p.distinguished_name = dn(cn);
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    p.use_authority_key_identifier_extension = true;
    p
}

fn self_signed(params: CertificateParams) -> Made {
    let key = KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("self-signed");
    Made {
        der: cert.der().clone(),
        pem: cert.pem(),
        params,
        key,
    }
}

fn signed(mut params: CertificateParams, by: &Made) -> Made {
    params.use_authority_key_identifier_extension |= params.is_ca != IsCa::ExplicitNoCa;
    let key = KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, &by.issuer()).expect("signed");
    Made {
        der: cert.der().clone(),
        pem: cert.pem(),
        params,
        key,
    }
}

/// A CRL of `ca` listing nothing, as rcgen makes it (cRLNumber 1, non-critical).
fn crl(ca: &Made) -> CertificateRevocationListDer<'static> {
    let now = OffsetDateTime::now_utc();
    let params = CertificateRevocationListParams {
        this_update: now - Duration::hours(1),
        next_update: now + Duration::days(7),
        crl_number: SerialNumber::from_slice(&[1]),
        issuing_distribution_point: None,
        revoked_certs: Vec::new(),
        key_identifier_method: KeyIdMethod::Sha256,
    };
    params.signed_by(&ca.issuer()).expect("crl").der().clone()
}

/// A CRL of `ca` made by `openssl ca -gencrl`: without cRLNumber, or (`number`) with
/// `crlNumber = <value>` from the extension section (e.g. `critical,DER:02:01:05`: openssl only
/// sets cRLNumber from a counter file, or in raw DER).
fn openssl_crl(
    dir: &Path,
    ca: &Made,
    number: Option<&str>,
) -> CertificateRevocationListDer<'static> {
    let ca_dir = dir.join("openssl-ca");
    std::fs::create_dir_all(&ca_dir).expect("dir");
    std::fs::write(ca_dir.join("index"), "").expect("index");
    std::fs::write(ca_dir.join("ca.pem"), &ca.pem).expect("ca");
    std::fs::write(ca_dir.join("ca.key"), ca.key.serialize_pem()).expect("key");
    let exts = number
        .map(|n| format!("[crlexts]\ncrlNumber = {n}\n"))
        .unwrap_or_default();
    let config = format!(
        "[ca]\ndefault_ca = c\n[c]\ndatabase = {}\ndefault_md = sha256\ndefault_crl_days = 7\n{exts}",
        ca_dir.join("index").display()
    );
    std::fs::write(ca_dir.join("ca.cnf"), config).expect("cnf");
    let out = ca_dir.join("crl.der");
    let mut cmd = Command::new("openssl");
    cmd.args(["ca", "-gencrl", "-config"])
        .arg(ca_dir.join("ca.cnf"))
        .arg("-cert")
        .arg(ca_dir.join("ca.pem"))
        .arg("-keyfile")
        .arg(ca_dir.join("ca.key"))
        .arg("-out")
        .arg(ca_dir.join("crl.pem"));
    if number.is_some() {
        cmd.args(["-crlexts", "crlexts"]);
    }
    let status = cmd.output().expect("run openssl ca");
    assert!(status.status.success(), "openssl ca: {status:?}");
    let conv = Command::new("openssl")
        .args(["crl", "-outform", "DER", "-in"])
        .arg(ca_dir.join("crl.pem"))
        .arg("-out")
        .arg(&out)
        .output()
        .expect("run openssl crl");
    assert!(conv.status.success(), "openssl crl: {conv:?}");
    CertificateRevocationListDer::from(std::fs::read(out).expect("crl"))
}

/// One chain to judge.
struct Case {
    name: &'static str,
    root: Made,
    /// The certificates the client presents besides the leaf (any order).
    intermediates: Vec<Made>,
    leaf: Made,
    crls: Vec<CertificateRevocationListDer<'static>>,
    /// cmg's verdict: `None` accepts, `Some(code)` refuses with that code.
    cmg: Option<&'static str>,
    /// Why cmg and OpenSSL disagree, when they do (docs/pki.md says the same).
    difference: Option<&'static str>,
}

/// Root → intermediate → leaf, every certificate as RFC 5280 wants it; `tweak` gets
/// the parameters of (root, intermediate, leaf) before they are signed.
fn chain(
    name: &'static str,
    tweak: impl FnOnce(&mut CertificateParams, &mut CertificateParams, &mut CertificateParams),
) -> Case {
    let (mut r, mut i, mut l) = (
        ca_params("Corpus Root"),
        ca_params("Corpus Issuing CA"),
        leaf_params("device"),
    );
    tweak(&mut r, &mut i, &mut l);
    let root = self_signed(r);
    let inter = signed(i, &root);
    let leaf = signed(l, &inter);
    Case {
        name,
        root,
        intermediates: vec![inter],
        leaf,
        crls: Vec::new(),
        cmg: None,
        difference: None,
    }
}

fn refused(mut case: Case, code: &'static str) -> Case {
    case.cmg = Some(code);
    case
}

fn critical_private_extension() -> CustomExtension {
    // An OID under the example arc (1.3.6.1.4.1.32473, RFC 5612), content NULL.
    let mut ext = CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 32473, 1], vec![5, 0]);
    ext.set_criticality(true);
    ext
}

/// basicConstraints cA=TRUE, not critical, as a raw extension (rcgen always marks its
/// own critical).
fn non_critical_ca_basic_constraints(p: &mut CertificateParams) {
    p.is_ca = IsCa::NoCa;
    p.custom_extensions.push(CustomExtension::from_oid_content(
        &[2, 5, 29, 19],
        vec![0x30, 0x03, 0x01, 0x01, 0xff],
    ));
}

fn corpus(dir: &Path) -> Vec<Case> {
    let past = OffsetDateTime::now_utc() - Duration::days(30);
    let future = OffsetDateTime::now_utc() + Duration::days(30);
    let mut cases = vec![
        chain("conforming chain", |_, _, _| {}),
        refused(
            chain("root expired", |r, _, _| r.not_after = past),
            "anchor_expired",
        ),
        refused(
            chain("root not yet valid", |r, _, _| r.not_before = future),
            "anchor_not_yet_valid",
        ),
        refused(
            chain("issuer keyUsage without keyCertSign", |_, i, _| {
                i.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::CrlSign]
            }),
            "issuer_not_cert_signer",
        ),
        refused(
            chain("issuer without keyUsage", |_, i, _| i.key_usages.clear()),
            "issuer_not_cert_signer",
        ),
        refused(
            chain("root keyUsage without keyCertSign", |r, _, _| {
                r.key_usages = vec![KeyUsagePurpose::CrlSign]
            }),
            "issuer_not_cert_signer",
        ),
        refused(
            chain("intermediate basicConstraints not critical", |_, i, _| {
                non_critical_ca_basic_constraints(i)
            }),
            "ca_basic_constraints_not_critical",
        ),
        refused(
            chain("root basicConstraints not critical", |r, _, _| {
                non_critical_ca_basic_constraints(r)
            }),
            "ca_basic_constraints_not_critical",
        ),
        refused(
            chain("root without basicConstraints", |r, _, _| {
                r.is_ca = IsCa::NoCa
            }),
            "ca_without_basic_constraints",
        ),
        refused(
            chain("unknown critical extension on the root", |r, _, _| {
                r.custom_extensions.push(critical_private_extension())
            }),
            "unknown_critical_extension",
        ),
        refused(
            chain("unknown critical extension on the leaf", |_, _, l| {
                l.custom_extensions.push(critical_private_extension())
            }),
            "unknown_critical_extension",
        ),
        refused(
            chain("leaf asserting keyCertSign", |_, _, l| {
                l.key_usages.push(KeyUsagePurpose::KeyCertSign)
            }),
            "leaf_cert_signer",
        ),
        refused(
            chain("leaf without authorityKeyIdentifier", |_, _, l| {
                l.use_authority_key_identifier_extension = false
            }),
            "missing_authority_key_id",
        ),
    ];

    // An intermediate without subjectKeyIdentifier: rcgen always writes one for a CA,
    // so the intermediate is an ExplicitNoCa-shaped certificate with a raw cA=TRUE
    // basicConstraints, critical.
    let mut no_ski = chain("intermediate without subjectKeyIdentifier", |_, i, _| {
        i.is_ca = IsCa::NoCa;
        let mut bc =
            CustomExtension::from_oid_content(&[2, 5, 29, 19], vec![0x30, 0x03, 0x01, 0x01, 0xff]);
        bc.set_criticality(true);
        i.custom_extensions.push(bc);
        i.use_authority_key_identifier_extension = true;
    });
    no_ski.cmg = Some("missing_subject_key_id");
    cases.push(no_ski);

    // CRLs (every certificate below the root needs one: -crl_check_all, depth chain).
    let mut with_crls = chain("conforming chain with CRLs", |_, _, _| {});
    with_crls.crls = vec![crl(&with_crls.root), crl(&with_crls.intermediates[0])];
    cases.push(with_crls);

    let mut not_crl_signer = chain("CRL signed by a key without cRLSign", |_, i, _| {
        i.key_usages = vec![KeyUsagePurpose::KeyCertSign]
    });
    // rcgen will not sign a CRL with such a key; openssl will.
    not_crl_signer.crls = vec![
        crl(&not_crl_signer.root),
        openssl_crl(dir, &not_crl_signer.intermediates[0], Some("DER:02:01:05")),
    ];
    not_crl_signer.cmg = Some("revocation_unknown");
    cases.push(not_crl_signer);

    let mut no_number = chain("CRL without cRLNumber", |_, _, _| {});
    no_number.crls = vec![
        crl(&no_number.root),
        openssl_crl(dir, &no_number.intermediates[0], None),
    ];
    no_number.cmg = Some("bad_crl");
    no_number.difference = Some(
        "OpenSSL uses a CRL without cRLNumber; RFC 5280 section 5.2.3 says conforming \
         CRL issuers MUST include it, and cmg refuses the CRL when it is loaded",
    );
    cases.push(no_number);

    let mut critical_number = chain("CRL with a critical cRLNumber", |_, _, _| {});
    critical_number.crls = vec![
        crl(&critical_number.root),
        openssl_crl(
            dir,
            &critical_number.intermediates[0],
            Some("critical,DER:02:01:05"),
        ),
    ];
    // OpenSSL refuses it too ("unhandled critical CRL extension").
    critical_number.cmg = Some("bad_crl");
    cases.push(critical_number);

    cases.extend(constraints::cases());
    cases.push(constraints::sha1_rollover(dir));
    cases
}

/// cmg's verdict: `None` for accepted, else the error code (`bad_crl` when the CRLs
/// are refused as the store loads them).
fn cmg_verdict(case: &Case) -> Option<String> {
    let inter: Vec<CertificateDer<'static>> =
        case.intermediates.iter().map(|m| m.der.clone()).collect();
    let store = match TrustStore::new(vec![case.root.der.clone()], Vec::new())
        .and_then(|s| s.with_crls(case.crls.clone()))
    {
        Ok(store) => store,
        Err(cmg_pki::PkiError::BadCrl { .. }) => return Some("bad_crl".into()),
        Err(e) => panic!("{}: store: {e}", case.name),
    };
    let opts = VerifyOptions::new(Purpose::Client);
    match verify_chain(&store, &case.leaf.der, &inter, &opts) {
        Ok(_) => None,
        Err(e) => Some(e.code().to_owned()),
    }
}

/// OpenSSL's verdict: `Ok(())` or its message.
fn openssl_verdict(dir: &Path, case: &Case) -> Result<(), String> {
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        path
    };
    let root = write("root.pem", case.root.pem.clone());
    let leaf = write("leaf.pem", case.leaf.pem.clone());
    let mut cmd = Command::new("openssl");
    cmd.args(["verify", "-x509_strict", "-purpose", "sslclient", "-CAfile"])
        .arg(&root);
    if !case.intermediates.is_empty() {
        let pems: String = case.intermediates.iter().map(|m| m.pem.clone()).collect();
        cmd.arg("-untrusted").arg(write("untrusted.pem", pems));
    }
    if !case.crls.is_empty() {
        let pems: String = case
            .crls
            .iter()
            .map(|c| {
                let body = base64_lines(c.as_ref());
                format!("-----BEGIN X509 CRL-----\n{body}-----END X509 CRL-----\n")
            })
            .collect();
        cmd.arg("-crl_check_all")
            .arg("-CRLfile")
            .arg(write("crls.pem", pems));
    }
    let out = cmd.arg(&leaf).output().expect("run openssl verify");
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn base64_lines(der: &[u8]) -> String {
    use base64::Engine;
    let text = base64::engine::general_purpose::STANDARD.encode(der);
    text.as_bytes()
        .chunks(64)
        .map(|l| format!("{}\n", String::from_utf8_lossy(l)))
        .collect()
}

#[test]
fn corpus_agrees_with_openssl_x509_strict_except_where_documented() {
    let dir = tempfile::tempdir().expect("dir");
    let mut report = Vec::new();
    for case in corpus(dir.path()) {
        let cmg = cmg_verdict(&case);
        assert_eq!(cmg.as_deref(), case.cmg, "{}: cmg's verdict", case.name);
        let openssl = openssl_verdict(dir.path(), &case);
        let agree = cmg.is_none() == openssl.is_ok();
        match (agree, case.difference) {
            (true, None) => {}
            (false, Some(_)) => {}
            (true, Some(why)) => panic!(
                "{}: documented as a difference ({why}) but cmg and OpenSSL agree",
                case.name
            ),
            (false, None) => panic!(
                "{}: cmg says {cmg:?}, OpenSSL says {openssl:?}, and no reason is documented",
                case.name
            ),
        }
        report.push(format!(
            "{}: cmg {cmg:?}, openssl {:?}",
            case.name,
            openssl.err()
        ));
    }
    // The verdicts, for `cargo test -- --nocapture`.
    println!("{}", report.join("\n"));
}

#[test]
fn refusals_name_the_certificate_and_the_rule() {
    let case = refused(
        chain("root without basicConstraints", |r, _, _| {
            r.is_ca = IsCa::NoCa
        }),
        "ca_without_basic_constraints",
    );
    let store = TrustStore::new(vec![case.root.der.clone()], Vec::new()).expect("store");
    let inter = vec![case.intermediates[0].der.clone()];
    let err = verify_chain(
        &store,
        &case.leaf.der,
        &inter,
        &VerifyOptions::new(Purpose::Client),
    )
    .expect_err("refused");
    let text = err.to_string();
    assert!(
        text.contains("root \"O=Contoso, CN=Corpus Root\""),
        "{text}"
    );
    assert!(text.contains("basicConstraints"), "{text}");
    assert_eq!(err.check(), "chain");
}
