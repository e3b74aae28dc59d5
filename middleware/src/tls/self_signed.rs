//! Self-signed certificates made now, for tests, demos and a TLS listener that has not been
//! given one: what sslyze and testssl accept from a self-signed server certificate.
//!
//! - Subject CN: the first name; SANs: every name, as an IP address when it parses as one,
//!   else as a DNS name.
//! - Valid from [`BACKDATE`] before now (clocks of peers differ) for [`LIFETIME`] in all: at
//!   most 398 days, the CA/Browser Forum's ceiling that clients check.
//! - Subject and Authority Key Identifiers (the same key id: it signs itself),
//!   `basicConstraints CA:FALSE`, key usage `digitalSignature`, extended key usage
//!   `serverAuth`, a random 127-bit serial number.
//! - An ECDSA P-256 key.

use std::net::IpAddr;
use std::time::Duration;

use rcgen::{
    CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
    SerialNumber,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use wireloop::Error;

/// How long before "now" a generated certificate becomes valid.
pub const BACKDATE: Duration = Duration::from_secs(60 * 60);
/// A generated certificate's whole validity period (not before to not after): 397 days, one
/// less than the 398 the CA/Browser Forum allows.
pub const LIFETIME: Duration = Duration::from_secs(397 * 24 * 60 * 60);

fn gen_err(e: impl std::fmt::Display) -> Error {
    Error::layer(format!("cannot generate a certificate: {e}"))
}

/// A certificate and its key for `names` (see the module's documentation).
pub(super) fn generate(
    names: &[String],
) -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>), Error> {
    let first = names
        .first()
        .ok_or_else(|| gen_err("no name to make it for"))?;
    let mut params = CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, first.as_str());
    params.subject_alt_names = names.iter().map(|n| san(n)).collect::<Result<_, Error>>()?;
    let not_before = time::OffsetDateTime::now_utc() - BACKDATE;
    params.not_before = not_before;
    params.not_after = not_before + LIFETIME;
    params.is_ca = IsCa::ExplicitNoCa; // writes the Subject Key Identifier too
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let mut serial = [0u8; 16];
    getrandom::fill(&mut serial).map_err(gen_err)?;
    serial[0] = (serial[0] & 0x7f) | 0x40; // positive, 16 bytes long
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(gen_err)?;
    let cert = params.self_signed(&key).map_err(gen_err)?;
    let key = PrivateKeyDer::try_from(key.serialize_der())
        .map_err(|e| gen_err(format!("generated key: {e}")))?;
    Ok((cert.der().clone(), key))
}

fn san(name: &str) -> Result<SanType, Error> {
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let dns = name
        .try_into()
        .map_err(|e| gen_err(format!("{name:?} is not a DNS name: {e}")))?;
    Ok(SanType::DnsName(dns))
}

/// The names a certificate for this machine should carry: `localhost`, `127.0.0.1`, `::1`
/// and the host name (from `/proc/sys/kernel/hostname` or `/etc/hostname`, when there is
/// one that is a plain DNS name).
pub fn local_names() -> Vec<String> {
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    let host = ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|h| h.trim().to_ascii_lowercase())
        .find(|h| !h.is_empty());
    if let Some(h) = host {
        let plain = h.len() <= 253
            && h.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if plain && !names.contains(&h) {
            names.push(h);
        }
    }
    names
}
