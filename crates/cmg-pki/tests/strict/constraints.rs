//! The corpus cases where rustls-webpki 0.103 refuses what RFC 5280 allows, and cmg's
//! own check decides (pathLenConstraint above self-issued intermediates, rfc822Name
//! and directoryName name constraints): each way, within and beyond the constraint.

use super::*;

fn emails(base: GeneralSubtree, excluded: bool) -> Option<NameConstraints> {
    let (permitted_subtrees, excluded_subtrees) = if excluded {
        (Vec::new(), vec![base])
    } else {
        (vec![base], Vec::new())
    };
    Some(NameConstraints {
        permitted_subtrees,
        excluded_subtrees,
    })
}

fn email_case(
    name: &'static str,
    base: &str,
    excluded: bool,
    email: &str,
    cmg: Option<&'static str>,
) -> Case {
    let mut case = chain(name, |_, i, l| {
        i.name_constraints = emails(GeneralSubtree::Rfc822Name(base.into()), excluded);
        l.subject_alt_names
            .push(SanType::Rfc822Name(email.try_into().expect("ia5")));
    });
    case.cmg = cmg;
    case
}

fn organization(o: &str) -> DistinguishedName {
    let mut base = DistinguishedName::new();
    base.push(DnType::OrganizationName, o);
    base
}

fn directory_case(
    name: &'static str,
    base: DistinguishedName,
    excluded: bool,
    cmg: Option<&'static str>,
) -> Case {
    let mut case = chain(name, |_, i, _| {
        i.name_constraints = emails(GeneralSubtree::DirectoryName(base), excluded);
    });
    case.cmg = cmg;
    case
}

/// root → CA (pathLenConstraint `len`) → the same CA under a new key, self-issued
/// (a key rollover) → `below` more CAs → leaf.
fn rollover(name: &'static str, root_len: Option<u8>, len: u8, below: usize) -> Case {
    rollover_to(name, root_len, len, below, leaf_params("device"))
}

/// [`rollover`], with the leaf made from `leaf`.
fn rollover_to(
    name: &'static str,
    root_len: Option<u8>,
    len: u8,
    below: usize,
    leaf: CertificateParams,
) -> Case {
    let mut r = ca_params("Corpus Root");
    if let Some(n) = root_len {
        r.is_ca = IsCa::Ca(BasicConstraints::Constrained(n));
    }
    let root = self_signed(r);
    let mut ca = ca_params("Corpus Issuing CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(len));
    ca.serial_number = Some(SerialNumber::from_slice(&CA_SERIAL));
    let ca = signed(ca, &root);
    let mut intermediates = vec![signed(ca_params("Corpus Issuing CA"), &ca)];
    for n in 0..below {
        let last = intermediates.last().expect("one");
        let next = signed(ca_params(&format!("Corpus Sub CA {n}")), last);
        intermediates.push(next);
    }
    let leaf = signed(leaf, intermediates.last().expect("one"));
    intermediates.push(ca);
    Case {
        name,
        root,
        intermediates,
        leaf,
        crls: Vec::new(),
        cmg: None,
        difference: None,
    }
}

/// The serial number of the CA under a pathLenConstraint in [`rollover`].
const CA_SERIAL: [u8; 2] = [0x01, 0x42];

/// A CRL of `ca` revoking the certificate with serial `serial`.
fn crl_revoking(ca: &Made, serial: &[u8]) -> CertificateRevocationListDer<'static> {
    let now = OffsetDateTime::now_utc();
    let params = CertificateRevocationListParams {
        this_update: now - Duration::hours(1),
        next_update: now + Duration::days(7),
        crl_number: SerialNumber::from_slice(&[2]),
        issuing_distribution_point: None,
        revoked_certs: vec![rcgen::RevokedCertParams {
            serial_number: SerialNumber::from_slice(serial),
            revocation_time: now - Duration::hours(1),
            reason_code: Some(rcgen::RevocationReason::KeyCompromise),
            invalidity_date: None,
        }],
        key_identifier_method: KeyIdMethod::Sha256,
    };
    params.signed_by(&ca.issuer()).expect("crl").der().clone()
}

fn dns_case(name: &'static str, base: &str, cn: &str, san: bool) -> Case {
    chain(name, |_, i, l| {
        i.name_constraints = Some(NameConstraints {
            permitted_subtrees: vec![GeneralSubtree::DnsName(base.into())],
            excluded_subtrees: Vec::new(),
        });
        l.distinguished_name = dn(cn);
        if !san {
            l.subject_alt_names.clear();
        }
    })
}

