//! The client credential, checked with the gateway's own code: a certificate chain by
//! `cmg_pki::verify_chain` over the trust the gateway's settings bundle gives (roots
//! restricted by the trust list, intermediates, and, when the gateway verifies
//! revocation, a `RevocationChecker` that fetches CRLs and asks OCSP responders as the
//! gateway's does); a site token by `cmg_token::SiteVerifier` with the bundle's keys and
//! block list. OIDC tokens are not verified here (that needs the issuer's discovery and
//! keys): their step is a warning, and the requests through the gateway decide.
//!
//! Both checks may block (CRL and OCSP fetches): call them off the async threads.

use std::time::{Duration, SystemTime};

use cmg_pki::describe::describe;
use cmg_pki::revocation::{RevocationChecker, RevocationConfig};
use cmg_pki::trust::TrustStore;
use cmg_pki::verify::{verify_chain, Purpose, VerifyError, VerifyOptions};
use cmg_proto::settings::{ClientAuthSettings, SettingsBundle};
use rustls_pki_types::CertificateDer;

use crate::report::Step;

/// Step names, shared with the tests and the console.
pub const CHAIN: &str = "client certificate: chain, time and usage";
pub const REVOCATION: &str = "client certificate: revocation";
pub const TOKEN: &str = "token";

/// The gateway's client trust from its bundle, without revocation. A trust list keeps
/// only the roots whose SHA-256 it names (as `cmg-gateway`'s `ClientTrust::from_bundle`).
pub fn trust_from_bundle(
    auth: &ClientAuthSettings,
) -> Result<(Vec<CertificateDer<'static>>, Vec<CertificateDer<'static>>), String> {
    let parse = |what: &str, pems: &[String]| -> Result<Vec<CertificateDer<'static>>, String> {
        let mut out = Vec::new();
        for (i, pem) in pems.iter().enumerate() {
            out.extend(cmg_pki::pem::parse_certs(pem).map_err(|e| format!("{what}[{i}]: {e}"))?);
        }
        Ok(out)
    };
    let mut roots = parse("trusted root", &auth.trusted_roots_pem)?;
    if let Some(list) = &auth.trust_list_sha256 {
        let mut kept = Vec::new();
        for r in roots {
            let fp = describe(&r).map_err(|e| e.to_string())?.sha256_hex;
            if list.iter().any(|l| l.eq_ignore_ascii_case(&fp)) {
                kept.push(r);
            }
        }
        roots = kept;
    }
    Ok((roots, parse("intermediate", &auth.intermediates_pem)?))
}

/// The certificate's steps: chain, time and usage; then revocation.
pub fn certificate_steps(auth: &ClientAuthSettings, chain_pem: &str, key_pem: &str) -> Vec<Step> {
    let chain = match cmg_pki::pem::parse_certs(chain_pem) {
        Ok(c) => c,
        Err(e) => return vec![bad_input(&format!("the certificate file: {e}"))],
    };
    let Some((leaf, presented)) = chain.split_first() else {
        return vec![bad_input("the certificate file holds no certificate")];
    };
    if let Err(e) = cmg_pki::pem::parse_key(key_pem) {
        return vec![bad_input(&format!("the key file: {e}"))];
    }
    let subject = describe(leaf)
        .map(|d| d.subject)
        .unwrap_or_else(|_| "?".into());
    let (roots, intermediates) = match trust_from_bundle(auth) {
        Ok(t) => t,
        Err(e) => {
            return vec![Step::fail(
                CHAIN,
                format!("the gateway's trusted certificates cannot be read: {e}"),
                "fix the gateway's trusted roots and intermediates at the site",
            )]
        }
    };
    if roots.is_empty() {
        return vec![Step::fail(
            CHAIN,
            "the gateway trusts no root for client certificates (none uploaded, or the \
             certificate trust list excludes them all)",
            "upload the root CA of your client certificates to the gateway \
             (cmg site gateway modify --trusted-root)",
        )];
    }
    let opts = VerifyOptions::new(Purpose::Client);
    let plain = TrustStore::new(roots.clone(), intermediates.clone()).map_err(|e| e.to_string());
    let chain_step = match plain
        .and_then(|s| verify_chain(&s, leaf, presented, &opts).map_err(|e| chain_failure(&e)))
    {
        Ok(summary) => Step::pass(
            CHAIN,
            format!(
                "{subject:?} issued by {:?} chains to a trusted root, is valid now and allows \
                 client authentication",
                summary.issuer
            ),
        ),
        Err(detail) => {
            return vec![
                Step::fail(
                    CHAIN,
                    format!("{subject:?}: {detail}"),
                    chain_remedy(&detail),
                ),
                Step::warn(
                    REVOCATION,
                    "not checked: the chain failed",
                    "fix the chain first",
                ),
            ]
        }
    };
    if !auth.verify_revocation {
        return vec![
            chain_step,
            Step::warn(
                REVOCATION,
                "not checked: the gateway does not verify client certificate revocation",
                "turn on \"verify client certificate revocation\" unless your PKI publishes \
                 no CRL (cmg site gateway modify --crl true)",
            ),
        ];
    }
    vec![
        chain_step,
        revocation_step(roots, intermediates, leaf, presented, &subject),
    ]
}

