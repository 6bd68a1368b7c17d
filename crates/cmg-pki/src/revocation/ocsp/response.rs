//! Decoding and checking an OCSP response for one [`OcspQuery`].
//!
//! Who may sign (RFC 6960 §4.2.2.2): the CA that issued the certificate, or a
//! responder certificate included in the response that this CA issued with the
//! `id-kp-OCSPSigning` extended key usage and that is valid now. The responder
//! certificate is checked by rustls-webpki as an end-entity certificate with the issuer
//! as its only trust anchor; signatures are checked with rustls-webpki's algorithms.
//! The responder certificate's own revocation status is not checked (responders
//! usually carry `id-pkix-ocsp-nocheck`).

use der::asn1::AnyRef;
use der::{Decode, Encode, Reader, SliceReader, Tag, Tagged};
use rustls_pki_types::{CertificateDer, Der, TrustAnchor, UnixTime};
use webpki::{EndEntityCert, KeyUsage};
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoRef};
use x509_ocsp::{
    BasicOcspResponse, CertId, CertStatus as AsnStatus, OcspResponse, OcspResponseStatus,
};

use super::request::OcspQuery;
use super::{CertStatus, OcspAnswer, OcspError, CLOCK_SKEW, NO_NEXT_UPDATE_VALIDITY};
use crate::revocation::crl_cache::rfc3339;

/// id-pkix-ocsp-basic.
const OCSP_BASIC: der::asn1::ObjectIdentifier =
    der::asn1::ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.1");
/// id-kp-OCSPSigning (1.3.6.1.5.5.7.3.9), DER contents of the OID.
const EKU_OCSP_SIGNING: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x09];

/// Checks `body` as the answer to `query` at Unix time `now`. `nonce`: what the
/// request carried; an echoed nonce must match it (a responder that serves pre-signed
/// answers echoes none, which is accepted: freshness then rests on the times).
pub fn verify(
    body: &[u8],
    query: &OcspQuery,
    nonce: Option<&[u8]>,
    now: i64,
) -> Result<OcspAnswer, OcspError> {
    let resp = OcspResponse::from_der(body).map_err(|e| OcspError::Malformed(e.to_string()))?;
    if resp.response_status != OcspResponseStatus::Successful {
        return Err(OcspError::NotSuccessful(status_name(resp.response_status)));
    }
    let bytes = resp
        .response_bytes
        .ok_or_else(|| OcspError::Malformed("successful response without responseBytes".into()))?;
    if bytes.response_type != OCSP_BASIC {
        return Err(OcspError::NotBasic);
    }
    let basic_der = bytes.response.as_bytes();
    let basic =
        BasicOcspResponse::from_der(basic_der).map_err(|e| OcspError::Malformed(e.to_string()))?;
    let raw = RawBasic::split(basic_der)?;
    let signature = basic
        .signature
        .as_bytes()
        .ok_or_else(|| OcspError::Malformed("signature has unused bits".into()))?;

    check_signer(query, &basic.signature_algorithm, &raw, signature, now)?;

    if let (Some(sent), Some(got)) = (nonce, basic.tbs_response_data.nonce()) {
        if got.0.as_bytes() != sent {
            return Err(OcspError::NonceMismatch);
        }
    }

    let single = basic
        .tbs_response_data
        .responses
        .iter()
        .find(|r| same_id(&r.cert_id, &query.cert_id))
        .ok_or(OcspError::NoMatchingCertId)?;
    let this_update = unix(&single.this_update.0);
    if this_update > now + CLOCK_SKEW {
        return Err(OcspError::NotYetValid(rfc3339(this_update)));
    }
    let valid_until = match &single.next_update {
        Some(t) => unix(&t.0),
        None => this_update + NO_NEXT_UPDATE_VALIDITY,
    };
    let answer = OcspAnswer {
        status: match &single.cert_status {
            AsnStatus::Good(_) => CertStatus::Good,
            AsnStatus::Revoked(info) => CertStatus::Revoked {
                at: unix(&info.revocation_time.0),
            },
            AsnStatus::Unknown(_) => CertStatus::Unknown,
        },
        this_update,
        valid_until,
    };
    if !answer.is_usable_at(now) {
        return Err(OcspError::Expired(rfc3339(valid_until)));
    }
    Ok(answer)
}

/// The signed part and the certificates of a BasicOCSPResponse, byte for byte as
/// received (a signature covers the received encoding, not a re-encoding).
struct RawBasic {
    tbs: Vec<u8>,
    certs: Vec<Vec<u8>>,
}

