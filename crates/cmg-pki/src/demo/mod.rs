//! A throw-away PKI for `cmg demo` and tests: a root and intermediate CA for the
//! gateway and clients, a separate site CA for connection points, and one
//! certificate per interesting verification outcome (valid, expired, wrong EKU,
//! untrusted, revoked).
//!
//! Keys are ECDSA P-256, serials random, and nothing here is fit for production:
//! the CA keys are never written out (they stay in memory so tests can mint more
//! CRLs with [`DemoPki::mint_crl`]).

#[cfg(test)]
pub(crate) mod tests;

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cmg_proto::channel::CONNECTOR_URI_PREFIX;
use cmg_proto::{ConnectorId, SiteCode};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CrlDistributionPoint,
    DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair,
    KeyUsagePurpose, RevocationReason, RevokedCertParams, SanType, SerialNumber,
};
use rustls_pki_types::CertificateDer;
use serde::Serialize;
use time::{Duration, OffsetDateTime};

use crate::error::PkiError;
use crate::pem::parse_certs;

/// What to mint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoPkiSpec {
    /// The gateway's service name (DNS), put in the server certificate next to
    /// `localhost` and `127.0.0.1`.
    pub service_name: String,
    /// The site whose connection points get certificates.
    pub site: SiteCode,
    /// One connection point certificate per ID.
    pub connectors: Vec<ConnectorId>,
    /// CRL base URL, e.g. `http://127.0.0.1:8080/crl`. When given, certificates the
    /// intermediate issues name `{base}/intermediate.crl` as their CRL distribution
    /// point and the intermediate names `{base}/root.crl`; serving the
    /// [`DemoPkiPaths::intermediate_crl`] and [`DemoPkiPaths::root_crl`] files there
    /// makes fetched revocation checking work for the whole chain.
    pub crl_url: Option<String>,
}

/// Where [`DemoPki::write`] put each file. All paths are absolute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DemoPkiPaths {
    /// Root CA certificate (trust this for clients and the gateway's server cert).
    pub root_ca: PathBuf,
    /// Intermediate CA certificate, issued by the root.
    pub intermediate_ca: PathBuf,
    /// Gateway server certificate chain (leaf + intermediate).
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    /// Self-signed site CA that issues connection point certificates.
    pub site_ca: PathBuf,
    /// One entry per connection point in the spec, in spec order.
    pub connectors: Vec<ConnectorPaths>,
    /// Valid client authentication certificate chain (leaf + intermediate).
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// Client certificate whose notAfter is in the past.
    pub expired_client_cert: PathBuf,
    pub expired_client_key: PathBuf,
    /// Certificate with EKU serverAuth only, presented as a client certificate.
    pub no_eku_client_cert: PathBuf,
    pub no_eku_client_key: PathBuf,
    /// A root that nothing trusts.
    pub untrusted_root_ca: PathBuf,
    /// Client certificate issued by the untrusted root.
    pub untrusted_client_cert: PathBuf,
    pub untrusted_client_key: PathBuf,
    /// Client certificate listed on [`Self::crl`].
    pub revoked_client_cert: PathBuf,
    pub revoked_client_key: PathBuf,
    /// PEM bundle of both CRLs: the intermediate's (listing the revoked client
    /// certificate) and the root's (empty), covering every chain below the root.
    pub crl: PathBuf,
    /// The intermediate's CRL, DER (`intermediate.crl`, as served at the base URL).
    pub intermediate_crl: PathBuf,
    /// The root's CRL, DER (`root.crl`).
    pub root_crl: PathBuf,
    /// Server certificate chain for an HTTPS site role (`localhost`, `127.0.0.1`).
    pub role_server_cert: PathBuf,
    pub role_server_key: PathBuf,
    /// Client certificate chain the connection point presents to HTTPS site roles.
    pub role_client_cert: PathBuf,
    pub role_client_key: PathBuf,
}

/// A connection point's certificate (leaf only) and key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectorPaths {
    pub id: ConnectorId,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A certificate (PEM, possibly with its chain) and its private key (PEM).
#[derive(Clone)]
pub(crate) struct Issued {
    pub(crate) cert_pem: String,
    pub(crate) key_pem: String,
}

