//! The set of certificates a verifier trusts: roots (trust anchors), known
//! intermediates, and how revocation is checked: not at all, against configured CRLs
//! only, or by a [`RevocationChecker`] that also fetches CRLs. Whenever revocation is
//! checked it fails closed: every certificate below the root needs a usable CRL.

use std::path::PathBuf;
use std::sync::Arc;

use rustls::DistinguishedName;
use rustls_pki_types::{CertificateDer, CertificateRevocationListDer, TrustAnchor};
use webpki::{CertRevocationList, OwnedCertRevocationList};

use crate::error::PkiError;
use crate::pem;
use crate::revocation::RevocationChecker;
use crate::verify::memo::{Memo, SignedMemo};

/// Roots, intermediates and revocation policy used by
/// [`verify_chain`](crate::verify::verify_chain).
///
/// Cheap to clone (the contents are shared). With CRLs loaded ([`Self::with_crls`]) or
/// a checker attached ([`Self::with_revocation`]), every certificate below a root must
/// be covered by a valid CRL of its issuer, or the chain is refused.
#[derive(Clone)]
pub struct TrustStore {
    anchors: Arc<[TrustAnchor<'static>]>,
    /// The certificates the anchors came from, index for index: the strict checks
    /// ([`crate::verify::strict`]) read their validity and extensions.
    roots: Arc<[CertificateDer<'static>]>,
    intermediates: Arc<[CertificateDer<'static>]>,
    /// One per intermediate: its remembered signature checks ([`crate::verify::memo`]).
    intermediate_memos: Arc<[SignedMemo]>,
    crls: Arc<[CertRevocationList<'static>]>,
    /// The same CRLs in DER, for cmg's own path check ([`crate::verify`]'s fallback).
    crl_ders: Arc<[CertificateRevocationListDer<'static>]>,
    revocation: Option<RevocationChecker>,
}

impl std::fmt::Debug for TrustStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrustStore")
            .field("roots", &self.anchors.len())
            .field("intermediates", &self.intermediates.len())
            .field("crls", &self.crls.len())
            .field("fetches_crls", &self.revocation.is_some())
            .finish()
    }
}

impl TrustStore {
    /// A store trusting `roots`, with `intermediates` available for path building.
    /// At least one root is required; no revocation checking until [`Self::with_crls`].
    pub fn new(
        roots: Vec<CertificateDer<'static>>,
        intermediates: Vec<CertificateDer<'static>>,
    ) -> Result<Self, PkiError> {
        if roots.is_empty() {
            return Err(PkiError::NoTrustedRoot);
        }
        let anchors = roots
            .iter()
            .enumerate()
            .map(|(index, der)| {
                webpki::anchor_from_trusted_cert(der)
                    .map(|anchor| anchor.to_owned())
                    .map_err(|e| PkiError::BadRoot {
                        index,
                        reason: format!("{e:?}"),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        for (index, der) in intermediates.iter().enumerate() {
            x509_parser::parse_x509_certificate(der).map_err(|e| PkiError::BadIntermediate {
                index,
                reason: e.to_string(),
            })?;
        }
        let intermediate_memos = intermediates
            .iter()
            .map(|der| SignedMemo::for_cert(der).unwrap_or_default())
            .collect();
        Ok(Self {
            anchors: anchors.into(),
            roots: roots.into(),
            intermediates: intermediates.into(),
            intermediate_memos,
            crls: Arc::new([]),
            crl_ders: Arc::new([]),
            revocation: None,
        })
    }

    /// Loads a store from PEM files: each root file may be a bundle, and so may each
    /// intermediate and CRL file. Revocation is checked (fail-closed) only when at least
    /// one CRL is given.
    pub fn from_pem_files(
        roots: &[PathBuf],
        intermediates: &[PathBuf],
        crls: &[PathBuf],
    ) -> Result<Self, PkiError> {
        let mut root_certs = Vec::new();
        for path in roots {
            root_certs.extend(pem::load_certs(path)?);
        }
        let mut inter = Vec::new();
        for path in intermediates {
            inter.extend(pem::load_certs(path)?);
        }
        let mut crl_list = Vec::new();
        for path in crls {
            crl_list.extend(pem::load_crls(path)?);
        }
        Self::new(root_certs, inter)?.with_crls(crl_list)
    }

    /// Replaces the store's CRLs. With at least one CRL, revocation is checked for
    /// every certificate in a chain below its root, and a certificate whose issuer has
    /// no loaded, unexpired CRL is refused; an empty list turns checking off.
    pub fn with_crls(
        mut self,
        crls: Vec<CertificateRevocationListDer<'static>>,
    ) -> Result<Self, PkiError> {
        let parsed = crls
            .iter()
            .enumerate()
            .map(|(index, der)| {
                crate::verify::strict::check_crl(der)
                    .map_err(|reason| PkiError::BadCrl { index, reason })?;
                OwnedCertRevocationList::from_der(der)
                    .map(CertRevocationList::from)
                    .map_err(|e| PkiError::BadCrl {
                        index,
                        reason: format!("{e:?}"),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.crls = parsed.into();
        self.crl_ders = crls.into();
        Ok(self)
    }

    /// Checks revocation with `checker` (configured and fetched CRLs, fail-closed)
    /// instead of the store's own CRLs.
    pub fn with_revocation(mut self, checker: RevocationChecker) -> Self {
        self.revocation = Some(checker);
        self
    }

    /// Subjects of the roots, as sent in a TLS CertificateRequest so that a client
    /// can pick a matching certificate.
    pub fn root_hint_subjects(&self) -> Vec<DistinguishedName> {
        self.anchors
            .iter()
            .map(|anchor| DistinguishedName::in_sequence(anchor.subject.as_ref()))
            .collect()
    }

    /// Whether revocation is checked (a checker, or at least one CRL loaded).
    pub fn checks_revocation(&self) -> bool {
        self.revocation.is_some() || !self.crls.is_empty()
    }

    /// The checker attached with [`Self::with_revocation`].
    pub fn revocation(&self) -> Option<&RevocationChecker> {
        self.revocation.as_ref()
    }

    pub(crate) fn anchors(&self) -> &[TrustAnchor<'static>] {
        &self.anchors
    }

    /// The root certificate `anchor` was made from.
    pub(crate) fn root_of(&self, anchor: &TrustAnchor<'_>) -> Option<&CertificateDer<'static>> {
        self.anchors
            .iter()
            .position(|a| {
                a.subject == anchor.subject
                    && a.subject_public_key_info == anchor.subject_public_key_info
            })
            .map(|i| &self.roots[i])
    }

    /// The root certificates, index for index with the anchors.
    pub(crate) fn roots(&self) -> &[CertificateDer<'static>] {
        &self.roots
    }

    /// The configured CRLs in DER (those of [`Self::with_crls`]).
    pub(crate) fn crl_ders(&self) -> &[CertificateRevocationListDer<'static>] {
        &self.crl_ders
    }

    pub(crate) fn intermediates(&self) -> &[CertificateDer<'static>] {
        &self.intermediates
    }

    /// The configured intermediates with their remembered signature checks.
    pub(crate) fn intermediate_memos(&self) -> impl Iterator<Item = Memo<'_>> {
        self.intermediates
            .iter()
            .zip(self.intermediate_memos.iter())
            .map(|(der, signed)| Memo { der, signed })
    }

    pub(crate) fn crls(&self) -> &[CertRevocationList<'static>] {
        &self.crls
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_a_root() {
        assert!(matches!(
            TrustStore::new(Vec::new(), Vec::new()),
            Err(PkiError::NoTrustedRoot)
        ));
    }

    #[test]
    fn rejects_garbage_material() {
        let junk = CertificateDer::from(vec![0x30, 0x03, 0x01, 0x01, 0xff]);
        assert!(matches!(
            TrustStore::new(vec![junk.clone()], Vec::new()),
            Err(PkiError::BadRoot { index: 0, .. })
        ));
        let crl = CertificateRevocationListDer::from(vec![0x30, 0x00]);
        let pki = crate::demo::DemoPki::generate(&crate::demo::tests::spec()).expect("demo");
        let store = TrustStore::new(pki.root_ca_certs().expect("root"), Vec::new()).expect("store");
        assert!(matches!(
            store.clone().with_crls(vec![crl]),
            Err(PkiError::BadCrl { index: 0, .. })
        ));
        assert!(matches!(
            TrustStore::new(pki.root_ca_certs().expect("root"), vec![junk]),
            Err(PkiError::BadIntermediate { index: 0, .. })
        ));
        assert!(!store.checks_revocation());
        assert_eq!(store.root_hint_subjects().len(), 1);
    }
}
