//! pathLenConstraint and name constraints evaluated as RFC 5280 says, on a path of
//! certificates already linked by signature: the two checks where rustls-webpki 0.103
//! refuses what RFC 5280 allows (docs/pki.md).
//!
//! - [`path_length`] (section 6.1.4 (l), (m)): every CA's pathLenConstraint, the
//!   root's included, limits the number of non-self-issued intermediates below it;
//!   self-issued intermediates (a CA's key rollover) do not count.
//! - [`names`] (section 4.2.1.10, 6.1.3 (b), (c)): the permitted and excluded
//!   subtrees of every CA above a certificate, for dNSName, iPAddress, rfc822Name
//!   (mailbox, host and domain forms, against e-mail SANs and the subject's legacy
//!   emailAddress attributes) and directoryName (RDN prefix of the subject DN and of
//!   directoryName SANs). A self-issued intermediate is not checked against them.
//!   A name form it does not evaluate (URI, otherName, ...) under a constraint of
//!   the same form refuses the certificate, as section 4.2.1.10 allows.
//!
//! It checks neither signatures nor anything else; the caller links the path.

use x509_parser::extensions::{GeneralName, NameConstraints};
use x509_parser::prelude::X509Certificate;
use x509_parser::x509::{AttributeTypeAndValue, X509Name};

use super::strict::{name, Place, Rule, Violation};

/// A path from the leaf up: `certs[0]` is the leaf, the last one the root, the
/// intermediates between them from the leaf's issuer up.
pub(crate) type Path<'p, 'a> = &'p [X509Certificate<'a>];

fn place(path: Path<'_, '_>, i: usize) -> Place {
    match i {
        0 => Place::Leaf,
        i if i + 1 == path.len() => Place::Root,
        i => Place::Intermediate(i),
    }
}

fn who(path: Path<'_, '_>, i: usize) -> String {
    name(place(path, i), &path[i].subject().to_string())
}

fn self_issued(cert: &X509Certificate<'_>) -> bool {
    cert.subject().as_raw() == cert.issuer().as_raw()
}

fn unreadable(path: Path<'_, '_>, i: usize, what: &str, e: impl std::fmt::Display) -> Violation {
    Violation {
        certificate: who(path, i),
        rule: Rule::Unreadable,
        detail: format!("{what}: {e}"),
    }
}

/// RFC 5280 section 6.1.4 (l) and (m), the root's constraint included.
pub(crate) fn path_length(path: Path<'_, '_>) -> Result<(), Violation> {
    // (constraint left, index of the CA that set it)
    let mut left: Option<(u32, usize)> = None;
    for i in (1..path.len()).rev() {
        let cert = &path[i];
        let is_root = i + 1 == path.len();
        if !is_root && !self_issued(cert) {
            match left {
                Some((0, by)) => {
                    return Err(Violation {
                        certificate: who(path, i),
                        rule: Rule::PathLength,
                        detail: format!("pathLenConstraint of {} exceeded", who(path, by)),
                    })
                }
                Some((n, by)) => left = Some((n - 1, by)),
                None => {}
            }
        }
        let bc = cert
            .basic_constraints()
            .map_err(|e| unreadable(path, i, "basicConstraints", e))?;
        if let Some(len) = bc.and_then(|bc| bc.value.path_len_constraint) {
            if left.is_none_or(|(n, _)| len < n) {
                left = Some((len, i));
            }
        }
    }
    Ok(())
}

