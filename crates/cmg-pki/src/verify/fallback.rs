//! cmg's own path check, for the chains rustls-webpki 0.103 refuses where RFC 5280
//! allows them: pathLenConstraint above a self-issued intermediate (webpki counts it),
//! rfc822Name and directoryName name constraints (webpki does not evaluate them).
//!
//! It runs only when webpki refused with the error such a chain gets
//! ([`applies`]), and accepts only a path that passes every check webpki makes and
//! the [`strict`](super::strict) rules:
//! - paths are built from the presented and configured intermediates to a root by
//!   issuer name and signature (x509-parser, SHA-1 refused as webpki refuses it,
//!   with a bound on signature checks);
//! - the leaf is checked by webpki itself, with its issuer as the only trust anchor
//!   (its name constraints left to cmg): leaf signature, validity, extended key
//!   usage and the leaf's revocation status, by the store's policy (CRLs, fetching,
//!   OCSP) as on webpki's own path;
//! - each intermediate: validity, extended key usage (when present, as webpki
//!   requires), and, when revocation is checked, a usable CRL of its issuer (signed
//!   by that issuer's key, which may sign CRLs, unexpired, without an issuing
//!   distribution point),
//!   fetched from its distribution points when none is held; OCSP is not consulted
//!   for intermediates here, so one without a CRL fails closed;
//! - pathLenConstraint and name constraints by RFC 5280 ([`super::constraints`]).
//!
//! It never runs for a chain webpki accepts, and never changes webpki's answer for a
//! chain no path of which verifies: then webpki's error stands.

use rustls_pki_types::{CertificateDer, UnixTime};
use x509_parser::oid_registry::{
    Oid, OID_PKCS1_SHA1WITHRSA, OID_SHA1_WITH_RSA, OID_X509_EXT_ISSUER_DISTRIBUTION_POINT,
};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::revocation_list::CertificateRevocationList;

use super::strict::{self, name, Place};
use super::{Chain, Purpose, VerifyError};
use crate::revocation::crl_urls;

/// The most intermediates in a path (webpki's limit too).
const MAX_INTERMEDIATES: usize = 6;
/// The most signature checks one path search makes (webpki allows 100).
const MAX_SIGNATURES: usize = 64;
/// The most complete paths tried.
const MAX_PATHS: usize = 8;

/// Whether webpki's error is one a chain RFC 5280 allows can get: the constraint it
/// miscounts, or the signature error it reports when, after a CA key rollover, the
/// last path it tried was the one under the CA's other key.
pub(super) fn applies(err: &webpki::Error) -> bool {
    matches!(
        err,
        webpki::Error::NameConstraintViolation
            | webpki::Error::PathLenConstraintViolated
            | webpki::Error::InvalidSignatureForPublicKey
    )
}

struct Candidate<'a> {
    der: &'a [u8],
    cert: X509Certificate<'a>,
    root: bool,
}

/// `None` when no path links the leaf to a root by signature (webpki's error
/// stands), unless only a SHA-1 signature broke the links (then that is the error);
/// otherwise the verdict on the best path.
pub(super) fn verify(
    chain: &Chain<'_>,
    leaf: &CertificateDer<'_>,
) -> Option<Result<(), VerifyError>> {
    let (_, leaf_cert) = X509Certificate::from_der(leaf).ok()?;
    let store = chain.store;
    let roots = store.roots();
    let mut pool: Vec<Candidate<'_>> = Vec::new();
    for der in chain.intermediates {
        if roots.iter().any(|r| r.as_ref() == der.as_ref()) {
            continue;
        }
        if let Ok((_, cert)) = X509Certificate::from_der(der) {
            pool.push(Candidate {
                der,
                cert,
                root: false,
            });
        }
    }
    for der in roots {
        if let Ok((_, cert)) = X509Certificate::from_der(der) {
            pool.push(Candidate {
                der,
                cert,
                root: true,
            });
        }
    }
    let mut search = Search {
        paths: Vec::new(),
        budget: MAX_SIGNATURES,
        sha1: false,
    };
    extend(&pool, &leaf_cert, &mut Vec::new(), &mut search);
    if search.paths.is_empty() && search.sha1 {
        return Some(Err(VerifyError::BadSignature(
            "a certificate of the path is signed with SHA-1, which cmg does not accept".into(),
        )));
    }

    // The error of the path that got furthest: one that broke a constraint or rule
    // beats none, and one that passed them and failed later beats that.
    let mut best: Option<(u8, VerifyError)> = None;
    for path in search.paths {
        let links: Vec<&Candidate<'_>> = path.iter().map(|&i| &pool[i]).collect();
        let outcome = structure(chain, leaf, &links)
            .map_err(|e| (1, e))
            .and_then(|()| leaf_and_revocation(chain, &links).map_err(|e| (2, e)));
        match outcome {
            Ok(()) => return Some(Ok(())),
            Err((stage, e)) => {
                if best.as_ref().is_none_or(|(s, _)| stage > *s) {
                    best = Some((stage, e));
                }
            }
        }
    }
    best.map(|(_, e)| Err(e))
}