/// The generated material, held in memory until [`DemoPki::write`].
#[derive(Clone)]
pub struct DemoPki {
    root_ca: String,
    intermediate_ca: String,
    server: Issued,
    site_ca: String,
    connectors: Vec<(ConnectorId, Issued)>,
    /// The serial of each connection point certificate, in `connectors`' order.
    connector_serials: Vec<SerialNumber>,
    client: Issued,
    expired_client: Issued,
    no_eku_client: Issued,
    untrusted_root_ca: String,
    untrusted_client: Issued,
    revoked_client: Issued,
    revoked_serial: SerialNumber,
    /// Both CRLs, PEM.
    crl_pem: String,
    intermediate_crl: Vec<u8>,
    root_crl: Vec<u8>,
    /// Root, intermediate, site CA.
    cas: Arc<[Ca; 3]>,
    role_server: Issued,
    role_client: Issued,
}

impl fmt::Debug for DemoPki {
    // Never print keys.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DemoPki")
            .field(
                "connectors",
                &self.connectors.iter().map(|(id, _)| id).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

pub(crate) fn gen_err(context: &str) -> impl FnOnce(rcgen::Error) -> PkiError + '_ {
    move |e| PkiError::Generate(format!("{context}: {e}"))
}

pub(crate) fn new_key() -> Result<KeyPair, PkiError> {
    KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(gen_err("key pair"))
}

/// A positive, 16-byte random serial number.
pub(crate) fn random_serial() -> Result<SerialNumber, PkiError> {
    let mut bytes = [0u8; 16];
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut bytes)
        .map_err(|_| PkiError::Generate("no randomness for a serial number".into()))?;
    bytes[0] = (bytes[0] & 0x7f) | 0x01;
    Ok(SerialNumber::from_slice(&bytes))
}

fn common_name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

pub(crate) struct Ca {
    pub(crate) issuer: Issuer<'static, KeyPair>,
    pub(crate) pem: String,
    pub(crate) generation: String,
}

/// CA names carry `O=<generation>`, random per [`DemoPki::generate`], so the CAs of
/// two demo PKIs never share a subject name (a verifier picks CRLs by issuer name).
fn ca_params(
    cn: &str,
    generation: &str,
    now: OffsetDateTime,
    path_len: Option<u8>,
) -> Result<CertificateParams, PkiError> {
    let mut params = CertificateParams::default();
    params.distinguished_name = common_name(cn);
    params
        .distinguished_name
        .push(DnType::OrganizationName, generation);
    params.serial_number = Some(random_serial()?);
    params.not_before = now - Duration::hours(1);
    params.not_after = now + Duration::days(3650);
    params.is_ca = IsCa::Ca(match path_len {
        Some(len) => BasicConstraints::Constrained(len),
        None => BasicConstraints::Unconstrained,
    });
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.use_authority_key_identifier_extension = true;
    Ok(params)
}

pub(crate) fn root_ca(cn: &str, generation: &str, now: OffsetDateTime) -> Result<Ca, PkiError> {
    let params = ca_params(cn, generation, now, None)?;
    let key = new_key()?;
    let cert = params.self_signed(&key).map_err(gen_err(cn))?;
    Ok(Ca {
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
        generation: generation.to_owned(),
    })
}

fn sub_ca(
    cn: &str,
    parent: &Ca,
    now: OffsetDateTime,
    crl_url: Option<String>,
) -> Result<Ca, PkiError> {
    let mut params = ca_params(cn, &parent.generation, now, Some(0))?;
    if let Some(url) = crl_url {
        params.crl_distribution_points = vec![CrlDistributionPoint { uris: vec![url] }];
    }
    let key = new_key()?;
    let cert = params
        .signed_by(&key, &parent.issuer)
        .map_err(gen_err(cn))?;
    Ok(Ca {
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
        generation: parent.generation.clone(),
    })
}

/// What varies between end-entity certificates.
struct Leaf<'a> {
    cn: &'a str,
    /// DNS names and IP addresses (parsed by rcgen).
    names: Vec<String>,
    uris: Vec<String>,
    ekus: Vec<ExtendedKeyUsagePurpose>,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    crl_url: Option<&'a str>,
    /// Append the issuer's certificate to the PEM (leaf + intermediate chain).
    with_chain: bool,
}

impl<'a> Leaf<'a> {
    fn new(cn: &'a str, ekus: Vec<ExtendedKeyUsagePurpose>, now: OffsetDateTime) -> Self {
        Self {
            cn,
            names: vec![cn.to_owned()],
            uris: Vec::new(),
            ekus,
            not_before: now - Duration::hours(1),
            not_after: now + Duration::days(730),
            crl_url: None,
            with_chain: true,
        }
    }

    fn crl(mut self, url: Option<&'a str>) -> Self {
        self.crl_url = url;
        self
    }