fn revocation_step(
    roots: Vec<CertificateDer<'static>>,
    intermediates: Vec<CertificateDer<'static>>,
    leaf: &CertificateDer<'static>,
    presented: &[CertificateDer<'static>],
    subject: &str,
) -> Step {
    let defaults = RevocationConfig::default();
    // As `cmg cert verify`: wait for the whole fetch, not a handshake's share.
    let config = RevocationConfig {
        handshake_wait: defaults.limits.timeout + Duration::from_secs(1),
        ..defaults
    };
    let cas: Vec<_> = roots.iter().chain(&intermediates).cloned().collect();
    let store = RevocationChecker::new(config, cas, Vec::new()).and_then(|checker| {
        TrustStore::new(roots, intermediates).map(|s| s.with_revocation(checker))
    });
    let store = match store {
        Ok(s) => s,
        Err(e) => {
            return Step::fail(
                REVOCATION,
                format!("cannot set up the revocation check: {e}"),
                "",
            )
        }
    };
    match verify_chain(
        &store,
        leaf,
        presented,
        &VerifyOptions::new(Purpose::Client),
    ) {
        Ok(_) => Step::pass(
            REVOCATION,
            format!("{subject:?} and its issuers are not revoked (CRL or OCSP checked)"),
        ),
        Err(e) => {
            let mut step = revocation_failure(&e, subject);
            if matches!(e, VerifyError::Revoked) {
                let chain = std::iter::once(leaf).chain(presented);
                if let Some(entry) = store.revocation().and_then(|c| crl_entry(c, chain)) {
                    step.detail.push_str(&format!("; {entry}"));
                }
            }
            step
        }
    }
}

/// The CRL entry of the first certificate of `chain` listed on a cached CRL: its
/// subject, the revocation date and the reason (RFC 5280 reasonCode). Matched by serial
/// number, on the CRLs the check just used.
fn crl_entry<'a>(
    checker: &RevocationChecker,
    chain: impl Iterator<Item = &'a CertificateDer<'static>>,
) -> Option<String> {
    let snapshot = checker.snapshot();
    for cert in chain {
        let Ok(summary) = describe(cert) else {
            continue;
        };
        let Ok(serial) = hex::decode(&summary.serial_hex) else {
            continue;
        };
        for crl in snapshot.refs() {
            if let Ok(Some(entry)) = crl.find_serial(&serial) {
                let reason = entry
                    .reason_code
                    .map(|r| format!("{r:?}"))
                    .unwrap_or_else(|| "Unspecified (no reason code)".into());
                let at = i64::try_from(entry.revocation_date.as_secs())
                    .ok()
                    .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
                    .and_then(|t| {
                        t.format(&time::format_description::well_known::Rfc3339)
                            .ok()
                    })
                    .unwrap_or_else(|| "?".into());
                return Some(format!(
                    "{:?} is on its issuer's CRL since {at}, reason {reason}",
                    summary.subject
                ));
            }
        }
    }
    None
}