pub(super) fn cases() -> Vec<Case> {
    let mut with_crls = rollover(
        "pathLenConstraint 0 above a self-issued intermediate, with CRLs",
        None,
        0,
        0,
    );
    // Both CRLs of the rolled-over CA's name: webpki takes the first of a name for
    // the leaf, so the new key's comes first (docs/pki.md).
    with_crls.crls = vec![
        crl(&with_crls.root),
        crl(&with_crls.intermediates[0]),
        crl(&with_crls.intermediates[1]),
    ];
    let mut old_first = rollover(
        "pathLenConstraint 0 above a self-issued intermediate, the old key's CRL first",
        None,
        0,
        0,
    );
    old_first.crls = vec![
        crl(&old_first.root),
        crl(&old_first.intermediates[1]),
        crl(&old_first.intermediates[0]),
    ];
    old_first.cmg = Some("revocation_unknown");
    old_first.difference = Some(
        "webpki checks the leaf against the first CRL of its issuer's name, here signed \
         by the CA's other key; OpenSSL finds the one the leaf's issuer signed",
    );
    // The same, the CA above the rollover revoked by the root: cmg's own check of the
    // intermediates' CRLs refuses it.
    let mut revoked = rollover(
        "pathLenConstraint 0 above a self-issued intermediate, the CA revoked",
        None,
        0,
        0,
    );
    revoked.crls = vec![
        crl_revoking(&revoked.root, &CA_SERIAL),
        crl(&revoked.intermediates[0]),
        crl(&revoked.intermediates[1]),
    ];
    revoked.cmg = Some("revoked");
    // The leaf is still webpki's to check under cmg's own path check.
    let mut server_leaf = leaf_params("device");
    server_leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_leaf = refused(
        rollover_to(
            "pathLenConstraint 0 above a self-issued intermediate, leaf for serverAuth only",
            None,
            0,
            0,
            server_leaf,
        ),
        "wrong_eku",
    );
    let mut root_len = chain(
        "root pathLenConstraint 0 above an intermediate",
        |r, _, _| r.is_ca = IsCa::Ca(BasicConstraints::Constrained(0)),
    );
    root_len.cmg = Some("path_length_exceeded");
    let mut mailbox_with_crls = email_case(
        "rfc822Name mailbox constraint, with CRLs",
        "device@contoso.example",
        false,
        "device@contoso.example",
        None,
    );
    mailbox_with_crls.crls = vec![
        crl(&mailbox_with_crls.root),
        crl(&mailbox_with_crls.intermediates[0]),
    ];
    let mut legacy = chain(
        "rfc822Name constraint, subject emailAddress outside it",
        |_, i, l| {
            i.name_constraints =
                emails(GeneralSubtree::Rfc822Name("contoso.example".into()), false);
            l.distinguished_name.push(
                DnType::CustomDnType(vec![1, 2, 840, 113549, 1, 9, 1]),
                rcgen::DnValue::Ia5String("device@fabrikam.example".try_into().expect("ia5")),
            );
        },
    );
    legacy.cmg = Some("name_constraint_violation");
    // dNSName constraints are webpki's, and cmg's evaluation agrees.
    let dns_inside = dns_case(
        "dNSName constraint, leaf DNS name inside it",
        "contoso.example",
        "device",
        true,
    );
    let dns_outside = refused(
        dns_case(
            "dNSName constraint, leaf DNS name outside it",
            "fabrikam.example",
            "device",
            true,
        ),
        "name_constraint_violation",
    );
    let mut cn_outside = dns_case(
        "dNSName constraint, no DNS name, a host name outside it as CN",
        "contoso.example",
        "device.fabrikam.example",
        false,
    );
    cn_outside.difference = Some(
        "RFC 5280 section 4.2.1.10 applies dNSName constraints to dNSName SANs; OpenSSL \
         also applies them to a CN that looks like a host name when there is no DNS SAN, \
         and cmg never takes a CN for a DNS name",
    );
    let mut wildcard = chain(
        "dNSName excluded subtree, leaf wildcard DNS name reaching into it",
        |_, i, l| {
            i.name_constraints = Some(NameConstraints {
                permitted_subtrees: Vec::new(),
                excluded_subtrees: vec![GeneralSubtree::DnsName("bad.contoso.example".into())],
            });
            l.subject_alt_names = vec![SanType::DnsName(
                "*.contoso.example".try_into().expect("ia5"),
            )];
        },
    );
    wildcard.cmg = Some("name_constraint_violation");
    wildcard.difference = Some(
        "RFC 5280 does not speak of wildcards; OpenSSL compares *.contoso.example as text \
         and lets it through, cmg refuses a wildcard that can stand for an excluded name",
    );
    vec![
        dns_inside,
        wildcard,
        dns_outside,
        cn_outside,
        rollover(
            "pathLenConstraint 0 above a self-issued intermediate",
            None,
            0,
            0,
        ),
        with_crls,
        server_leaf,
        old_first,
        revoked,
        refused(
            rollover(
                "pathLenConstraint 0 above a self-issued and another intermediate",
                None,
                0,
                1,
            ),
            "path_length_exceeded",
        ),
        rollover(
            "pathLenConstraint 1 above a self-issued and another intermediate",
            None,
            1,
            1,
        ),
        refused(
            rollover(
                "root pathLenConstraint 0 above a rolled-over CA",
                Some(0),
                0,
                0,
            ),
            "path_length_exceeded",
        ),
        root_len,
        email_case(
            "rfc822Name host constraint, leaf e-mail inside it",
            "contoso.example",
            false,
            "device@contoso.example",
            None,
        ),
        email_case(
            "rfc822Name domain constraint, leaf e-mail inside it",
            ".contoso.example",
            false,
            "device@mail.contoso.example",
            None,
        ),
        mailbox_with_crls,
        email_case(
            "rfc822Name host constraint, leaf e-mail outside it",
            "contoso.example",
            false,
            "device@fabrikam.example",
            Some("name_constraint_violation"),
        ),
        email_case(
            "rfc822Name host constraint, leaf e-mail in a subdomain",
            "contoso.example",
            false,
            "device@mail.contoso.example",
            Some("name_constraint_violation"),
        ),
        email_case(
            "rfc822Name excluded subtree, leaf e-mail in it",
            "contoso.example",
            true,
            "device@contoso.example",
            Some("name_constraint_violation"),
        ),
        email_case(
            "rfc822Name excluded subtree, leaf e-mail elsewhere",
            "fabrikam.example",
            true,
            "device@contoso.example",
            None,
        ),
        legacy,
        directory_case(
            "directoryName constraint, leaf subject inside it",
            organization("Contoso"),
            false,
            None,
        ),
        directory_case(
            "directoryName constraint in another case and spacing, leaf subject inside it",
            organization(" CONTOSO "),
            false,
            None,
        ),
        directory_case(
            "directoryName constraint, leaf subject outside it",
            organization("Fabrikam"),
            false,
            Some("name_constraint_violation"),
        ),
        directory_case(
            "directoryName excluded subtree, leaf subject in it",
            organization("Contoso"),
            true,
            Some("name_constraint_violation"),
        ),
        directory_case(
            "directoryName excluded subtree, leaf subject elsewhere",
            organization("Fabrikam"),
            true,
            None,
        ),
    ]
}

