//! The rustls hook that checks a TLS client's certificate with
//! [`crate::verify::verify_chain`] — the same code as `cmg cert verify`.
//!
//! It only judges a certificate that is presented. Whether a client *without* one may
//! go on is the caller's choice (`mandatory`): the gateway sets it to `false` and
//! refuses such clients per URL at the HTTP layer, so a bad certificate fails the
//! handshake while an absent one does not (000_8db5ffdeadd64744.txt: the gateway
//! "pre-authenticates connections using mutual SSL").

use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls_pki_types::{CertificateDer, UnixTime};

use crate::describe::describe;
use crate::trust::TrustStore;
use crate::verify::{verify_chain, Purpose, VerifyOptions};

/// Verifies client certificates against a [`TrustStore`] (and its CRLs).
#[derive(Debug)]
pub struct PkiClientVerifier {
    store: Arc<TrustStore>,
    mandatory: bool,
    root_hints: Vec<DistinguishedName>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl PkiClientVerifier {
    /// `mandatory`: whether a client that presents no certificate fails the handshake.
    pub fn new(store: Arc<TrustStore>, mandatory: bool) -> Self {
        Self {
            root_hints: store.root_hint_subjects(),
            store,
            mandatory,
            algorithms: rustls::crypto::ring::default_provider().signature_verification_algorithms,
        }
    }
}

impl ClientCertVerifier for PkiClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.root_hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let opts = VerifyOptions {
            purpose: Purpose::Client,
            now,
            dns_name: None,
        };
        match verify_chain(&self.store, end_entity, intermediates, &opts) {
            Ok(summary) => {
                tracing::debug!(
                    target: "cmg_pki",
                    subject = %summary.subject,
                    serial = %summary.serial_hex,
                    "client certificate accepted"
                );
                Ok(ClientCertVerified::assertion())
            }
            Err(err) => {
                let subject = describe(end_entity)
                    .map(|s| s.subject)
                    .unwrap_or_else(|_| "<unparseable>".into());
                tracing::warn!(
                    target: "cmg_pki",
                    %subject,
                    code = err.service_code(),
                    reason = err.code(),
                    detail = %err,
                    "client certificate rejected"
                );
                Err(err.to_rustls())
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