/// The revocation step for a refusal of the check with revocation on.
pub fn revocation_failure(e: &VerifyError, subject: &str) -> Step {
    let remedy = match e {
        VerifyError::Revoked | VerifyError::RevokedOcsp { .. } => {
            "the certificate is revoked: issue the client a new certificate"
        }
        VerifyError::RevocationUnknown(_) | VerifyError::OcspUnknown(_) => {
            "the gateway refuses a certificate whose status it cannot learn: publish the \
             issuer's CRL at the distribution point the certificate names (reachable over \
             http:// from the gateway), or its OCSP responder"
        }
        _ => "",
    };
    Step::fail(
        REVOCATION,
        format!("{subject:?}: {e} ({})", e.code()),
        remedy,
    )
}

fn chain_failure(e: &VerifyError) -> String {
    format!("{e} ({})", e.code())
}

/// The remedy for a chain, time or usage failure, by its code.
pub fn chain_remedy(detail: &str) -> &'static str {
    if detail.contains("(unknown_issuer)") {
        "the certificate's root is not trusted by the gateway: upload its root (and any \
         intermediate the client does not send) to the gateway's trusted certificates, or \
         use a certificate from a trusted CA"
    } else if detail.contains("(expired)") || detail.contains("(not_yet_valid)") {
        "renew the client certificate (and check the client's clock)"
    } else if detail.contains("(wrong_eku)") {
        "issue a certificate with the client authentication EKU (1.3.6.1.5.5.7.3.2)"
    } else {
        "issue the client a certificate from a CA the gateway trusts"
    }
}

fn bad_input(detail: &str) -> Step {
    Step::fail(
        CHAIN,
        detail,
        "give the client certificate (PEM, leaf first) and its key",
    )
}

/// The token's step: site tokens verified as the gateway does; OIDC tokens warned.
pub fn token_step(bundle: &SettingsBundle, token: &str, now: SystemTime) -> Step {
    let token = token.trim();
    let Some(issuer) = cmg_token::peek_issuer(token) else {
        return Step::fail(
            TOKEN,
            "not a token: no issuer can be read (malformed)",
            "give the token itself (three base64url parts joined by dots)",
        );
    };
    let guid = match bundle.site_guid.parse::<cmg_token::SiteGuid>() {
        Ok(g) => g,
        Err(e) => return Step::fail(TOKEN, format!("the bundle's site GUID: {e}"), ""),
    };
    if issuer == guid.issuer() {
        let verifier = match cmg_token::SiteVerifier::from_pems(&bundle.tokens.site_keys_pem, &guid)
        {
            Ok(v) => v.with_clock_skew(Duration::from_secs(60)),
            Err(e) => {
                return Step::fail(
                    TOKEN,
                    format!("the gateway has no usable site key: {e}"),
                    "check the site's signing keys (cmg site key list)",
                )
            }
        };
        let blocked = |id: &str| bundle.tokens.blocked_token_ids.iter().any(|b| b == id);
        return match verifier.verify_at(token, now, &blocked) {
            Ok(t) => Step::pass(
                TOKEN,
                format!(
                    "a site {} token, signed by the site, not blocked",
                    t.kind.as_str()
                ),
            ),
            Err(e) => Step::fail(
                TOKEN,
                format!("refused: {} ({})", e, e.code()),
                "get a new token from the site (cmg site token new), or unblock it",
            ),
        };
    }
    if bundle.tokens.oidc.iter().any(|o| o.issuer == issuer) {
        return Step::warn(
            TOKEN,
            format!(
                "an OIDC token from {issuer}, an issuer the gateway accepts; its signature \
                     is checked by the requests through the gateway below"
            ),
            "",
        );
    }
    Step::fail(
        TOKEN,
        format!("issued by {issuer:?}, which the gateway does not accept"),
        "use a token from the site or from an OIDC issuer configured on the gateway",
    )
}
