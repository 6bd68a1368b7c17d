//! Certificate chain validation: the one routine behind both the gateway's client
//! certificate check (through [`PkiClientVerifier`](crate::client_verifier::PkiClientVerifier))
//! and `cmg cert verify`, so an operator can reproduce a handshake decision offline.
//!
//! Path building, validity periods, signatures, extended key usage and CRLs are
//! checked by rustls-webpki against a [`TrustStore`]; CRLs come from the store or
//! from its [`RevocationChecker`] (which fetches them: see [`crate::revocation`]).
//! Revocation fails closed, as IIS does (000_8db5ffdeadd64744.txt, "Publish the
//! certificate revocation list"). A certificate that no usable CRL covers gets its
//! status from its OCSP responder when the checker allows it (`ocsp_check`).
//! [`strict`] adds the RFC 5280 rules webpki leaves out; `fallback` decides the
//! chains webpki refuses where RFC 5280 allows them, with `constraints` evaluating
//! pathLenConstraint and name constraints as RFC 5280 says.

mod constraints;
mod error;
mod fallback;
pub(crate) mod memo;
mod ocsp_check;
pub mod strict;
#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

use rustls_pki_types::{
    CertificateDer, ServerName, SignatureVerificationAlgorithm, TrustAnchor, UnixTime,
};
use serde::{Deserialize, Serialize};
use webpki::{
    CertRevocationList, EndEntityCert, ExpirationPolicy, ExtendedKeyUsageValidator,
    KeyPurposeIdIter, KeyUsage, RequiredEkuNotFoundContext, RevocationCheckDepth,
    RevocationOptionsBuilder, UnknownStatusPolicy, VerifiedPath,
};

pub use self::error::VerifyError;
use self::memo::Memo;
use crate::describe::{describe, CertSummary};
use crate::revocation::{crl_urls, RevocationChecker};
use crate::trust::TrustStore;

/// What the end-entity certificate is checked for (its extended key usage).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Purpose {
    /// TLS client authentication (EKU clientAuth, or no EKU extension).
    Client,
    /// TLS server authentication (EKU serverAuth, or no EKU extension).
    Server,
    /// Either of the two.
    Any,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Server => "server",
            Self::Any => "any",
        }
    }
}

impl fmt::Display for Purpose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A purpose other than `client`, `server` or `any`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown certificate purpose {0:?}: expected client, server or any")]
pub struct UnknownPurpose(pub String);

impl FromStr for Purpose {
    type Err = UnknownPurpose;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "client" => Ok(Self::Client),
            "server" => Ok(Self::Server),
            "any" => Ok(Self::Any),
            other => Err(UnknownPurpose(other.to_owned())),
        }
    }
}

/// How one chain is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyOptions<'a> {
    /// The extended key usage the leaf must allow.
    pub purpose: Purpose,
    /// The time validity periods are checked against (the handshake's time in TLS).
    pub now: UnixTime,
    /// A DNS name or IP address the leaf must be valid for; not checked when `None`.
    pub dns_name: Option<&'a str>,
}

impl VerifyOptions<'_> {
    /// Checks `purpose` at the current time, without a name.
    pub fn new(purpose: Purpose) -> Self {
        Self {
            purpose,
            now: UnixTime::now(),
            dns_name: None,
        }
    }
}

const EKU_SERVER_AUTH: &[usize] = KeyUsage::SERVER_AUTH_REPR;
const EKU_CLIENT_AUTH: &[usize] = KeyUsage::CLIENT_AUTH_REPR;

/// Accepts serverAuth or clientAuth (or no EKU extension), for [`Purpose::Any`].
#[derive(Clone, Copy)]
struct ClientOrServer;

impl ExtendedKeyUsageValidator for ClientOrServer {
    fn validate(&self, iter: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        let mut present = Vec::new();
        for id in iter {
            let oid = id?.to_decoded_oid();
            if oid == EKU_SERVER_AUTH || oid == EKU_CLIENT_AUTH {
                return Ok(());
            }
            present.push(oid);
        }
        if present.is_empty() {
            return Ok(());
        }
        Err(webpki::Error::RequiredEkuNotFoundContext(
            RequiredEkuNotFoundContext {
                required: KeyUsage::client_auth(),
                present,
            },
        ))
    }
}

#[derive(Clone, Copy)]
enum Usage {
    Key(KeyUsage),
    Any(ClientOrServer),
}

