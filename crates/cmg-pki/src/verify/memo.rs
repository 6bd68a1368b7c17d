//! Remembered signature checks for the signed objects every handshake sees again: the
//! cached CRLs and the configured intermediates.
//!
//! webpki checks the signature of every CRL it consults, and of every certificate in
//! the path, on each verification. With revocation on, a root + intermediate + client
//! chain costs two CRL signature checks per handshake on top of the chain's own (about
//! 7 % fewer full handshakes per second in `bench/auth.sh`), and the intermediate's
//! signature by the root is the same check every time too. These objects change only
//! when a CRL is replaced or the trust is reloaded, so a successful check is remembered
//! on the object, per (algorithm, signer public key).
//!
//! A remembered result is used only for byte-identical input: the same signature and
//! the same signed bytes (compared in full), the same algorithm and the same public
//! key. That is exactly the input that verified before, so it is as strong as checking
//! again; anything else (a client's own certificate, a different key) is checked by the
//! wrapped algorithm as usual. Only successes are remembered, at most
//! [`MAX_SIGNERS`] keys per object.

use std::ops::Range;
use std::sync::Mutex;

use rustls_pki_types::{AlgorithmIdentifier, InvalidSignature, SignatureVerificationAlgorithm};

/// Signer keys remembered per object (one in practice; two during a CA key rollover).
pub const MAX_SIGNERS: usize = 4;

/// Where the signed bytes and the signature sit in an object's DER, and which
/// (algorithm, public key) pairs verified them.
#[derive(Debug, Default)]
pub struct SignedMemo {
    tbs: Range<usize>,
    signature: Range<usize>,
    verified: Mutex<Vec<(usize, Box<[u8]>)>>,
}

impl SignedMemo {
    /// The memo of a CRL in DER; `None` when it does not parse (webpki then refuses it
    /// or checks it without a memo).
    pub fn for_crl(der: &[u8]) -> Option<Self> {
        use x509_parser::prelude::FromDer;
        let (_, crl) =
            x509_parser::revocation_list::CertificateRevocationList::from_der(der).ok()?;
        Self::locate(der, crl.tbs_cert_list.as_ref(), &crl.signature_value.data)
    }

    /// The memo of a certificate in DER.
    pub fn for_cert(der: &[u8]) -> Option<Self> {
        use x509_parser::prelude::FromDer;
        let (_, cert) = x509_parser::certificate::X509Certificate::from_der(der).ok()?;
        Self::locate(
            der,
            cert.tbs_certificate.as_ref(),
            &cert.signature_value.data,
        )
    }

    /// Ranges of `tbs` and `signature`, both slices of `der`.
    fn locate(der: &[u8], tbs: &[u8], signature: &[u8]) -> Option<Self> {
        let range = |part: &[u8]| {
            let start = (part.as_ptr() as usize).checked_sub(der.as_ptr() as usize)?;
            let end = start.checked_add(part.len())?;
            (end <= der.len()).then_some(start..end)
        };
        Some(Self {
            tbs: range(tbs)?,
            signature: range(signature)?,
            verified: Mutex::default(),
        })
    }

    fn matches(&self, der: &[u8], message: &[u8], signature: &[u8]) -> bool {
        der.get(self.signature.clone()) == Some(signature)
            && der.get(self.tbs.clone()) == Some(message)
    }

    fn verified(&self, alg: usize, public_key: &[u8]) -> bool {
        self.lock()
            .iter()
            .any(|(a, k)| *a == alg && **k == *public_key)
    }

