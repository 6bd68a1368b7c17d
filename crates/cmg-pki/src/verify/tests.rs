use super::*;

#[test]
fn purpose_parses_and_prints() {
    for (text, purpose) in [
        ("client", Purpose::Client),
        ("server", Purpose::Server),
        ("any", Purpose::Any),
    ] {
        assert_eq!(text.parse::<Purpose>(), Ok(purpose));
        assert_eq!(purpose.to_string(), text);
    }
    assert!("Client".parse::<Purpose>().is_err());
    assert!("".parse::<Purpose>().is_err());
}

#[test]
fn codes_and_rustls_errors() {
    use rustls::CertificateError as C;
    let t = UnixTime::since_unix_epoch(std::time::Duration::from_secs(1_704_067_200));
    let cases = [
        (
            VerifyError::Expired {
                not_after: t,
                now: t,
            },
            "expired",
            Some(C::Expired),
        ),
        (
            VerifyError::NotYetValid {
                not_before: t,
                now: t,
            },
            "not_yet_valid",
            Some(C::NotValidYet),
        ),
        (
            VerifyError::UnknownIssuer,
            "unknown_issuer",
            Some(C::UnknownIssuer),
        ),
        (
            VerifyError::BadSignature("x".into()),
            "bad_signature",
            Some(C::BadSignature),
        ),
        (
            VerifyError::WrongEku {
                purpose: Purpose::Client,
                present: "server_auth".into(),
            },
            "wrong_eku",
            Some(C::InvalidPurpose),
        ),
        (VerifyError::Revoked, "revoked", Some(C::Revoked)),
        (
            VerifyError::RevokedOcsp {
                subject: "CN=a".into(),
                at: "2024-01-01T00:00:00Z".into(),
            },
            "ocsp_revoked",
            Some(C::Revoked),
        ),
        (
            VerifyError::OcspUnknown("down".into()),
            "ocsp_unknown",
            Some(C::UnknownRevocationStatus),
        ),
        (
            VerifyError::NameMismatch { name: "a".into() },
            "name_mismatch",
            Some(C::NotValidForName),
        ),
        (
            VerifyError::BadEncoding("x".into()),
            "bad_encoding",
            Some(C::BadEncoding),
        ),
        (
            VerifyError::Policy(strict::Violation {
                certificate: "root \"CN=r\"".into(),
                rule: strict::Rule::AnchorExpired,
                detail: String::new(),
            }),
            "anchor_expired",
            Some(C::Expired),
        ),
        (
            VerifyError::Policy(strict::Violation {
                certificate: "leaf \"CN=l\"".into(),
                rule: strict::Rule::MissingAuthorityKeyId,
                detail: String::new(),
            }),
            "missing_authority_key_id",
            None,
        ),
        (VerifyError::Other("x".into()), "other", None),
    ];
    for (err, code, cert_err) in cases {
        assert_eq!(err.code(), code);
        let rustls::Error::InvalidCertificate(got) = err.to_rustls() else {
            panic!("{err:?} did not map to InvalidCertificate");
        };
        match cert_err {
            Some(want) => assert_eq!(got, want, "{code}"),
            None => assert!(matches!(got, C::Other(_)), "{code}"),
        }
    }
}

#[test]
fn expired_message_names_the_time() {
    let not_after = UnixTime::since_unix_epoch(std::time::Duration::from_secs(1_704_067_200));
    let err = VerifyError::Expired {
        not_after,
        now: not_after,
    };
    assert!(
        err.to_string()
            .starts_with("certificate expired at 2024-01-01T00:00:00Z"),
        "{err}"
    );
}

#[test]
fn garbage_leaf_is_bad_encoding() {
    let pki = crate::demo::DemoPki::generate(&crate::demo::tests::spec()).expect("demo");
    let store = TrustStore::new(pki.root_ca_certs().expect("root"), Vec::new()).expect("store");
    let junk = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x01]);
    let err =
        verify_chain(&store, &junk, &[], &VerifyOptions::new(Purpose::Any)).expect_err("junk");
    assert_eq!(err.code(), "bad_encoding");
}