impl RawBasic {
    fn split(basic: &[u8]) -> Result<Self, OcspError> {
        let bad = |e: der::Error| OcspError::Malformed(e.to_string());
        let outer = AnyRef::from_der(basic).map_err(bad)?;
        let mut reader = SliceReader::new(outer.value()).map_err(bad)?;
        let tbs: AnyRef<'_> = reader.decode().map_err(bad)?;
        let _alg: AnyRef<'_> = reader.decode().map_err(bad)?;
        let _sig: AnyRef<'_> = reader.decode().map_err(bad)?;
        let mut certs = Vec::new();
        if !reader.is_finished() {
            let explicit: AnyRef<'_> = reader.decode().map_err(bad)?;
            if explicit.tag()
                != (Tag::ContextSpecific {
                    constructed: true,
                    number: der::TagNumber::N0,
                })
            {
                return Err(OcspError::Malformed(
                    "unexpected field after signature".into(),
                ));
            }
            let seq = AnyRef::from_der(explicit.value()).map_err(bad)?;
            let mut inner = SliceReader::new(seq.value()).map_err(bad)?;
            while !inner.is_finished() {
                let cert: AnyRef<'_> = inner.decode().map_err(bad)?;
                certs.push(cert.to_der().map_err(bad)?);
            }
        }
        Ok(Self {
            tbs: tbs.to_der().map_err(bad)?,
            certs,
        })
    }
}

/// The response must be signed by the issuer or by a responder the issuer authorized.
fn check_signer(
    query: &OcspQuery,
    alg: &AlgorithmIdentifierOwned,
    raw: &RawBasic,
    signature: &[u8],
    now: i64,
) -> Result<(), OcspError> {
    if verify_signature(&query.issuer_spki, alg, &raw.tbs, signature) {
        return Ok(());
    }
    let (Some(subject), Some(spki)) = (
        sequence_contents(&query.issuer_name),
        sequence_contents(&query.issuer_spki),
    ) else {
        return Err(OcspError::BadSignature);
    };
    let anchor = [TrustAnchor {
        subject: Der::from(subject),
        subject_public_key_info: Der::from(spki),
        name_constraints: None,
    }];
    let time = UnixTime::since_unix_epoch(std::time::Duration::from_secs(
        u64::try_from(now).unwrap_or(0),
    ));
    for cert in &raw.certs {
        let der = CertificateDer::from(cert.as_slice());
        let Ok(ee) = EndEntityCert::try_from(&der) else {
            continue;
        };
        let authorized = ee.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &anchor,
            &[],
            time,
            KeyUsage::required(EKU_OCSP_SIGNING),
            None,
            None,
        );
        if let Err(e) = authorized {
            tracing::debug!(target: "cmg_pki", error = ?e, "OCSP responder certificate not authorized by the issuer");
            continue;
        }
        if verify_signature(
            ee.subject_public_key_info().as_ref(),
            alg,
            &raw.tbs,
            signature,
        ) {
            return Ok(());
        }
    }
    Err(OcspError::BadSignature)
}

/// Verifies `signature` over `message` with the key in `spki` (DER), using the
/// rustls-webpki algorithm whose identifiers match the key and the signature.
fn verify_signature(
    spki: &[u8],
    alg: &AlgorithmIdentifierOwned,
    message: &[u8],
    signature: &[u8],
) -> bool {
    let Ok(key) = SubjectPublicKeyInfoRef::from_der(spki) else {
        return false;
    };
    let Some(key_alg) = key.algorithm.to_der().ok().and_then(|d| contents(&d)) else {
        return false;
    };
    let Some(sig_alg) = alg.to_der().ok().and_then(|d| contents(&d)) else {
        return false;
    };
    webpki::ALL_VERIFICATION_ALGS.iter().any(|a| {
        a.public_key_alg_id().as_ref() == key_alg.as_slice()
            && a.signature_alg_id().as_ref() == sig_alg.as_slice()
            && a.verify_signature(key.subject_public_key.raw_bytes(), message, signature)
                .is_ok()
    })
}

/// The contents of a DER TLV (without tag and length).
fn contents(der: &[u8]) -> Option<Vec<u8>> {
    AnyRef::from_der(der).ok().map(|a| a.value().to_vec())
}

fn sequence_contents(der: &[u8]) -> Option<&[u8]> {
    let any = AnyRef::from_der(der).ok()?;
    let len = any.value().len();
    der.get(der.len() - len..)
}

fn same_id(a: &CertId, b: &CertId) -> bool {
    a.hash_algorithm.oid == b.hash_algorithm.oid
        && a.issuer_name_hash == b.issuer_name_hash
        && a.issuer_key_hash == b.issuer_key_hash
        && a.serial_number.as_bytes() == b.serial_number.as_bytes()
}

fn unix(t: &der::asn1::GeneralizedTime) -> i64 {
    i64::try_from(t.to_unix_duration().as_secs()).unwrap_or(i64::MAX)
}

fn status_name(s: OcspResponseStatus) -> &'static str {
    match s {
        OcspResponseStatus::Successful => "successful",
        OcspResponseStatus::MalformedRequest => "malformedRequest",
        OcspResponseStatus::InternalError => "internalError",
        OcspResponseStatus::TryLater => "tryLater",
        OcspResponseStatus::SigRequired => "sigRequired",
        OcspResponseStatus::Unauthorized => "unauthorized",
    }
}