/// RFC 5280 section 4.2.1.10 over the path: each certificate below a CA with
/// nameConstraints (self-issued intermediates excepted) keeps them.
pub(crate) fn names(path: Path<'_, '_>) -> Result<(), Violation> {
    let mut above: Vec<(usize, &NameConstraints<'_>)> = Vec::new();
    let mut held = Vec::with_capacity(path.len());
    for (i, cert) in path.iter().enumerate() {
        let nc = cert
            .name_constraints()
            .map_err(|e| unreadable(path, i, "nameConstraints", e))?;
        held.push(nc.map(|nc| nc.value));
    }
    for i in (0..path.len()).rev() {
        let cert = &path[i];
        if i + 1 < path.len() && !(i > 0 && self_issued(cert)) && !above.is_empty() {
            for name in presented(path, i)? {
                for (by, nc) in &above {
                    check_one(&name, nc).map_err(|why| Violation {
                        certificate: who(path, i),
                        rule: Rule::NameConstraints,
                        detail: format!("{} {why} of {}", describe(&name), who(path, *by)),
                    })?;
                }
            }
        }
        if let Some(nc) = held[i] {
            above.push((i, nc));
        }
    }
    Ok(())
}

/// The names of certificate `i` that name constraints apply to.
fn presented<'p>(path: Path<'p, '_>, i: usize) -> Result<Vec<GeneralName<'p>>, Violation> {
    let cert = &path[i];
    let mut out = Vec::new();
    let subject = cert.subject();
    if subject.iter().next().is_some() {
        out.push(GeneralName::DirectoryName(subject.clone()));
    }
    // The legacy emailAddress attribute: section 4.2.1.10 requires it when there is
    // no subjectAltName; cmg (as OpenSSL) checks it always.
    for attr in subject.iter_email() {
        let email = attr
            .as_str()
            .map_err(|e| unreadable(path, i, "subject emailAddress", e))?;
        out.push(GeneralName::RFC822Name(email));
    }
    let san = cert
        .subject_alternative_name()
        .map_err(|e| unreadable(path, i, "subjectAltName", e))?;
    if let Some(san) = san {
        out.extend(san.value.general_names.iter().cloned());
    }
    Ok(out)
}

fn describe(name: &GeneralName<'_>) -> String {
    match name {
        GeneralName::DNSName(n) => format!("dNSName {n:?}"),
        GeneralName::RFC822Name(n) => format!("rfc822Name {n:?}"),
        GeneralName::DirectoryName(n) => format!("directoryName \"{n}\""),
        GeneralName::IPAddress(ip) => format!("iPAddress {}", hex::encode(ip)),
        GeneralName::URI(u) => format!("URI {u:?}"),
        other => format!("{other:?}"),
    }
}

/// Whether `name` passes one CA's constraints; `Err` says how it does not.
fn check_one(name: &GeneralName<'_>, nc: &NameConstraints<'_>) -> Result<(), &'static str> {
    let excluded = nc.excluded_subtrees.iter().flatten();
    for base in excluded {
        if let (GeneralName::DNSName(n), GeneralName::DNSName(b)) = (name, &base.base) {
            if wildcard_reaches(n, b) {
                return Err("is a wildcard reaching into an excluded subtree");
            }
        }
        match within(name, &base.base) {
            Some(Ok(true)) => return Err("is in an excluded subtree"),
            Some(Ok(false)) | None => {}
            Some(Err(why)) => return Err(why),
        }
    }
    let Some(permitted) = &nc.permitted_subtrees else {
        return Ok(());
    };
    let mut same_form = false;
    for base in permitted {
        match within(name, &base.base) {
            Some(Ok(true)) => return Ok(()),
            Some(Ok(false)) => same_form = true,
            None => {}
            Some(Err(why)) => return Err(why),
        }
    }
    if same_form {
        Err("is outside the permitted subtrees")
    } else {
        Ok(())
    }
}