/// The state of one path search.
struct Search {
    /// Complete paths, as indexes into the pool from the leaf's issuer up.
    paths: Vec<Vec<usize>>,
    /// Signature checks left.
    budget: usize,
    /// Whether an issuer by name was passed over for a SHA-1 signature.
    sha1: bool,
}

/// Depth-first: every issuer of `child` in `pool` (name, then signature), until a root.
fn extend(
    pool: &[Candidate<'_>],
    child: &X509Certificate<'_>,
    path: &mut Vec<usize>,
    search: &mut Search,
) {
    for (i, candidate) in pool.iter().enumerate() {
        if search.paths.len() >= MAX_PATHS || search.budget == 0 {
            return;
        }
        if candidate.cert.subject().as_raw() != child.issuer().as_raw() || path.contains(&i) {
            continue;
        }
        if is_sha1(&child.signature_algorithm.algorithm) {
            search.sha1 = true;
            continue;
        }
        search.budget -= 1;
        if child
            .verify_signature(Some(candidate.cert.public_key()))
            .is_err()
        {
            continue;
        }
        path.push(i);
        if candidate.root {
            search.paths.push(path.clone());
        } else if path.len() <= MAX_INTERMEDIATES {
            extend(pool, &candidate.cert, path, search);
        }
        path.pop();
    }
}

/// SHA-1, which webpki refuses and x509-parser's `verify` would accept. Its other
/// algorithms are webpki's `ALL_VERIFICATION_ALGS`: RSA PKCS#1 and PSS with SHA-2 and
/// keys of 2048 to 8192 bits, ECDSA P-256 and P-384, Ed25519.
fn is_sha1(alg: &Oid<'_>) -> bool {
    *alg == OID_PKCS1_SHA1WITHRSA || *alg == OID_SHA1_WITH_RSA
}

fn unix(secs: i64) -> UnixTime {
    UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        u64::try_from(secs).unwrap_or(0),
    ))
}

