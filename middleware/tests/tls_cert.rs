//! The generated self-signed certificate, parsed with x509-parser: CN and SANs (localhost,
//! 127.0.0.1, ::1, the host name), a validity that starts a little before now and lasts at
//! most 398 days, Subject and Authority Key Identifiers. Then over real sockets: rustls
//! verifies it by name and by IP address, and `openssl s_client` verifies the tls-echo
//! example's generated certificate by IP while sending that IP as SNI, which rustls
//! reports (`Illegal SNI extension`) at debug level only, never per connection at the
//! default level.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use common::tls_client::{read_exact, tcp_connect};
use common::{example_bin, ChildGuard, ChildLog, Echo, TempFile, TestServer, TIMEOUT};
use rustls::client::ClientConnection;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore, StreamOwned};
use wireloop::Server;
use wireloop_middleware::tls::{crypto_provider, local_names, BACKDATE, LIFETIME};
use wireloop_middleware::{translate, CertKey, TlsServer};
use x509_parser::prelude::*;

const DAY: i64 = 24 * 60 * 60;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn lifetime_starts_a_little_before_now_and_is_at_most_398_days() {
    let before = now();
    let ck = CertKey::self_signed_local().expect("certificate");
    let after = now();
    let (_, cert) = X509Certificate::from_der(ck.leaf_der()).expect("DER");
    let nb = cert.validity().not_before.timestamp();
    let na = cert.validity().not_after.timestamp();
    let backdate = BACKDATE.as_secs() as i64;
    assert!(
        nb >= before - backdate - 1 && nb <= after - backdate + 1,
        "not before {nb}, made between {before} and {after}"
    );
    assert!(nb < before, "valid already when made");
    assert_eq!(na - nb, LIFETIME.as_secs() as i64);
    assert!(na - nb <= 398 * DAY, "lifetime {} days", (na - nb) / DAY);
    assert_eq!(cert.version(), X509Version::V3);
}

#[test]
fn subject_and_authority_key_identifiers_match() {
    let ck = CertKey::self_signed(&["localhost".to_string()]).expect("certificate");
    let (_, cert) = X509Certificate::from_der(ck.leaf_der()).expect("DER");
    let mut ski = None;
    let mut aki = None;
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => ski = Some(k.0.to_vec()),
            ParsedExtension::AuthorityKeyIdentifier(a) => {
                aki = a.key_identifier.as_ref().map(|k| k.0.to_vec())
            }
            _ => {}
        }
    }
    let ski = ski.expect("a Subject Key Identifier");
    assert!(!ski.is_empty());
    assert_eq!(
        aki.as_ref(),
        Some(&ski),
        "AKI names the key that signed it: its own"
    );
    let bc = cert
        .basic_constraints()
        .expect("parse")
        .expect("basicConstraints");
    assert!(!bc.value.ca, "a leaf, not a CA");
    // DER omits a DEFAULT value: CA:FALSE is an empty SEQUENCE, not an explicit FALSE
    // (which strict parsers such as Python's cryptography, inside sslyze, refuse).
    let raw = cert
        .extensions()
        .iter()
        .find(|e| e.oid == oid_registry::OID_X509_EXT_BASIC_CONSTRAINTS)
        .expect("basicConstraints");
    assert!(raw.critical, "basicConstraints is critical");
    assert_eq!(raw.value, [0x30, 0x00], "CA:FALSE as an empty SEQUENCE");
    let eku = cert.extended_key_usage().expect("parse").expect("EKU");
    assert!(eku.value.server_auth);
    assert_eq!(cert.subject(), cert.issuer(), "self-signed");
}

#[test]
fn cn_and_sans_cover_localhost_loopback_and_the_host_name() {
    let names = local_names();
    assert_eq!(names[..3], ["localhost", "127.0.0.1", "::1"]);
    let ck = CertKey::self_signed(&names).expect("certificate");
    let (_, cert) = X509Certificate::from_der(ck.leaf_der()).expect("DER");
    let cn: Vec<&str> = cert
        .subject()
        .iter_common_name()
        .map(|c| c.as_str().expect("CN text"))
        .collect();
    assert_eq!(cn, ["localhost"]);
    let san = cert
        .subject_alternative_name()
        .expect("parse")
        .expect("SAN");
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    for n in &san.value.general_names {
        match n {
            GeneralName::DNSName(d) => dns.push(d.to_string()),
            GeneralName::IPAddress(ip) => ips.push(ip.to_vec()),
            other => panic!("unexpected SAN {other:?}"),
        }
    }
    assert!(dns.contains(&"localhost".to_string()), "{dns:?}");
    assert!(ips.contains(&vec![127, 0, 0, 1]), "{ips:?}");
    let mut v6 = vec![0u8; 16];
    v6[15] = 1;
    assert!(ips.contains(&v6), "{ips:?}");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let host = host.trim().to_ascii_lowercase();
    if !host.is_empty() && host != "localhost" {
        assert!(dns.contains(&host), "host name {host:?} not in {dns:?}");
    }
}