/// The gateway's client certificate verifier and `cmg cert verify` give the verdict
/// `verify_chain` gives, on every case where cmg's own path check decides.
#[test]
fn gateway_and_cert_verify_agree_on_the_constraint_cases() {
    use std::sync::Arc;

    use cmg_pki::cli::{verify_files, VerifyRequest};
    use cmg_pki::client_verifier::PkiClientVerifier;
    use rustls::server::danger::ClientCertVerifier;
    use rustls_pki_types::UnixTime;

    let dir = tempfile::tempdir().expect("dir");
    for (n, case) in cases().into_iter().enumerate() {
        let expected = cmg_verdict(&case);
        assert_eq!(expected.as_deref(), case.cmg, "{}: verify_chain", case.name);
        let store = TrustStore::new(vec![case.root.der.clone()], Vec::new())
            .and_then(|s| s.with_crls(case.crls.clone()))
            .expect("store");
        let presented: Vec<CertificateDer<'static>> =
            case.intermediates.iter().map(|m| m.der.clone()).collect();
        let gateway = PkiClientVerifier::new(Arc::new(store), true).verify_client_cert(
            &case.leaf.der,
            &presented,
            UnixTime::now(),
        );
        assert_eq!(
            gateway.is_ok(),
            expected.is_none(),
            "{}: gateway",
            case.name
        );

        let write = |name: &str, text: String| {
            let path = dir.path().join(format!("{n}-{name}"));
            std::fs::write(&path, text).expect("write");
            path
        };
        let chain: String = std::iter::once(&case.leaf)
            .chain(&case.intermediates)
            .map(|m| m.pem.clone())
            .collect();
        let crls: Vec<_> = case
            .crls
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let body = base64_lines(c.as_ref());
                write(
                    &format!("crl{i}.pem"),
                    format!("-----BEGIN X509 CRL-----\n{body}-----END X509 CRL-----\n"),
                )
            })
            .collect();
        let request = VerifyRequest {
            trust: vec![write("root.pem", case.root.pem.clone())],
            intermediates: Vec::new(),
            crls,
            crl_fetch: false,
            ocsp: false,
            time: None,
            purpose: Purpose::Client,
            name: None,
            leaf: write("chain.pem", chain),
        };
        match (verify_files(&request), expected) {
            (Ok(_), None) => {}
            (Err(line), Some(code)) => {
                assert!(
                    line.contains(&code),
                    "{}: cmg cert verify: {line}",
                    case.name
                )
            }
            (got, want) => panic!("{}: cmg cert verify {got:?}, want {want:?}", case.name),
        }
    }
}

