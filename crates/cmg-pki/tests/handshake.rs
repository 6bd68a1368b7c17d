//! Real rustls handshakes, pumped in memory, with `PkiClientVerifier` on the server.

mod common;

use std::io::{Read, Write};
use std::sync::Arc;

use cmg_pki::client_verifier::PkiClientVerifier;
use cmg_pki::demo::DemoPkiPaths;
use cmg_pki::pem::load_key;
use cmg_test_support::tls::TestClient;
use common::{certs, fixture, root_store, root_store_with_crl};
use rustls::crypto::ring::default_provider;
use rustls::pki_types::ServerName;
use rustls::{
    AlertDescription, CertificateError, ClientConfig, ClientConnection, ServerConfig,
    ServerConnection, SupportedProtocolVersion,
};

/// The server refused the client: its own error, and what the client then read
/// from the alert the server sent.
#[derive(Debug)]
struct Refused {
    server: rustls::Error,
    client_saw: Option<rustls::Error>,
}

fn server_config(paths: &DemoPkiPaths, verifier: PkiClientVerifier) -> Arc<ServerConfig> {
    let config = ServerConfig::builder_with_provider(Arc::new(default_provider()))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_client_cert_verifier(Arc::new(verifier))
        .with_single_cert(
            certs(&paths.server_cert),
            load_key(&paths.server_key).expect("key"),
        )
        .expect("server config");
    Arc::new(config)
}

fn client_config(
    paths: &DemoPkiPaths,
    version: &'static SupportedProtocolVersion,
    identity: Option<(&std::path::PathBuf, &std::path::PathBuf)>,
) -> Arc<ClientConfig> {
    let client = TestClient::trusting(certs(&paths.root_ca)).only(version);
    match identity {
        Some((cert, key)) => client.identity(certs(cert), load_key(key).expect("key")),
        None => client,
    }
    .config()
}

/// Runs the handshake to completion, then sends one message each way.
///
/// Errors on the client side are never expected here and panic.
fn connect(
    client_config: Arc<ClientConfig>,
    server_config: Arc<ServerConfig>,
) -> Result<ServerConnection, Box<Refused>> {
    let name = ServerName::try_from("localhost").expect("name");
    let mut client = ClientConnection::new(client_config, name).expect("client");
    let mut server = ServerConnection::new(server_config).expect("server");

    for _ in 0..32 {
        let mut to_server = Vec::new();
        while client.wants_write() {
            client.write_tls(&mut to_server).expect("client write_tls");
        }
        let mut rd = &to_server[..];
        while !rd.is_empty() {
            server.read_tls(&mut rd).expect("server read_tls");
            if let Err(err) = server.process_new_packets() {
                return Err(Box::new(refused(err, &mut server, &mut client)));
            }
        }

        let mut to_client = Vec::new();
        while server.wants_write() {
            server.write_tls(&mut to_client).expect("server write_tls");
        }
        let mut rd = &to_client[..];
        while !rd.is_empty() {
            client.read_tls(&mut rd).expect("client read_tls");
            client
                .process_new_packets()
                .expect("client side of the handshake");
        }

        if !client.is_handshaking() && !server.is_handshaking() && !client.wants_write() {
            break;
        }
    }
    assert!(!server.is_handshaking(), "handshake did not finish");

    // Application data both ways proves the session is usable.
    client.writer().write_all(b"ping").expect("client write");
    let mut to_server = Vec::new();
    while client.wants_write() {
        client.write_tls(&mut to_server).expect("client write_tls");
    }
    server
        .read_tls(&mut &to_server[..])
        .expect("server read_tls");
    if let Err(err) = server.process_new_packets() {
        return Err(Box::new(refused(err, &mut server, &mut client)));
    }
    let mut got = [0u8; 4];
    server.reader().read_exact(&mut got).expect("server read");
    assert_eq!(&got, b"ping");
    Ok(server)
}

/// Delivers the server's alert to the client and records what the client made of it.
fn refused(
    server_err: rustls::Error,
    server: &mut ServerConnection,
    client: &mut ClientConnection,
) -> Refused {
    let mut to_client = Vec::new();
    while server.wants_write() {
        server.write_tls(&mut to_client).expect("server write_tls");
    }
    let mut client_saw = None;
    let mut rd = &to_client[..];
    while !rd.is_empty() && client_saw.is_none() {
        client.read_tls(&mut rd).expect("client read_tls");
        client_saw = client.process_new_packets().err();
    }
    Refused {
        server: server_err,
        client_saw,
    }
}