impl ExtendedKeyUsageValidator for Usage {
    fn validate(&self, iter: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        match self {
            Self::Key(usage) => usage.validate(iter),
            Self::Any(any) => any.validate(iter),
        }
    }
}

/// One chain to check, possibly several times (with and without CRLs).
struct Chain<'a> {
    store: &'a TrustStore,
    /// The store's anchors, or (cmg's own path check, `fallback`) the leaf's issuer.
    anchors: &'a [TrustAnchor<'a>],
    cert: &'a EndEntityCert<'a>,
    intermediates: &'a [CertificateDer<'a>],
    usage: Usage,
    opts: &'a VerifyOptions<'a>,
}

impl Chain<'_> {
    /// Builds and checks a path; with `crls`, every certificate below the root must
    /// be covered by an unexpired CRL of its issuer (fail-closed). `f` sees the path.
    /// `memos` are the CRLs' remembered signature checks ([`memo`]), where they have
    /// them; the store's intermediates are always consulted.
    fn run<R>(
        &self,
        crls: Option<&[&CertRevocationList<'_>]>,
        memos: &[Memo<'_>],
        f: impl FnOnce(&VerifiedPath<'_>) -> R,
    ) -> Result<R, webpki::Error> {
        self.run_with(crls, memos, UnknownStatusPolicy::Deny, f)
    }

    /// As [`Self::run`], with the policy for certificates no CRL covers: `Deny`
    /// (fail-closed) or `Allow` (their status is then decided by OCSP).
    fn run_with<R>(
        &self,
        crls: Option<&[&CertRevocationList<'_>]>,
        crl_memos: &[Memo<'_>],
        policy: UnknownStatusPolicy,
        f: impl FnOnce(&VerifiedPath<'_>) -> R,
    ) -> Result<R, webpki::Error> {
        // webpki wants at least one CRL; with none, no certificate below the root can
        // have a known status, so a path that is otherwise good is "unknown".
        let no_crls =
            crls.is_some_and(|crls| crls.is_empty()) && policy == UnknownStatusPolicy::Deny;
        let revocation = crls
            .and_then(|crls| RevocationOptionsBuilder::new(crls).ok())
            .map(|builder| {
                builder
                    .with_depth(RevocationCheckDepth::Chain)
                    .with_status_policy(policy)
                    .with_expiration_policy(ExpirationPolicy::Enforce)
                    .build()
            });
        let memos: Vec<Memo<'_>> = self
            .store
            .intermediate_memos()
            .chain(crl_memos.iter().copied())
            .collect();
        let algs = memo::algorithms(&memos);
        let algs: Vec<&dyn SignatureVerificationAlgorithm> = algs
            .iter()
            .map(|a| a as &dyn SignatureVerificationAlgorithm)
            .collect();
        let path = self.cert.verify_for_usage(
            &algs,
            self.anchors,
            self.intermediates,
            self.opts.now,
            self.usage,
            revocation,
            None,
        )?;
        if no_crls {
            return Err(webpki::Error::UnknownRevocationStatus);
        }
        Ok(f(&path))
    }

    /// The revocation check of the store's policy (nothing when it checks none).
    fn check_revocation(&self) -> Result<(), VerifyError> {
        match self.store.revocation() {
            None if self.store.crls().is_empty() => Ok(()),
            Some(checker) => self.check_fetching(checker),
            None => {
                let crls: Vec<_> = self.store.crls().iter().collect();
                self.run(Some(&crls), &[], |_| ()).map_err(|e| {
                    self.error(e, || "no configured CRL covers it (fetching is off)".into())
                })
            }
        }
    }

    fn error(&self, err: webpki::Error, why_unknown: impl FnOnce() -> String) -> VerifyError {
        if revocation_unknown(&err) {
            VerifyError::RevocationUnknown(format!("{}; {}", describe_unknown(&err), why_unknown()))
        } else {
            VerifyError::from_webpki(err, self.opts.purpose)
        }
    }

    /// Fail-closed check with configured and fetched CRLs. See [`crate::revocation`]
    /// for what runs when and how long it may wait.
    fn check_fetching(&self, checker: &RevocationChecker) -> Result<(), VerifyError> {
        let snapshot = checker.snapshot();
        let first = match self.run(Some(&snapshot.refs()), &snapshot.memos(), |_| ()) {
            Ok(()) => return Ok(()),
            Err(e) if !revocation_unknown(&e) => {
                return Err(VerifyError::from_webpki(e, self.opts.purpose))
            }
            Err(e) => e,
        };
        // Status unknown. Only a chain that verifies without revocation may make us
        // fetch anything, and only the distribution points its certificates name.
        let (urls, cas) = self
            .run(None, &[], |path| {
                let mut urls = crl_urls(path.end_entity().der().as_ref());
                let mut cas = Vec::new();
                for ca in path.intermediate_certificates() {
                    for url in crl_urls(ca.der().as_ref()) {
                        if !urls.contains(&url) {
                            urls.push(url);
                        }
                    }
                    cas.push(ca.der().into_owned());
                }
                (urls, cas)
            })
            .map_err(|e| VerifyError::from_webpki(e, self.opts.purpose))?;
        checker.learn_cas(cas.into_iter());
        // Nothing to fetch: the first answer stands (and keeps its reason).
        let crl_result = if urls.is_empty() {
            Err(first)
        } else {
            checker.fetch_and_wait(&urls);
            let snapshot = checker.snapshot();
            self.run(Some(&snapshot.refs()), &snapshot.memos(), |_| ())
        };
        match crl_result {
            Ok(()) => Ok(()),
            Err(e) if revocation_unknown(&e) && checker.ocsp_enabled() => {
                self.check_ocsp(checker, &urls)
            }
            Err(e) => Err(self.error(e, || checker.explain(&urls))),
        }
    }

    /// CRLs where a usable one covers a certificate, OCSP for the others (see
    /// [`ocsp_check`]).
    fn check_ocsp(&self, checker: &RevocationChecker, urls: &[String]) -> Result<(), VerifyError> {
        let now = i64::try_from(self.opts.now.as_secs()).unwrap_or(i64::MAX);
        let snapshot = checker.snapshot();
        let usable = snapshot.usable_refs(now);
        // Revoked on a usable CRL is final; certificates no usable CRL covers pass
        // this step and get their status from OCSP below.
        let certs = self
            .run_with(
                Some(&usable),
                &snapshot.memos(),
                UnknownStatusPolicy::Allow,
                ocsp_check::path_certs,
            )
            .map_err(|e| self.error(e, || checker.explain(urls)))?;
        ocsp_check::check(checker, &snapshot, certs, now, || checker.explain(urls))
    }
}

/// Whether webpki refused the chain because a certificate's revocation status could
/// not be determined (as opposed to revoked, or a chain problem).
fn revocation_unknown(err: &webpki::Error) -> bool {
    use webpki::Error as E;
    #[allow(deprecated)]
    let unknown = matches!(
        err,
        E::UnknownRevocationStatus
            | E::CrlExpired { .. }
            | E::InvalidCrlSignatureForPublicKey
            | E::UnsupportedCrlSignatureAlgorithm
            | E::UnsupportedCrlSignatureAlgorithmContext(_)
            | E::UnsupportedCrlSignatureAlgorithmForPublicKey
            | E::UnsupportedCrlSignatureAlgorithmForPublicKeyContext(_)
            | E::IssuerNotCrlSigner
            | E::UnsupportedRevocationReason
    );
    unknown
}

fn describe_unknown(err: &webpki::Error) -> String {
    use webpki::Error as E;
    match err {
        E::UnknownRevocationStatus => "no usable CRL of the issuer".into(),
        E::CrlExpired { next_update, .. } => format!(
            "the issuer's CRL expired at {}",
            crate::revocation::rfc3339_unix(*next_update)
        ),
        E::InvalidCrlSignatureForPublicKey => "the issuer's CRL has a bad signature".into(),
        E::IssuerNotCrlSigner => "the issuer may not sign CRLs (key usage)".into(),
        other => format!("the issuer's CRL cannot be used: {other:?}"),
    }
}

/// The [`strict`] rules on a path webpki accepted.
fn strict_check(
    store: &TrustStore,
    path: &VerifiedPath<'_>,
    now: UnixTime,
) -> Result<(), VerifyError> {
    let root = store.root_of(path.anchor()).ok_or_else(|| {
        VerifyError::Other("the path's trust anchor is not among the store's roots".into())
    })?;
    let intermediates: Vec<CertificateDer<'_>> =
        path.intermediate_certificates().map(|c| c.der()).collect();
    let intermediates: Vec<&[u8]> = intermediates.iter().map(|c| c.as_ref()).collect();
    let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    strict::check_path(&path.end_entity().der(), &intermediates, root, now)
        .map_err(VerifyError::Policy)
}

/// Validates `leaf` against `store` and returns its summary.
///
/// Intermediates are the ones the peer presented followed by the store's configured
/// ones. Revocation, when the store checks it, fails closed: every certificate in the
/// chain below the root must be covered by an unexpired, correctly signed CRL of its
/// issuer (depth [`Chain`](webpki::RevocationCheckDepth::Chain)); otherwise the error
/// is [`VerifyError::RevocationUnknown`] (or [`VerifyError::Revoked`]). With a
/// [`RevocationChecker`] attached, missing CRLs are fetched from the chain's
/// distribution points first (bounded wait, see [`crate::revocation`]); with CRLs
/// only, those are all there is. Without either, revocation is not checked.
///
/// The path must also keep the RFC 5280 rules webpki does not check ([`strict`]:
/// the anchor's validity, key usages, basicConstraints, critical extensions, key
/// identifiers, the root's pathLenConstraint, name constraints on a subject's
/// emailAddress); a break is [`VerifyError::Policy`], naming the certificate and rule.
/// Where webpki refuses what RFC 5280 allows (pathLenConstraint above a self-issued
/// intermediate, rfc822Name and directoryName constraints), cmg's own path check
/// (`fallback`) decides.
///
/// When `opts.dns_name` is set, the leaf must carry it as a DNS or IP address SAN.
pub fn verify_chain(
    store: &TrustStore,
    leaf: &CertificateDer<'_>,
    presented_intermediates: &[CertificateDer<'_>],
    opts: &VerifyOptions<'_>,
) -> Result<CertSummary, VerifyError> {
    let cert = EndEntityCert::try_from(leaf).map_err(|e| match e {
        webpki::Error::UnsupportedCriticalExtension => strict::unknown_critical(leaf)
            .err()
            .map(VerifyError::Policy)
            .unwrap_or_else(|| VerifyError::BadEncoding(format!("end-entity certificate: {e:?}"))),
        e => VerifyError::BadEncoding(format!("end-entity certificate: {e:?}")),
    })?;

    let intermediates: Vec<CertificateDer<'_>> = presented_intermediates
        .iter()
        .chain(store.intermediates().iter())
        .map(|der| CertificateDer::from(der.as_ref()))
        .collect();

    let usage = match opts.purpose {
        Purpose::Client => Usage::Key(KeyUsage::client_auth()),
        Purpose::Server => Usage::Key(KeyUsage::server_auth()),
        Purpose::Any => Usage::Any(ClientOrServer),
    };
    let chain = Chain {
        store,
        anchors: store.anchors(),
        cert: &cert,
        intermediates: &intermediates,
        usage,
        opts,
    };
    let strict = |path: &VerifiedPath<'_>| strict_check(store, path, opts.now);
    // Without revocation the one path built decides; with it, the RFC 5280 rules run
    // first, on the path webpki builds without revocation, and a chain webpki refuses
    // gets the revocation check's error, as before. Where webpki refuses for a reason
    // RFC 5280 does not give (path length, name constraints), cmg's own path check
    // decides instead (`fallback`).
    match chain.run(None, &[], strict) {
        Ok(violation) => {
            violation?;
            chain.check_revocation()?;
        }
        Err(e) if fallback::applies(&e) => match fallback::verify(&chain, leaf) {
            Some(verdict) => verdict?,
            None if store.checks_revocation() => chain.check_revocation()?,
            None => return Err(VerifyError::from_webpki(e, opts.purpose)),
        },
        Err(e) if !store.checks_revocation() => {
            return Err(VerifyError::from_webpki(e, opts.purpose))
        }
        Err(_) => chain.check_revocation()?,
    }

    if let Some(name) = opts.dns_name {
        let server_name = ServerName::try_from(name)
            .map_err(|e| VerifyError::Other(format!("invalid name {name:?}: {e}")))?;
        cert.verify_is_valid_for_subject_name(&server_name)
            .map_err(|_| VerifyError::NameMismatch {
                name: name.to_owned(),
            })?;
    }

    describe(leaf).map_err(|e| VerifyError::BadEncoding(e.to_string()))
}