    fn remember(&self, alg: usize, public_key: &[u8]) {
        let mut verified = self.lock();
        if verified.len() < MAX_SIGNERS
            && !verified
                .iter()
                .any(|(a, k)| *a == alg && **k == *public_key)
        {
            verified.push((alg, public_key.into()));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(usize, Box<[u8]>)>> {
        // A panic while holding this lock cannot leave the list inconsistent (push only).
        self.verified.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One object whose signature check may be remembered: its DER and its memo.
#[derive(Debug, Clone, Copy)]
pub struct Memo<'a> {
    pub der: &'a [u8],
    pub signed: &'a SignedMemo,
}

/// A signature algorithm of webpki that consults the memos first.
#[derive(Debug)]
pub struct MemoAlg<'a> {
    inner: &'static dyn SignatureVerificationAlgorithm,
    index: usize,
    memos: &'a [Memo<'a>],
}

/// `webpki::ALL_VERIFICATION_ALGS`, each consulting `memos`.
pub fn algorithms<'a>(memos: &'a [Memo<'a>]) -> Vec<MemoAlg<'a>> {
    webpki::ALL_VERIFICATION_ALGS
        .iter()
        .enumerate()
        .map(|(index, inner)| MemoAlg {
            inner: *inner,
            index,
            memos,
        })
        .collect()
}

impl SignatureVerificationAlgorithm for MemoAlg<'_> {
    fn verify_signature(
        &self,
        public_key: &[u8],
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), InvalidSignature> {
        let Some(memo) = self
            .memos
            .iter()
            .find(|m| m.signed.matches(m.der, message, signature))
        else {
            return self.inner.verify_signature(public_key, message, signature);
        };
        if memo.signed.verified(self.index, public_key) {
            return Ok(());
        }
        self.inner
            .verify_signature(public_key, message, signature)?;
        memo.signed.remember(self.index, public_key);
        Ok(())
    }

    fn public_key_alg_id(&self) -> AlgorithmIdentifier {
        self.inner.public_key_alg_id()
    }

    fn signature_alg_id(&self) -> AlgorithmIdentifier {
        self.inner.signature_alg_id()
    }

    fn fips(&self) -> bool {
        self.inner.fips()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::prelude::{FromDer, X509Certificate};

    #[test]
    fn remembers_only_byte_identical_successes() {
        let pki = crate::demo::DemoPki::generate(&crate::demo::tests::spec()).expect("demo");
        let (_, root_crl) = pki.crls_der();
        let root = pki.root_ca_certs().expect("root")[0].clone();
        let (_, root) = X509Certificate::from_der(&root).expect("root parses");
        let root_key = root.public_key().subject_public_key.data.to_vec();

        let signed = SignedMemo::for_crl(root_crl).expect("demo CRL parses");
        let memos = [Memo {
            der: root_crl,
            signed: &signed,
        }];
        let tbs = &root_crl[signed.tbs.clone()];
        let sig = &root_crl[signed.signature.clone()];
        let algs = algorithms(&memos);
        let alg = algs
            .iter()
            .find(|a| a.inner.verify_signature(&root_key, tbs, sig).is_ok())
            .expect("an algorithm verifies the root's CRL with the root's key");

        // Another key: refused, and nothing remembered.
        let mut other_key = root_key.clone();
        *other_key.last_mut().expect("key bytes") ^= 1;
        assert!(alg.verify_signature(&other_key, tbs, sig).is_err());
        assert!(signed.lock().is_empty());
        // The signer's key: verified and remembered, once.
        alg.verify_signature(&root_key, tbs, sig)
            .expect("the signer verifies");
        alg.verify_signature(&root_key, tbs, sig)
            .expect("the signer verifies");
        assert_eq!(signed.lock().len(), 1);
        // Remembered now, yet other bytes under the same signature still fail: the memo
        // answers only for the exact input that verified.
        let mut forged = tbs.to_vec();
        *forged.last_mut().expect("tbs bytes") ^= 1;
        assert!(alg.verify_signature(&root_key, &forged, sig).is_err());
        let mut forged_sig = sig.to_vec();
        *forged_sig.last_mut().expect("signature bytes") ^= 1;
        assert!(alg.verify_signature(&root_key, tbs, &forged_sig).is_err());
        assert!(alg.verify_signature(&other_key, tbs, sig).is_err());
        assert_eq!(signed.lock().len(), 1);
    }

    #[test]
    fn certificate_memo_covers_tbs_and_signature() {
        let pki = crate::demo::DemoPki::generate(&crate::demo::tests::spec()).expect("demo");
        let root = pki.root_ca_certs().expect("root")[0].clone();
        let signed = SignedMemo::for_cert(&root).expect("root parses");
        // The signed part starts the certificate's content; the signature ends it.
        assert!(signed.tbs.start < signed.signature.start);
        assert_eq!(signed.signature.end, root.len());
        assert!(SignedMemo::for_cert(b"not a certificate").is_none());
    }
}