    fn issue(self, ca: &Ca) -> Result<(Issued, SerialNumber), PkiError> {
        let mut params = CertificateParams::new(self.names).map_err(gen_err(self.cn))?;
        for uri in self.uris {
            let uri = uri.try_into().map_err(gen_err(self.cn))?;
            params.subject_alt_names.push(SanType::URI(uri));
        }
        params.distinguished_name = common_name(self.cn);
        let serial = random_serial()?;
        params.serial_number = Some(serial.clone());
        params.not_before = self.not_before;
        params.not_after = self.not_after;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = self.ekus;
        params.use_authority_key_identifier_extension = true;
        if let Some(url) = self.crl_url {
            params.crl_distribution_points = vec![CrlDistributionPoint {
                uris: vec![url.to_owned()],
            }];
        }
        let key = new_key()?;
        let cert = params
            .signed_by(&key, &ca.issuer)
            .map_err(gen_err(self.cn))?;
        let mut cert_pem = cert.pem();
        if self.with_chain {
            cert_pem.push_str(&ca.pem);
        }
        Ok((
            Issued {
                cert_pem,
                key_pem: key.serialize_pem(),
            },
            serial,
        ))
    }
}

/// A connection point certificate (leaf only, Client Authentication, URI SAN
/// `urn:cmg:connection-point:<site>:<id>`) issued by `site_ca`.
pub(crate) fn connector_cert(
    site_ca: &Ca,
    site: &SiteCode,
    id: &ConnectorId,
    now: OffsetDateTime,
) -> Result<(Issued, SerialNumber), PkiError> {
    let cn = format!("{id}.{site}.connection-point");
    let mut leaf = Leaf::new(&cn, vec![ExtendedKeyUsagePurpose::ClientAuth], now);
    leaf.names = Vec::new();
    leaf.uris = vec![format!("{CONNECTOR_URI_PREFIX}{site}:{id}")];
    leaf.with_chain = false;
    leaf.issue(site_ca)
}

/// A server certificate (leaf only, Server Authentication) for `names` (DNS names or IP
/// addresses) issued by `ca`.
pub(crate) fn server_cert(
    ca: &Ca,
    names: &[String],
    now: OffsetDateTime,
) -> Result<Issued, PkiError> {
    let cn = names.first().map(String::as_str).unwrap_or("cmg site");
    let mut leaf = Leaf::new(cn, vec![ExtendedKeyUsagePurpose::ServerAuth], now);
    leaf.names = names.to_vec();
    leaf.with_chain = false;
    leaf.issue(ca).map(|(issued, _)| issued)
}

