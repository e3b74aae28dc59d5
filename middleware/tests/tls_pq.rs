//! Post-quantum key exchange: with the default `aws-lc-rs` provider the TLS listener
//! offers the hybrid `X25519MLKEM768`, so a rustls client that allows nothing else
//! completes a handshake with it (and echoes data through it), and a client with the
//! default groups negotiates it too. Real sockets on loopback, port 0, bounded waits.
#![cfg(feature = "aws-lc-rs")]

mod common;

use std::io::Write;
use std::sync::Arc;

use common::tls_client::{localhost_cert, read_exact, tls_connect};
use common::{Echo, TestServer};
use rustls::crypto::aws_lc_rs::kx_group::X25519MLKEM768;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, NamedGroup, RootCertStore};
use wireloop::Server;
use wireloop_middleware::tls::crypto_provider;
use wireloop_middleware::{translate, CertKey, TlsServer};

fn tls_echo_server(cert: &CertKey) -> TestServer {
    let tls = TlsServer::builder(cert.clone())
        .build()
        .expect("TLS server");
    let server = Server::builder()
        .listen("tcp://127.0.0.1:0")
        .expect("listen")
        .loops(wireloop::Loops::Fixed(1))
        .build()
        .expect("server");
    TestServer::start(server, move |_| translate(Echo, |_| true, tls.clone()))
}

/// A client trusting `cert` whose key exchange is limited to `groups` (all of the
/// provider's if `None`).
fn client(
    cert: &CertKey,
    groups: Option<Vec<&'static dyn rustls::crypto::SupportedKxGroup>>,
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(cert.leaf_pem().as_bytes()) {
        roots.add(c.expect("PEM")).expect("trust anchor");
    }
    let mut provider: CryptoProvider = (*crypto_provider()).clone();
    if let Some(g) = groups {
        provider.kx_groups = g;
    }
    Arc::new(
        ClientConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

#[test]
fn client_allowing_only_x25519mlkem768_completes_a_handshake() {
    let cert = localhost_cert();
    let server = tls_echo_server(&cert);
    let cfg = client(&cert, Some(vec![X25519MLKEM768]));
    let mut tls = tls_connect(server.tcp_addr(0), &cfg);
    let group = tls.conn.negotiated_key_exchange_group().map(|g| g.name());
    assert_eq!(group, Some(NamedGroup::X25519MLKEM768));
    tls.write_all(b"post-quantum hello").expect("write");
    tls.flush().expect("flush");
    assert_eq!(read_exact(&mut tls, 18, "echo"), b"post-quantum hello");
    drop(tls);
    server.stop().expect("server");
}

#[test]
fn the_default_provider_offers_x25519mlkem768_first() {
    let groups: Vec<NamedGroup> = crypto_provider()
        .kx_groups
        .iter()
        .map(|g| g.name())
        .collect();
    assert_eq!(
        groups.first(),
        Some(&NamedGroup::X25519MLKEM768),
        "{groups:?}"
    );
    let cert = localhost_cert();
    let server = tls_echo_server(&cert);
    let tls = tls_connect(server.tcp_addr(0), &client(&cert, None));
    let group = tls.conn.negotiated_key_exchange_group().map(|g| g.name());
    assert_eq!(group, Some(NamedGroup::X25519MLKEM768));
    drop(tls);
    server.stop().expect("server");
}