/// A certificate the openssl CLI made (it issues nothing in the corpus: the
/// parameters and key are placeholders).
fn from_openssl(pem_path: &Path) -> Made {
    let pem = std::fs::read_to_string(pem_path).expect("pem");
    let der = rustls_pki_types::pem::PemObject::from_pem_slice(pem.as_bytes()).expect("der");
    Made {
        params: CertificateParams::default(),
        key: KeyPair::generate().expect("key"),
        der,
        pem,
    }
}

fn openssl(args: &[&str], dir: &Path) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(out.status.success(), "openssl {args:?}: {out:?}");
}

/// The self-issued certificate of [`rollover`] signed with SHA-1 (RSA), by the
/// openssl CLI: webpki refuses SHA-1, and so must cmg's own path check, which
/// x509-parser alone would not.
pub(super) fn sha1_rollover(dir: &Path) -> Case {
    let dir = dir.join("sha1");
    std::fs::create_dir_all(&dir).expect("dir");
    let root = self_signed(ca_params("Corpus Root"));
    openssl(
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "ca.key",
        ],
        &dir,
    );
    let ca_key =
        KeyPair::from_pem(&std::fs::read_to_string(dir.join("ca.key")).expect("key")).expect("rsa");
    let mut ca = ca_params("Corpus Issuing CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.use_authority_key_identifier_extension = true;
    let ca_cert = ca.signed_by(&ca_key, &root.issuer()).expect("ca");
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).expect("write");
    let ca = Made {
        der: ca_cert.der().clone(),
        pem: ca_cert.pem(),
        params: ca,
        key: ca_key,
    };
    std::fs::write(
        dir.join("ext.cnf"),
        "[ca]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\n\
         subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n\
         [leaf]\nbasicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature\n\
         extendedKeyUsage = clientAuth\nsubjectAltName = DNS:device.contoso.example\n\
         subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n",
    )
    .expect("cnf");
    for (name, subject, issuer, digest, ext) in [
        (
            "rolled",
            "/O=Contoso/CN=Corpus Issuing CA",
            "ca",
            "-sha1",
            "ca",
        ),
        ("leaf", "/O=Contoso/CN=device", "rolled", "-sha256", "leaf"),
    ] {
        let (key, csr, pem) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
        );
        openssl(
            &[
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out",
                &key,
            ],
            &dir,
        );
        openssl(
            &["req", "-new", "-key", &key, "-subj", subject, "-out", &csr],
            &dir,
        );
        openssl(
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                &format!("{issuer}.pem"),
                "-CAkey",
                &format!("{issuer}.key"),
                "-set_serial",
                "7",
                digest,
                "-days",
                "30",
                "-extfile",
                "ext.cnf",
                "-extensions",
                ext,
                "-out",
                &pem,
            ],
            &dir,
        );
    }
    Case {
        name: "pathLenConstraint 0 above a self-issued intermediate signed with SHA-1",
        root,
        intermediates: vec![from_openssl(&dir.join("rolled.pem")), ca],
        leaf: from_openssl(&dir.join("leaf.pem")),
        crls: Vec::new(),
        cmg: Some("bad_signature"),
        difference: Some(
            "webpki, and so cmg, refuses certificate signatures with SHA-1 (collisions \
             are practical since 2020); OpenSSL 3 at its default security level accepts them",
        ),
    }
}