impl DemoPki {
    /// Mints every certificate, key and the CRL.
    pub fn generate(spec: &DemoPkiSpec) -> Result<DemoPki, PkiError> {
        let unique: BTreeSet<_> = spec.connectors.iter().collect();
        if unique.len() != spec.connectors.len() {
            return Err(PkiError::Generate(
                "connection point IDs must be unique".into(),
            ));
        }
        let now = OffsetDateTime::now_utc();
        let client_auth = || vec![ExtendedKeyUsagePurpose::ClientAuth];
        let server_auth = || vec![ExtendedKeyUsagePurpose::ServerAuth];
        let base = spec.crl_url.as_deref().map(|b| b.trim_end_matches('/'));
        let leaf_crl_url = base.map(|b| format!("{b}/intermediate.crl"));
        let crl_url = leaf_crl_url.as_deref();

        let generation = format!(
            "cmg demo {}",
            &hex::encode(random_serial()?.to_bytes())[..8]
        );
        let root = root_ca("cmg demo root CA", &generation, now)?;
        let intermediate = sub_ca(
            "cmg demo intermediate CA",
            &root,
            now,
            base.map(|b| format!("{b}/root.crl")),
        )?;

        let mut server = Leaf::new(&spec.service_name, server_auth(), now);
        server.names = vec![
            spec.service_name.clone(),
            "localhost".into(),
            "127.0.0.1".into(),
        ];
        server.crl_url = crl_url;
        let (server, _) = server.issue(&intermediate)?;

        let site_ca = root_ca(&format!("cmg demo site CA {}", spec.site), &generation, now)?;
        let mut connectors = Vec::new();
        let mut connector_serials = Vec::new();
        for id in &spec.connectors {
            let (issued, serial) = connector_cert(&site_ca, &spec.site, id, now)?;
            connectors.push((id.clone(), issued));
            connector_serials.push(serial);
        }

        let (client, _) = Leaf::new("client01.corp.example", client_auth(), now)
            .crl(crl_url)
            .issue(&intermediate)?;

        let mut expired = Leaf::new("client-expired.corp.example", client_auth(), now).crl(crl_url);
        expired.not_before = now - Duration::days(60);
        expired.not_after = now - Duration::days(1);
        let (expired_client, _) = expired.issue(&intermediate)?;

        let (no_eku_client, _) = Leaf::new("client-noeku.corp.example", server_auth(), now)
            .crl(crl_url)
            .issue(&intermediate)?;

        let untrusted_root = root_ca("cmg demo untrusted root CA", &generation, now)?;
        let mut untrusted = Leaf::new("client-untrusted.corp.example", client_auth(), now);
        untrusted.with_chain = false;
        let (untrusted_client, _) = untrusted.issue(&untrusted_root)?;

        let (revoked_client, revoked_serial) =
            Leaf::new("client-revoked.corp.example", client_auth(), now)
                .crl(crl_url)
                .issue(&intermediate)?;
        let validity = (now - Duration::hours(1), now + Duration::days(365));
        let (intermediate_crl, intermediate_pem) =
            sign_crl(&intermediate, validity, Some(&revoked_serial))?;
        let (root_crl, root_pem) = sign_crl(&root, validity, None)?;
        let crl_pem = format!("{intermediate_pem}{root_pem}");

        let mut role_server = Leaf::new("mp01.corp.example", server_auth(), now).crl(crl_url);
        role_server.names = vec![
            "mp01.corp.example".into(),
            "localhost".into(),
            "127.0.0.1".into(),
        ];
        let (role_server, _) = role_server.issue(&intermediate)?;
        let (role_client, _) = Leaf::new("connection-point.corp.example", client_auth(), now)
            .crl(crl_url)
            .issue(&intermediate)?;

        Ok(DemoPki {
            root_ca: root.pem.clone(),
            intermediate_ca: intermediate.pem.clone(),
            server,
            site_ca: site_ca.pem.clone(),
            connectors,
            connector_serials,
            client,
            expired_client,
            no_eku_client,
            untrusted_root_ca: untrusted_root.pem,
            untrusted_client,
            revoked_client,
            revoked_serial,
            crl_pem,
            intermediate_crl,
            root_crl,
            cas: Arc::new([root, intermediate, site_ca]),
            role_server,
            role_client,
        })
    }