/// `None` when `base` is of another name form than `name`; otherwise whether `name`
/// is within the subtree, or why cmg cannot tell (then the certificate is refused).
fn within(name: &GeneralName<'_>, base: &GeneralName<'_>) -> Option<Result<bool, &'static str>> {
    use GeneralName as G;
    Some(match (name, base) {
        // webpki refuses a malformed constraint outright; so does cmg.
        (_, G::Invalid(..)) => Err("meets a malformed name constraint"),
        (G::DNSName(n), G::DNSName(b)) => Ok(dns_within(n, b)),
        (G::IPAddress(n), G::IPAddress(b)) => ip_within(n, b),
        (G::RFC822Name(n), G::RFC822Name(b)) => email_within(n, b),
        (G::DirectoryName(n), G::DirectoryName(b)) => Ok(dn_within(n, b)),
        (G::DNSName(_), _)
        | (G::IPAddress(_), _)
        | (G::RFC822Name(_), _)
        | (G::DirectoryName(_), _)
        | (_, G::DNSName(_))
        | (_, G::IPAddress(_))
        | (_, G::RFC822Name(_))
        | (_, G::DirectoryName(_)) => return None,
        (n, b) if form(n) == form(b) => {
            Err("has a name form cmg does not evaluate, under a constraint")
        }
        _ => return None,
    })
}

/// The GeneralName CHOICE tag (`Invalid` carries its own).
fn form(name: &GeneralName<'_>) -> u32 {
    match name {
        GeneralName::OtherName(..) => 0,
        GeneralName::RFC822Name(_) => 1,
        GeneralName::DNSName(_) => 2,
        GeneralName::X400Address(_) => 3,
        GeneralName::DirectoryName(_) => 4,
        GeneralName::EDIPartyName(_) => 5,
        GeneralName::URI(_) => 6,
        GeneralName::IPAddress(_) => 7,
        GeneralName::RegisteredID(_) => 8,
        GeneralName::Invalid(tag, _) => tag.0,
    }
}

/// dNSName: `name` is `base` with zero or more labels added on the left (a base
/// with a leading dot: one or more). Case-insensitive; an empty base matches all.
fn dns_within(name: &str, base: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let base = base.trim_end_matches('.').to_ascii_lowercase();
    if base.is_empty() {
        return true;
    }
    if let Some(suffix) = base.strip_prefix('.') {
        return name.len() > suffix.len() + 1 && name.ends_with(&base);
    }
    name == base || name.ends_with(&format!(".{base}"))
}

/// Whether the wildcard name `*.X` covers a name within `base` (`base` is one label
/// more than `X`): RFC 5280 does not speak of wildcards, so an excluded subtree
/// counts any name the wildcard can stand for. (A permitted subtree needs the whole
/// wildcard within it, which [`dns_within`] already requires.)
fn wildcard_reaches(name: &str, base: &str) -> bool {
    let Some(parent) = name.strip_prefix("*.") else {
        return false;
    };
    let parent = parent.trim_end_matches('.').to_ascii_lowercase();
    let base = base
        .trim_start_matches('.')
        .trim_end_matches('.')
        .to_ascii_lowercase();
    base.strip_suffix(&parent)
        .and_then(|label| label.strip_suffix('.'))
        .is_some_and(|label| !label.is_empty() && !label.contains('.'))
}

/// iPAddress: the constraint is an address and a mask of twice the address length.
fn ip_within(name: &[u8], base: &[u8]) -> Result<bool, &'static str> {
    if base.len() != 8 && base.len() != 32 {
        return Err("meets a malformed iPAddress constraint");
    }
    let (addr, mask) = base.split_at(base.len() / 2);
    if name.len() != addr.len() {
        return Ok(false);
    }
    Ok(name
        .iter()
        .zip(addr)
        .zip(mask)
        .all(|((n, a), m)| n & m == a & m))
}

/// rfc822Name: a base with `@` is one mailbox (local part exact, host
/// case-insensitive); a base starting with `.` is every host in that domain; any
/// other base is that one host.
fn email_within(name: &str, base: &str) -> Result<bool, &'static str> {
    let Some((local, host)) = name.rsplit_once('@') else {
        return Err("is not a mailbox, under an rfc822Name constraint");
    };
    Ok(match base.rsplit_once('@') {
        Some((b_local, b_host)) => local == b_local && host.eq_ignore_ascii_case(b_host),
        None if base.starts_with('.') => {
            host.len() > base.len()
                && host
                    .to_ascii_lowercase()
                    .ends_with(&base.to_ascii_lowercase())
        }
        None => host.eq_ignore_ascii_case(base),
    })
}

