//! What to ask a responder about one certificate: its `CertID` and the issuer
//! material the answer is checked against, and the DER `OCSPRequest`.

use der::asn1::{Null, ObjectIdentifier, OctetString};
use der::{Decode, Encode};
use x509_cert::ext::Extension;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoRef};
use x509_ocsp::ext::Nonce;
use x509_ocsp::{CertId, OcspRequest, Request, TbsRequest, Version};

use super::OcspError;

/// SHA-1, the `CertID` hash every responder supports (RFC 6960 §4.1.1; RFC 5019).
pub const SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
/// id-pkix-ocsp-nonce.
const NONCE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.2");

/// One certificate to ask about, with its issuer (the next certificate up the
/// verified chain, or the trust anchor).
#[derive(Debug, Clone)]
pub struct OcspQuery {
    /// Responder URLs from the certificate's AIA, tried in order.
    pub urls: Vec<String>,
    pub cert_id: CertId,
    /// DER of `cert_id`: the cache key.
    pub key: Vec<u8>,
    /// DER of the issuer's subject name.
    pub issuer_name: Vec<u8>,
    /// DER of the issuer's SubjectPublicKeyInfo.
    pub issuer_spki: Vec<u8>,
}

impl OcspQuery {
    /// `issuer_name`: DER of the certificate's issuer name (a full `Name`);
    /// `issuer_spki`: DER of the issuer's SubjectPublicKeyInfo; `serial`: the
    /// certificate's serial number (big-endian, as in the certificate).
    pub fn new(
        issuer_name: Vec<u8>,
        issuer_spki: Vec<u8>,
        serial: &[u8],
        urls: Vec<String>,
    ) -> Result<Self, OcspError> {
        let spki = SubjectPublicKeyInfoRef::from_der(&issuer_spki)
            .map_err(|e| OcspError::Request(format!("issuer key: {e}")))?;
        let key_bits = spki.subject_public_key.raw_bytes();
        let cert_id = CertId {
            hash_algorithm: AlgorithmIdentifierOwned {
                oid: SHA1,
                parameters: Some(Null.into()),
            },
            issuer_name_hash: octets(&sha1(&issuer_name))?,
            issuer_key_hash: octets(&sha1(key_bits))?,
            serial_number: SerialNumber::new(serial)
                .map_err(|e| OcspError::Request(format!("serial number: {e}")))?,
        };
        let key = cert_id
            .to_der()
            .map_err(|e| OcspError::Request(e.to_string()))?;
        Ok(Self {
            urls,
            cert_id,
            key,
            issuer_name,
            issuer_spki,
        })
    }

    /// The DER `OCSPRequest` for this certificate, with `nonce` when given.
    pub fn encode(&self, nonce: Option<&[u8]>) -> Result<Vec<u8>, OcspError> {
        let request_extensions = match nonce {
            Some(bytes) => {
                let value = Nonce::new(bytes.to_vec())
                    .and_then(|n| n.to_der())
                    .map_err(|e| OcspError::Request(e.to_string()))?;
                Some(vec![Extension {
                    extn_id: NONCE,
                    critical: false,
                    extn_value: octets(&value)?,
                }])
            }
            None => None,
        };
        let req = OcspRequest {
            tbs_request: TbsRequest {
                version: Version::V1,
                requestor_name: None,
                request_list: vec![Request {
                    req_cert: self.cert_id.clone(),
                    single_request_extensions: None,
                }],
                request_extensions,
            },
            optional_signature: None,
        };
        req.to_der().map_err(|e| OcspError::Request(e.to_string()))
    }
}

pub(crate) fn sha1(data: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY, data)
        .as_ref()
        .to_vec()
}

fn octets(bytes: &[u8]) -> Result<OctetString, OcspError> {
    OctetString::new(bytes.to_vec()).map_err(|e| OcspError::Request(e.to_string()))
}