    /// The root CA certificate, parsed.
    pub fn root_ca_certs(&self) -> Result<Vec<CertificateDer<'static>>, PkiError> {
        parse_certs(&self.root_ca)
    }

    /// A new CRL signed by the intermediate CA (listing the revoked client
    /// certificate) or by the root (empty), valid from `this_update` to `next_update`:
    /// for tests of expired and refreshed CRLs. DER.
    pub fn mint_crl(
        &self,
        by_root: bool,
        this_update: OffsetDateTime,
        next_update: OffsetDateTime,
    ) -> Result<Vec<u8>, PkiError> {
        let [root, intermediate, _] = &*self.cas;
        let validity = (this_update, next_update);
        let (der, _) = match by_root {
            true => sign_crl(root, validity, None)?,
            false => sign_crl(intermediate, validity, Some(&self.revoked_serial))?,
        };
        Ok(der)
    }

    /// A new CRL of the intermediate CA listing no certificate, valid from `this_update`
    /// to `next_update`: the state before the revoked client was revoked (tests of what
    /// a gateway does once it learns of a revocation). DER.
    pub fn mint_empty_intermediate_crl(
        &self,
        this_update: OffsetDateTime,
        next_update: OffsetDateTime,
    ) -> Result<Vec<u8>, PkiError> {
        let [_, intermediate, _] = &*self.cas;
        Ok(sign_crl(intermediate, (this_update, next_update), None)?.0)
    }

    /// A CRL of the site CA listing connection point `id`'s certificate (none listed for
    /// an id the PKI has no certificate for), valid for a year: tests of the channel
    /// listener's revocation check. PEM.
    pub fn mint_site_crl(&self, id: &ConnectorId) -> Result<String, PkiError> {
        let site_ca = &self.cas[2];
        let now = OffsetDateTime::now_utc();
        let serial = self
            .connectors
            .iter()
            .position(|(c, _)| c == id)
            .map(|i| &self.connector_serials[i]);
        Ok(sign_crl(
            site_ca,
            (now - Duration::hours(1), now + Duration::days(365)),
            serial,
        )?
        .1)
    }

    /// The intermediate's and the root's CRL, DER, as written by [`Self::write`].
    pub fn crls_der(&self) -> (&[u8], &[u8]) {
        (&self.intermediate_crl, &self.root_crl)
    }

    /// Writes every file into `dir` (created if missing); keys get mode 0600 on Unix.
    /// Existing files of the same names are replaced.
    pub fn write(&self, dir: &Path) -> Result<DemoPkiPaths, PkiError> {
        let io_err = |path: &Path| {
            let path = path.to_owned();
            move |source| PkiError::Io { path, source }
        };
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let dir = dir.canonicalize().map_err(io_err(dir))?;

        let cert = |name: &str, pem: &str| -> Result<PathBuf, PkiError> {
            let path = dir.join(name);
            std::fs::write(&path, pem).map_err(io_err(&path))?;
            Ok(path)
        };
        let pair = |name: &str, issued: &Issued| -> Result<(PathBuf, PathBuf), PkiError> {
            let cert_path = cert(&format!("{name}.pem"), &issued.cert_pem)?;
            let key_path = dir.join(format!("{name}.key"));
            write_private(&key_path, &issued.key_pem).map_err(io_err(&key_path))?;
            Ok((cert_path, key_path))
        };

        let (server_cert, server_key) = pair("server", &self.server)?;
        let connectors = self
            .connectors
            .iter()
            .map(|(id, issued)| {
                pair(&format!("connector-{id}"), issued).map(|(cert, key)| ConnectorPaths {
                    id: id.clone(),
                    cert,
                    key,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let (client_cert, client_key) = pair("client", &self.client)?;
        let (expired_client_cert, expired_client_key) =
            pair("client-expired", &self.expired_client)?;
        let (no_eku_client_cert, no_eku_client_key) = pair("client-no-eku", &self.no_eku_client)?;
        let (untrusted_client_cert, untrusted_client_key) =
            pair("client-untrusted", &self.untrusted_client)?;
        let (revoked_client_cert, revoked_client_key) =
            pair("client-revoked", &self.revoked_client)?;
        let (role_server_cert, role_server_key) = pair("role-server", &self.role_server)?;
        let (role_client_cert, role_client_key) = pair("role-client", &self.role_client)?;

        Ok(DemoPkiPaths {
            root_ca: cert("root-ca.pem", &self.root_ca)?,
            intermediate_ca: cert("intermediate-ca.pem", &self.intermediate_ca)?,
            server_cert,
            server_key,
            site_ca: cert("site-ca.pem", &self.site_ca)?,
            connectors,
            client_cert,
            client_key,
            expired_client_cert,
            expired_client_key,
            no_eku_client_cert,
            no_eku_client_key,
            untrusted_root_ca: cert("untrusted-root-ca.pem", &self.untrusted_root_ca)?,
            untrusted_client_cert,
            untrusted_client_key,
            revoked_client_cert,
            revoked_client_key,
            crl: cert("crl.pem", &self.crl_pem)?,
            intermediate_crl: write_der(&dir, "intermediate.crl", &self.intermediate_crl)?,
            root_crl: write_der(&dir, "root.crl", &self.root_crl)?,
            role_server_cert,
            role_server_key,
            role_client_cert,
            role_client_key,
        })
    }
}

/// A CRL numbered by its thisUpdate (so a later one always has a higher number).
fn sign_crl(
    ca: &Ca,
    (this_update, next_update): (OffsetDateTime, OffsetDateTime),
    revoked: Option<&SerialNumber>,
) -> Result<(Vec<u8>, String), PkiError> {
    let number = u64::try_from(this_update.unix_timestamp()).unwrap_or(1);
    let crl = CertificateRevocationListParams {
        this_update,
        next_update,
        crl_number: SerialNumber::from_slice(&number.to_be_bytes()),
        issuing_distribution_point: None,
        revoked_certs: revoked
            .map(|serial| RevokedCertParams {
                serial_number: serial.clone(),
                revocation_time: this_update,
                reason_code: Some(RevocationReason::KeyCompromise),
                invalidity_date: None,
            })
            .into_iter()
            .collect(),
        key_identifier_method: KeyIdMethod::Sha256,
    }
    .signed_by(&ca.issuer)
    .map_err(gen_err("CRL"))?;
    Ok((
        crl.der().as_ref().to_vec(),
        crl.pem().map_err(gen_err("CRL"))?,
    ))
}

fn write_der(dir: &Path, name: &str, der: &[u8]) -> Result<PathBuf, PkiError> {
    let path = dir.join(name);
    std::fs::write(&path, der).map_err(|source| PkiError::Io {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// Writes a private key readable by the owner only.
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    cmg_core::private_file::write(path, contents.as_bytes()).map_err(std::io::Error::other)
}