/// directoryName: `base`'s RDNs are the first RDNs of `name`.
fn dn_within(name: &X509Name<'_>, base: &X509Name<'_>) -> bool {
    let names: Vec<_> = name.iter().collect();
    let bases: Vec<_> = base.iter().collect();
    if bases.len() > names.len() {
        return false;
    }
    bases.iter().zip(&names).all(|(b, n)| {
        let b: Vec<_> = b.iter().collect();
        let n: Vec<_> = n.iter().collect();
        b.len() == n.len() && b.iter().all(|ba| n.iter().any(|na| attr_eq(na, ba)))
    })
}

/// Attribute equality: same type; strings compared as caseIgnoreMatch does (case
/// and runs of spaces folded, ends trimmed), other values byte for byte.
fn attr_eq(a: &AttributeTypeAndValue<'_>, b: &AttributeTypeAndValue<'_>) -> bool {
    if a.attr_type() != b.attr_type() {
        return false;
    }
    match (a.as_str(), b.as_str()) {
        (Ok(x), Ok(y)) => fold(x) == fold(y),
        _ => {
            let (x, y) = (a.attr_value(), b.attr_value());
            x.tag() == y.tag() && x.data == y.data
        }
    }
}

fn fold(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_names_add_labels_on_the_left() {
        assert!(dns_within("contoso.example", "contoso.example"));
        assert!(dns_within("WWW.Contoso.Example", "contoso.example"));
        assert!(!dns_within("badcontoso.example", "contoso.example"));
        assert!(!dns_within("contoso.example", ".contoso.example"));
        assert!(dns_within("a.contoso.example", ".contoso.example"));
        assert!(dns_within("anything", ""));
        assert!(wildcard_reaches("*.contoso.example", "bad.contoso.example"));
        assert!(wildcard_reaches(
            "*.Contoso.example",
            ".bad.contoso.example"
        ));
        assert!(!wildcard_reaches(
            "*.contoso.example",
            "a.bad.contoso.example"
        ));
        assert!(!wildcard_reaches("*.contoso.example", "contoso.example"));
        assert!(!wildcard_reaches(
            "www.contoso.example",
            "bad.contoso.example"
        ));
    }

    #[test]
    fn mailboxes_hosts_and_domains() {
        assert!(email_within("bob@contoso.example", "bob@Contoso.Example").expect("form"));
        assert!(!email_within("Bob@contoso.example", "bob@contoso.example").expect("form"));
        assert!(email_within("bob@contoso.example", "contoso.example").expect("form"));
        assert!(!email_within("bob@mail.contoso.example", "contoso.example").expect("form"));
        assert!(email_within("bob@mail.contoso.example", ".contoso.example").expect("form"));
        assert!(!email_within("bob@contoso.example", ".contoso.example").expect("form"));
        assert!(email_within("not a mailbox", "contoso.example").is_err());
    }

    #[test]
    fn other_forms_and_malformed_constraints() {
        let uri = GeneralName::URI("https://contoso.example/");
        let dns = GeneralName::DNSName("contoso.example");
        let malformed = GeneralName::Invalid(x509_parser::der_parser::asn1_rs::Tag(2), b"\xff");
        assert_eq!(within(&dns, &uri), None);
        assert!(matches!(within(&uri, &uri), Some(Err(_))));
        assert!(matches!(within(&dns, &malformed), Some(Err(_))));
    }

    #[test]
    fn ip_addresses_under_a_mask() {
        let base = [10, 1, 0, 0, 255, 255, 0, 0];
        assert_eq!(ip_within(&[10, 1, 2, 3], &base), Ok(true));
        assert_eq!(ip_within(&[10, 2, 2, 3], &base), Ok(false));
        assert_eq!(ip_within(&[0; 16], &base), Ok(false));
        assert!(ip_within(&[10, 1, 2, 3], &[10, 1]).is_err());
    }
}
