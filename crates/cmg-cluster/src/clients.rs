//! HTTPS clients of the cluster, one per demo certificate.

use cmg_client::{ClientTls, HttpsClient};

use crate::{spec, Cluster, ClusterError};

/// Which certificate a client presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cert {
    Valid,
    Expired,
    NoClientAuthEku,
    UntrustedRoot,
    Revoked,
    None,
}

impl Cluster {
    /// The TLS material of a client presenting `cert`.
    pub fn client_tls(&self, cert: Cert) -> ClientTls {
        let p = &self.pki;
        let identity = match cert {
            Cert::Valid => Some((p.client_cert.clone(), p.client_key.clone())),
            Cert::Expired => Some((p.expired_client_cert.clone(), p.expired_client_key.clone())),
            Cert::NoClientAuthEku => {
                Some((p.no_eku_client_cert.clone(), p.no_eku_client_key.clone()))
            }
            Cert::UntrustedRoot => Some((
                p.untrusted_client_cert.clone(),
                p.untrusted_client_key.clone(),
            )),
            Cert::Revoked => Some((p.revoked_client_cert.clone(), p.revoked_client_key.clone())),
            Cert::None => None,
        };
        ClientTls {
            ca: vec![p.root_ca.clone()],
            identity,
        }
    }

    /// A client of gateway `gateway` presenting `cert`, over HTTP/2 or HTTP/1.1.
    pub fn client(
        &self,
        gateway: usize,
        cert: Cert,
        http2: bool,
    ) -> Result<HttpsClient, ClusterError> {
        HttpsClient::new(
            &self.client_tls(cert),
            self.gateways[gateway].client,
            spec::SERVICE_NAME,
            http2,
        )
        .map_err(|e| ClusterError::Step {
            step: "client".into(),
            message: e.to_string(),
        })
    }
}