const VERSIONS: [&SupportedProtocolVersion; 2] = [&rustls::version::TLS13, &rustls::version::TLS12];

#[test]
fn valid_client_certificate_is_accepted() {
    let f = fixture();
    let server = server_config(
        &f.paths,
        PkiClientVerifier::new(Arc::new(root_store_with_crl(&f.paths)), false),
    );
    for version in VERSIONS {
        let client = client_config(
            &f.paths,
            version,
            Some((&f.paths.client_cert, &f.paths.client_key)),
        );
        let conn = connect(client, server.clone()).expect("handshake");
        let peer = conn
            .peer_certificates()
            .expect("client presented a certificate");
        assert_eq!(peer[0], certs(&f.paths.client_cert)[0], "{version:?}");
    }
}

#[test]
fn expired_client_certificate_fails_the_handshake() {
    let f = fixture();
    let server = server_config(
        &f.paths,
        PkiClientVerifier::new(Arc::new(root_store(&f.paths)), false),
    );
    for version in VERSIONS {
        let client = client_config(
            &f.paths,
            version,
            Some((&f.paths.expired_client_cert, &f.paths.expired_client_key)),
        );
        match connect(client, server.clone()) {
            Err(refused) => {
                assert_eq!(
                    refused.server,
                    rustls::Error::InvalidCertificate(CertificateError::Expired),
                    "{version:?}"
                );
                assert_eq!(
                    refused.client_saw,
                    Some(rustls::Error::AlertReceived(
                        AlertDescription::CertificateExpired
                    )),
                    "{version:?}"
                );
            }
            other => panic!("{version:?}: expected the server to refuse, got {other:?}"),
        }
    }
}

#[test]
fn revoked_and_untrusted_client_certificates_fail_the_handshake() {
    let f = fixture();
    let server = server_config(
        &f.paths,
        PkiClientVerifier::new(Arc::new(root_store_with_crl(&f.paths)), false),
    );
    let cases = [
        (
            &f.paths.revoked_client_cert,
            &f.paths.revoked_client_key,
            CertificateError::Revoked,
        ),
        (
            &f.paths.untrusted_client_cert,
            &f.paths.untrusted_client_key,
            CertificateError::UnknownIssuer,
        ),
        (
            &f.paths.no_eku_client_cert,
            &f.paths.no_eku_client_key,
            CertificateError::InvalidPurpose,
        ),
    ];
    for (cert, key, want) in cases {
        let client = client_config(&f.paths, &rustls::version::TLS13, Some((cert, key)));
        match connect(client, server.clone()) {
            Err(refused) => {
                assert_eq!(refused.server, rustls::Error::InvalidCertificate(want))
            }
            other => panic!(
                "{}: expected the server to refuse, got {other:?}",
                cert.display()
            ),
        }
    }
}

#[test]
fn no_certificate_passes_when_not_mandatory() {
    let f = fixture();
    let server = server_config(
        &f.paths,
        PkiClientVerifier::new(Arc::new(root_store(&f.paths)), false),
    );
    for version in VERSIONS {
        let client = client_config(&f.paths, version, None);
        let conn = connect(client, server.clone()).expect("handshake without a certificate");
        assert!(conn.peer_certificates().is_none(), "{version:?}");
    }
}

#[test]
fn no_certificate_fails_when_mandatory() {
    let f = fixture();
    let server = server_config(
        &f.paths,
        PkiClientVerifier::new(Arc::new(root_store(&f.paths)), true),
    );
    let client = client_config(&f.paths, &rustls::version::TLS13, None);
    let refused = connect(client, server).expect_err("no certificate");
    assert_eq!(refused.server, rustls::Error::NoCertificatesPresented);
    assert_eq!(
        refused.client_saw,
        Some(rustls::Error::AlertReceived(
            AlertDescription::CertificateRequired
        ))
    );
}

#[test]
fn verifier_reports_its_settings() {
    use rustls::server::danger::ClientCertVerifier;
    let f = fixture();
    let verifier = PkiClientVerifier::new(Arc::new(root_store(&f.paths)), false);
    assert!(verifier.offer_client_auth());
    assert!(!verifier.client_auth_mandatory());
    assert_eq!(verifier.root_hint_subjects().len(), 1);
    assert!(!verifier.supported_verify_schemes().is_empty());
}