/// Everything but the leaf's own checks and revocation: the intermediates' validity
/// and EKU, and the strict rules (the constraints among them).
fn structure(
    chain: &Chain<'_>,
    leaf: &CertificateDer<'_>,
    links: &[&Candidate<'_>],
) -> Result<(), VerifyError> {
    let now = chain.opts.now;
    let now_secs = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    for link in links.iter().filter(|l| !l.root) {
        let validity = link.cert.validity();
        if now_secs > validity.not_after.timestamp() {
            return Err(VerifyError::Expired {
                not_after: unix(validity.not_after.timestamp()),
                now,
            });
        }
        if now_secs < validity.not_before.timestamp() {
            return Err(VerifyError::NotYetValid {
                not_before: unix(validity.not_before.timestamp()),
                now,
            });
        }
        eku(&link.cert, chain.opts.purpose)?;
    }
    // The strict rules include pathLenConstraint and name constraints by RFC 5280.
    let (root, inters) = links.split_last().expect("a path ends at a root");
    let inters: Vec<&[u8]> = inters.iter().map(|l| l.der).collect();
    strict::check_path(leaf, &inters, root.der, now_secs).map_err(VerifyError::Policy)
}

/// An intermediate's extended key usage, when it has one, allows the purpose.
fn eku(cert: &X509Certificate<'_>, purpose: Purpose) -> Result<(), VerifyError> {
    let Ok(Some(eku)) = cert.extended_key_usage() else {
        return match cert.extended_key_usage() {
            Err(e) => Err(VerifyError::BadEncoding(format!("extendedKeyUsage: {e}"))),
            _ => Ok(()),
        };
    };
    let eku = eku.value;
    let ok = match purpose {
        Purpose::Client => eku.client_auth,
        Purpose::Server => eku.server_auth,
        Purpose::Any => eku.client_auth || eku.server_auth,
    };
    if ok {
        return Ok(());
    }
    Err(VerifyError::WrongEku {
        purpose,
        present: format!("{} (on an issuer)", cert.subject()),
    })
}

/// The leaf by webpki under its issuer, then each intermediate's CRL.
fn leaf_and_revocation(chain: &Chain<'_>, links: &[&Candidate<'_>]) -> Result<(), VerifyError> {
    let issuer = CertificateDer::from(links[0].der);
    let mut anchor = webpki::anchor_from_trusted_cert(&issuer)
        .map_err(|e| VerifyError::BadEncoding(format!("issuer: {e:?}")))?;
    anchor.name_constraints = None;
    let anchors = [anchor];
    let leaf_chain = Chain {
        store: chain.store,
        anchors: &anchors,
        cert: chain.cert,
        intermediates: &[],
        usage: chain.usage,
        opts: chain.opts,
    };
    if let Some(checker) = chain.store.revocation() {
        let cas = links.iter().filter(|l| !l.root);
        checker.learn_cas(cas.map(|l| CertificateDer::from(l.der)));
    }
    if chain.store.checks_revocation() {
        leaf_chain.check_revocation()?;
    } else {
        leaf_chain
            .run(None, &[], |_| ())
            .map_err(|e| VerifyError::from_webpki(e, chain.opts.purpose))?;
    }
    if !chain.store.checks_revocation() {
        return Ok(());
    }
    let now = i64::try_from(chain.opts.now.as_secs()).unwrap_or(i64::MAX);
    for (n, pair) in links.windows(2).enumerate() {
        let (ca, issuer) = (pair[0], pair[1]);
        let mut status = ca_status(chain, ca, issuer, now);
        if status.is_none() {
            if let Some(checker) = chain.store.revocation() {
                checker.fetch_and_wait(&crl_urls(ca.der));
                status = ca_status(chain, ca, issuer, now);
            }
        }
        match status {
            Some(true) => {}
            Some(false) => return Err(VerifyError::Revoked),
            None => {
                return Err(VerifyError::RevocationUnknown(format!(
                    "{}: no usable CRL of its issuer (cmg's own path check does not ask \
                     OCSP about intermediates)",
                    name(Place::Intermediate(n + 1), &ca.cert.subject().to_string())
                )))
            }
        }
    }
    Ok(())
}

/// `Some(true)` good, `Some(false)` revoked, `None` no usable CRL of `issuer` held.
fn ca_status(
    chain: &Chain<'_>,
    ca: &Candidate<'_>,
    issuer: &Candidate<'_>,
    now: i64,
) -> Option<bool> {
    let snapshot = chain.store.revocation().map(|c| c.snapshot());
    let ders: Vec<&[u8]> = match &snapshot {
        Some(snapshot) => snapshot.ders(),
        None => chain.store.crl_ders().iter().map(|c| c.as_ref()).collect(),
    };
    let serial = ca.cert.raw_serial();
    // As webpki: an issuer whose keyUsage lacks cRLSign signs no usable CRL.
    let crl_signer = match issuer.cert.key_usage() {
        Ok(Some(ku)) => ku.value.crl_sign(),
        Ok(None) => true,
        Err(_) => false,
    };
    ders.into_iter().find_map(|der| {
        let (_, crl) = CertificateRevocationList::from_der(der).ok()?;
        let usable = crl.issuer().as_raw() == ca.cert.issuer().as_raw()
            && crl.next_update().is_some_and(|t| t.timestamp() > now)
            && !crl
                .extensions()
                .iter()
                .any(|e| e.oid == OID_X509_EXT_ISSUER_DISTRIBUTION_POINT)
            && crl_signer
            && !is_sha1(&crl.signature_algorithm.algorithm)
            && crl.verify_signature(issuer.cert.public_key()).is_ok();
        usable.then(|| {
            !crl.iter_revoked_certificates()
                .any(|r| r.raw_serial() == serial)
        })
    })
}