#[test]
fn bad_names_are_errors_not_panics() {
    let e = CertKey::self_signed(&[]).expect_err("no names");
    assert!(e.to_string().contains("no name"), "{e}");
    let e = CertKey::self_signed(&["bücher.example".to_string()]).expect_err("not ASCII");
    assert!(e.to_string().contains("bücher.example"), "{e}");
}

/// rustls verifies the generated certificate as a server's for `localhost`, `127.0.0.1`
/// and `::1` (name and IP SANs, validity, signature).
#[test]
fn rustls_verifies_it_by_name_and_by_ip() {
    let ck = CertKey::self_signed_local().expect("certificate");
    let tls = TlsServer::builder(ck.clone()).build().expect("TLS server");
    let server = Server::builder()
        .listen("tcp://127.0.0.1:0")
        .expect("listen")
        .loops(wireloop::Loops::Fixed(1))
        .build()
        .expect("server");
    let server = TestServer::start(server, move |_| translate(Echo, |_| true, tls.clone()));
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ck.leaf_pem().as_bytes()) {
        roots.add(c.expect("PEM")).expect("trust anchor");
    }
    let cfg = Arc::new(
        ClientConfig::builder_with_provider(crypto_provider())
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    for name in ["localhost", "127.0.0.1", "::1"] {
        let sn = ServerName::try_from(name).expect("server name");
        let conn = ClientConnection::new(cfg.clone(), sn).expect("client");
        let mut s = StreamOwned::new(conn, tcp_connect(server.tcp_addr(0)));
        while s.conn.is_handshaking() {
            if let Err(e) = s.conn.complete_io(&mut s.sock) {
                panic!("handshake as {name}: {e}");
            }
        }
        s.write_all(name.as_bytes()).expect("write");
        assert_eq!(read_exact(&mut s, name.len(), name), name.as_bytes());
    }
    server.stop().expect("server");
}

/// Runs tls-echo at `level`, has `openssl s_client` verify its generated certificate by
/// IP (`-verify_ip 127.0.0.1`) while sending `127.0.0.1` as SNI, stops the example with
/// SIGTERM and returns its whole log.
fn tls_echo_with_ip_sni(level: &str) -> Vec<String> {
    let cert_out = TempFile::with_contents("tls-echo-out", b"");
    // `--tlsport 0` turns TLS off: take a port free a moment ago, another if it was lost.
    let mut tries = 0;
    let (mut guard, log, port) = loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("probe listener")
            .port();
        let mut child = Command::new(example_bin("tls-echo"))
            .args(["--port", "0", "--tlsport", &port.to_string(), "--cert-out"])
            .arg(cert_out.path())
            .env("WIRELOOP_LOG", level)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn tls-echo");
        let log = ChildLog::spawn(child.stderr.take().unwrap());
        let guard = ChildGuard(Some(child));
        match log.wait_for(", TLS on ", TIMEOUT) {
            Ok(()) => break (guard, log, port),
            Err(e) if tries >= 4 => panic!("tls-echo did not start: {e}"),
            Err(_) => tries += 1,
        }
    };
    let s_client = Command::new("openssl")
        .args(["s_client", "-connect"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["-servername", "127.0.0.1", "-verify_ip", "127.0.0.1"])
        .args(["-verify_return_error", "-brief", "-CAfile"])
        .arg(cert_out.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the openssl command-line tool must be on PATH");
    let mut s_guard = ChildGuard(Some(s_client));
    let out = s_guard
        .0
        .take()
        .unwrap()
        .wait_with_output()
        .expect("s_client");
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "s_client: {said}");
    assert!(said.contains("Verification: OK"), "s_client: {said}");
    let pid = guard.child().id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status();
    assert!(
        killed.map(|s| s.success()).unwrap_or(false),
        "kill -TERM {pid}"
    );
    log.wait_for("stopped", TIMEOUT)
        .expect("tls-echo stops on SIGTERM");
    guard.wait_timeout(TIMEOUT).expect("tls-echo exits");
    let lines = log.lines.lock().unwrap().clone();
    lines
}

#[test]
fn ip_address_sni_is_logged_at_debug_only() {
    let info = tls_echo_with_ip_sni("info");
    assert!(
        !info.iter().any(|l| l.contains("Illegal SNI")),
        "at the default level: {info:?}"
    );
    let debug = tls_echo_with_ip_sni("debug");
    let sni: Vec<&String> = debug.iter().filter(|l| l.contains("Illegal SNI")).collect();
    assert_eq!(sni.len(), 1, "one line at debug: {debug:?}");
    assert!(sni[0].contains("DEBUG"), "{sni:?}");
}
