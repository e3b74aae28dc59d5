//! TLS on rustls, as a [`Layer`]: a server side for listeners and a client side for dialed
//! connections.
//!
//! # Crypto provider
//!
//! aws-lc-rs by default, so the post-quantum hybrid `X25519MLKEM768` is offered first;
//! `ring` with the feature of that name (no post-quantum key exchange, smaller build). See
//! [`crypto_provider`] for the trade and the build requirements.
//!
//! # Certificates and logs
//!
//! [`CertKey::self_signed`] makes what a scanner accepts from a self-signed server: CN and
//! SANs for the names given ([`local_names`] for this machine), at most 398 days from an
//! hour ago, key identifiers. rustls logs `Illegal SNI extension` at warn level for every
//! client that sends an IP address as SNI (wrk, testssl) and serves it anyway; give the
//! target `rustls::msgs` debug level in your logger (the examples do).
//!
//! # How the session is driven
//!
//! rustls's buffered sans-IO API, in the order the loop needs it: `read_tls` takes the
//! bytes that arrived (until its buffer is full), `process_new_packets` decrypts (an error
//! sends the alert rustls queued and closes), `reader` yields plaintext into the handler's
//! input, `writer` takes the handler's output and `write_tls` moves records into the
//! connection's output queue. The session stops taking wire bytes while the handler has
//! not consumed [`PLAIN_INPUT_LIMIT`] of decoded input, and stops encoding after
//! [`WIRE_BUDGET`] per step, so neither direction buffers without bound.

use std::io::{self, BufRead, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use wireloop::layer::{OfferProbe, SocketRead};
use wireloop::{Error, LayerBuffers};

use crate::translate::{ConnInfo, Layer, Session};

/// Decoded input the handler may leave unconsumed before the session stops reading.
pub const PLAIN_INPUT_LIMIT: usize = 256 * 1024;
/// Wire bytes a session writes per step before letting the loop send them.
pub const WIRE_BUDGET: usize = 256 * 1024;
/// Default handshake timeout.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

mod counters;
mod provider;
#[cfg(feature = "self-signed")]
mod self_signed;

pub use counters::TlsCounters;
pub use provider::crypto_provider;
use provider::crypto_provider as provider;
#[cfg(feature = "self-signed")]
pub use self_signed::{local_names, BACKDATE, LIFETIME};

fn cfg_err(msg: impl Into<String>) -> Error {
    Error::layer(msg.into())
}

/// A certificate chain and its private key.
#[derive(Debug)]
pub struct CertKey {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl Clone for CertKey {
    fn clone(&self) -> CertKey {
        CertKey {
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl CertKey {
    /// From PEM text holding the chain (leaf first) and the private key — in one buffer
    /// (as evio's example takes them) or in two (pass both).
    pub fn from_pem(chain_pem: &[u8], key_pem: &[u8]) -> Result<CertKey, Error> {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain_pem)
            .collect::<Result<_, _>>()
            .map_err(|e| cfg_err(format!("bad certificate PEM: {e}")))?;
        if chain.is_empty() {
            return Err(cfg_err("no certificate in the PEM"));
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|e| cfg_err(format!("no usable private key in the PEM: {e}")))?;
        Ok(CertKey { chain, key })
    }

    /// From one PEM file holding both the chain and the key.
    pub fn from_pem_file(path: impl AsRef<Path>) -> Result<CertKey, Error> {
        let path = path.as_ref();
        let pem = std::fs::read(path)
            .map_err(|e| cfg_err(format!("cannot read {}: {e}", path.display())))?;
        CertKey::from_pem(&pem, &pem).map_err(|e| cfg_err(format!("{}: {e}", path.display())))
    }

    /// From a chain file and a key file.
    pub fn from_pem_files(
        chain: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<CertKey, Error> {
        let read = |p: &Path| {
            std::fs::read(p).map_err(|e| cfg_err(format!("cannot read {}: {e}", p.display())))
        };
        CertKey::from_pem(&read(chain.as_ref())?, &read(key.as_ref())?)
    }

    /// A self-signed certificate for `names` (DNS names or IP addresses; the first is the
    /// subject's CN), valid from an hour ago for 397 days, with key identifiers (see
    /// [`LIFETIME`] and [`BACKDATE`]).
    #[cfg(feature = "self-signed")]
    pub fn self_signed(names: &[String]) -> Result<CertKey, Error> {
        let (cert, key) = self_signed::generate(names)?;
        Ok(CertKey {
            chain: vec![cert],
            key,
        })
    }

    /// A self-signed certificate for this machine: `localhost`, `127.0.0.1`, `::1` and the
    /// host name ([`local_names`]).
    #[cfg(feature = "self-signed")]
    pub fn self_signed_local() -> Result<CertKey, Error> {
        CertKey::self_signed(&local_names())
    }

    /// The leaf certificate (DER).
    pub fn leaf_der(&self) -> &[u8] {
        &self.chain[0]
    }

    /// The leaf certificate in PEM, for clients to trust (`curl --cacert`).
    pub fn leaf_pem(&self) -> String {
        pem_block("CERTIFICATE", &self.chain[0])
    }

    /// The private key in PEM (PKCS#8).
    pub fn key_pem(&self) -> String {
        pem_block("PRIVATE KEY", self.key.secret_der())
    }

    /// SHA-256 fingerprint of the leaf, as `AB:CD:...`.
    pub fn fingerprint(&self) -> String {
        provider::sha256(&self.chain[0])
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":")
    }

    fn certified(&self) -> Result<Arc<CertifiedKey>, Error> {
        let key = provider()
            .key_provider
            .load_private_key(self.key.clone_key())
            .map_err(|e| cfg_err(format!("unsupported private key: {e}")))?;
        Ok(Arc::new(CertifiedKey::new(self.chain.clone(), key)))
    }
}

fn pem_block(label: &str, der: &[u8]) -> String {
    const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::with_capacity(der.len() * 4 / 3 + 4);
    for chunk in der.chunks(3) {
        let n = chunk.len();
        let v = (chunk[0] as u32) << 16
            | (*chunk.get(1).unwrap_or(&0) as u32) << 8
            | *chunk.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= n {
                b64.push(B64[(v >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                b64.push('=');
            }
        }
    }
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Picks a certificate by the client's SNI name, or the default one.
#[derive(Debug)]
struct SniResolver {
    by_name: Vec<(String, Arc<CertifiedKey>)>,
    default: Arc<CertifiedKey>,
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        if let Some(name) = hello.server_name() {
            // An exact name first, then a wildcard (`*.example.com`: one label).
            for (n, ck) in &self.by_name {
                if n.eq_ignore_ascii_case(name) {
                    return Some(ck.clone());
                }
            }
            if let Some((first, parent)) = name.split_once('.') {
                for (n, ck) in &self.by_name {
                    let wild = n.strip_prefix("*.");
                    if !first.is_empty() && wild.is_some_and(|w| w.eq_ignore_ascii_case(parent)) {
                        return Some(ck.clone());
                    }
                }
            }
        }
        Some(self.default.clone())
    }
}

/// Builds a [`TlsServer`].
#[derive(Debug)]
pub struct TlsServerBuilder {
    default: CertKey,
    sni: Vec<(String, CertKey)>,
    alpn: Vec<Vec<u8>>,
    resumption: bool,
    tls12: bool,
    handshake_timeout: Option<Duration>,
}

impl TlsServerBuilder {
    /// Serves `name` (the client's SNI, compared without regard to case; `*.example.com`
    /// matches one label under `example.com`, after the exact names) with this
    /// certificate; others get the default.
    pub fn sni_cert(mut self, name: &str, cert: CertKey) -> TlsServerBuilder {
        self.sni.push((name.to_string(), cert));
        self
    }

    /// ALPN protocols offered, in preference order (e.g. `b"http/1.1"`).
    pub fn alpn(mut self, protocols: &[&[u8]]) -> TlsServerBuilder {
        self.alpn = protocols.iter().map(|p| p.to_vec()).collect();
        self
    }

    /// Session resumption (TLS 1.3 tickets, TLS 1.2 session cache); on by default. Off
    /// makes every handshake a full one.
    pub fn resumption(mut self, on: bool) -> TlsServerBuilder {
        self.resumption = on;
        self
    }

    /// Accept TLS 1.2 as well as 1.3 (default on).
    pub fn tls12(mut self, on: bool) -> TlsServerBuilder {
        self.tls12 = on;
        self
    }

    /// Drop a connection whose handshake is not done in this time (default 10 s).
    pub fn handshake_timeout(mut self, d: Option<Duration>) -> TlsServerBuilder {
        self.handshake_timeout = d;
        self
    }

    /// Makes the layer.
    pub fn build(self) -> Result<TlsServer, Error> {
        let versions: &[&rustls::SupportedProtocolVersion] = if self.tls12 {
            rustls::ALL_VERSIONS
        } else {
            &[&rustls::version::TLS13]
        };
        let resolver = SniResolver {
            default: self.default.certified()?,
            by_name: self
                .sni
                .iter()
                .map(|(n, c)| Ok((n.clone(), c.certified()?)))
                .collect::<Result<_, Error>>()?,
        };
        let mut cfg = ServerConfig::builder_with_provider(provider())
            .with_protocol_versions(versions)
            .map_err(|e| cfg_err(format!("TLS versions: {e}")))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(resolver));
        cfg.alpn_protocols = self.alpn;
        if self.resumption {
            cfg.ticketer =
                provider::ticketer().map_err(|e| cfg_err(format!("session tickets: {e}")))?;
            cfg.session_storage = rustls::server::ServerSessionMemoryCache::new(4096);
        } else {
            cfg.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
            cfg.send_tls13_tickets = 0;
        }
        Ok(TlsServer {
            config: Arc::new(cfg),
            handshake_timeout: self.handshake_timeout,
            counters: None,
        })
    }
}

/// The server side of TLS for accepted connections.
#[derive(Clone, Debug)]
pub struct TlsServer {
    config: Arc<ServerConfig>,
    handshake_timeout: Option<Duration>,
    counters: Option<TlsCounters>,
}

impl TlsServer {
    /// Starts a server layer with `cert` as the default certificate.
    pub fn builder(cert: CertKey) -> TlsServerBuilder {
        TlsServerBuilder {
            default: cert,
            sni: Vec::new(),
            alpn: Vec::new(),
            resumption: true,
            tls12: true,
            handshake_timeout: Some(DEFAULT_HANDSHAKE_TIMEOUT),
        }
    }

    /// A layer from a ready rustls configuration.
    pub fn from_config(config: Arc<ServerConfig>) -> TlsServer {
        TlsServer {
            config,
            handshake_timeout: Some(DEFAULT_HANDSHAKE_TIMEOUT),
            counters: None,
        }
    }

    /// Counts its sessions' handshakes, completed and failed, in `counters`.
    pub fn counting(mut self, counters: TlsCounters) -> TlsServer {
        self.counters = Some(counters);
        self
    }
}

impl Layer for TlsServer {
    fn session(&self, _info: &ConnInfo) -> Result<Box<dyn Session>, Error> {
        let conn = rustls::ServerConnection::new(self.config.clone()).map_err(Error::layer)?;
        let mut session = TlsSession::new(conn.into());
        session.counters = self.counters.clone();
        Ok(Box::new(session))
    }

    fn handshake_timeout(&self) -> Option<Duration> {
        self.handshake_timeout
    }
}

/// Builds a [`TlsClient`].
pub struct TlsClientBuilder {
    roots: RootCertStore,
    server_name: Option<String>,
    alpn: Vec<Vec<u8>>,
    client_cert: Option<CertKey>,
    verify: bool,
    handshake_timeout: Option<Duration>,
}

impl TlsClientBuilder {
    /// The name sent as SNI and checked against the server's certificate (default: none
    /// set — then `build` fails; every TLS client must say whom it expects).
    pub fn server_name(mut self, name: &str) -> TlsClientBuilder {
        self.server_name = Some(name.to_string());
        self
    }

    /// Trust these CA certificates (PEM) instead of the built-in webpki roots.
    pub fn root_ca_pem(mut self, pem: &[u8]) -> Result<TlsClientBuilder, Error> {
        let mut store = RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(pem) {
            let c = c.map_err(|e| cfg_err(format!("bad CA PEM: {e}")))?;
            store
                .add(c)
                .map_err(|e| cfg_err(format!("unusable CA certificate: {e}")))?;
        }
        if store.is_empty() {
            return Err(cfg_err("no CA certificate in the PEM"));
        }
        self.roots = store;
        Ok(self)
    }

    /// ALPN protocols offered, in preference order.
    pub fn alpn(mut self, protocols: &[&[u8]]) -> TlsClientBuilder {
        self.alpn = protocols.iter().map(|p| p.to_vec()).collect();
        self
    }

    /// Present this client certificate when the server asks for one.
    pub fn client_cert(mut self, cert: CertKey) -> TlsClientBuilder {
        self.client_cert = Some(cert);
        self
    }

    /// **Dangerous**: accept any server certificate (no chain, name or expiry check). The
    /// connection is then encrypted but not authenticated: anyone on the path can read it.
    /// For tests against throwaway certificates only.
    pub fn dangerous_accept_any_certificate(mut self) -> TlsClientBuilder {
        self.verify = false;
        self
    }

    /// Give up on a handshake that takes longer (default 10 s).
    pub fn handshake_timeout(mut self, d: Option<Duration>) -> TlsClientBuilder {
        self.handshake_timeout = d;
        self
    }

    /// Makes the layer.
    pub fn build(self) -> Result<TlsClient, Error> {
        let name = self
            .server_name
            .ok_or_else(|| cfg_err("TLS client: no server name given"))?;
        let server_name = ServerName::try_from(name.clone())
            .map_err(|e| cfg_err(format!("bad server name {name:?}: {e}")))?;
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| cfg_err(format!("TLS versions: {e}")))?;
        if self.verify && self.roots.is_empty() {
            return Err(cfg_err(
                "TLS client: no trusted roots (enable the `webpki-roots` feature or give \
                 root_ca_pem)",
            ));
        }
        let builder = if self.verify {
            builder.with_root_certificates(self.roots)
        } else {
            log::warn!("TLS client for {name:?}: certificate verification is OFF");
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAny(provider())))
        };
        let mut cfg = match self.client_cert {
            Some(ck) => builder
                .with_client_auth_cert(ck.chain, ck.key)
                .map_err(|e| cfg_err(format!("client certificate: {e}")))?,
            None => builder.with_no_client_auth(),
        };
        cfg.alpn_protocols = self.alpn;
        Ok(TlsClient {
            config: Arc::new(cfg),
            server_name,
            handshake_timeout: self.handshake_timeout,
        })
    }
}

/// The client side of TLS for dialed connections: SNI, certificate verification (webpki
/// roots by default, or a given CA), optional client certificate, ALPN.
#[derive(Clone, Debug)]
pub struct TlsClient {
    config: Arc<ClientConfig>,
    server_name: ServerName<'static>,
    handshake_timeout: Option<Duration>,
}

impl TlsClient {
    /// Starts a client layer trusting the webpki (Mozilla) roots (with the `webpki-roots`
    /// feature; without it, nothing until [`root_ca_pem`](TlsClientBuilder::root_ca_pem)).
    pub fn builder() -> TlsClientBuilder {
        TlsClientBuilder {
            roots: default_roots(),
            server_name: None,
            alpn: Vec::new(),
            client_cert: None,
            verify: true,
            handshake_timeout: Some(DEFAULT_HANDSHAKE_TIMEOUT),
        }
    }
}

impl Layer for TlsClient {
    fn session(&self, _info: &ConnInfo) -> Result<Box<dyn Session>, Error> {
        let conn = rustls::ClientConnection::new(self.config.clone(), self.server_name.clone())
            .map_err(Error::layer)?;
        Ok(Box::new(TlsSession::new(conn.into())))
    }

    fn handshake_timeout(&self) -> Option<Duration> {
        self.handshake_timeout
    }
}

/// The trust store a client starts with: the Mozilla roots with the `webpki-roots`
/// feature, else none (then `root_ca_pem` or `dangerous_accept_any_certificate` decides).
fn default_roots() -> RootCertStore {
    #[cfg(feature = "webpki-roots")]
    return RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    #[cfg(not(feature = "webpki-roots"))]
    return RootCertStore::empty();
}

/// Verifier that accepts everything (see `dangerous_accept_any_certificate`).
#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// One TLS connection (server or client side).
pub struct TlsSession {
    conn: rustls::Connection,
    peer_closed: bool,
    /// Where the handshake's outcome is counted, until it is.
    counters: Option<TlsCounters>,
}

impl TlsSession {
    fn new(conn: rustls::Connection) -> TlsSession {
        TlsSession {
            conn,
            peer_closed: false,
            counters: None,
        }
    }

    /// The negotiated ALPN protocol.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.conn.alpn_protocol()
    }

    /// The negotiated protocol version.
    pub fn protocol_version(&self) -> Option<rustls::ProtocolVersion> {
        self.conn.protocol_version()
    }

    /// On the server side, the name the client asked for (SNI), if it sent one; `None`
    /// on the client side.
    pub fn server_name(&self) -> Option<&str> {
        match &self.conn {
            rustls::Connection::Server(s) => s.server_name(),
            rustls::Connection::Client(_) => None,
        }
    }

    /// Decrypts the records rustls holds and moves their plaintext to `plain`.
    fn decrypt(&mut self, plain: &mut LayerBuffers) -> Result<(), Error> {
        let state = match self.conn.process_new_packets() {
            Ok(state) => state,
            Err(e) => {
                if let Some(c) = self.counters.take() {
                    c.failed();
                }
                return Err(Error::layer(e));
            }
        };
        if self.counters.is_some() && !self.conn.is_handshaking() {
            if let Some(c) = self.counters.take() {
                c.completed();
            }
        }
        self.pull_plaintext(plain)?;
        if state.peer_has_closed() {
            self.peer_closed = true;
        }
        Ok(())
    }

    /// Moves decrypted plaintext from rustls into the handler's input.
    fn pull_plaintext(&mut self, plain: &mut LayerBuffers) -> Result<(), Error> {
        // Copies each decrypted chunk where rustls keeps it (no read into a zeroed buffer).
        loop {
            let mut reader = self.conn.reader();
            let taken = match reader.fill_buf() {
                Ok([]) => {
                    self.peer_closed = true;
                    return Ok(());
                }
                Ok(chunk) => {
                    plain.push_input(chunk);
                    chunk.len()
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(Error::layer(e)),
            };
            reader.consume(taken);
        }
    }
}

impl Session for TlsSession {
    fn read_wire(&mut self, wire: &[u8], plain: &mut LayerBuffers) -> Result<usize, Error> {
        let mut consumed = 0;
        while consumed < wire.len() && plain.input_len() < PLAIN_INPUT_LIMIT {
            let mut rd = &wire[consumed..];
            match self.conn.read_tls(&mut rd) {
                Ok(0) => break,
                Ok(n) => consumed += n,
                // rustls's buffers are full: decrypt and hand over first.
                Err(_) => {}
            }
            self.decrypt(plain)?;
            if self.peer_closed {
                // Nothing after close_notify is data: drop it.
                return Ok(wire.len());
            }
            if !self.conn.wants_read() {
                // rustls holds data it cannot release yet: come back when the handler has
                // consumed some (the wrapper calls again while it makes progress).
                break;
            }
        }
        Ok(consumed)
    }

    fn read_socket(
        &mut self,
        socket: &mut dyn io::Read,
        plain: &mut LayerBuffers,
    ) -> Option<Result<SocketRead, Error>> {
        if self.peer_closed || plain.input_len() >= PLAIN_INPUT_LIMIT || !self.conn.wants_read() {
            return None;
        }
        let mut probe = OfferProbe::new(socket);
        let result = self.conn.read_tls(&mut probe);
        let offered = probe.offered();
        if matches!(result, Ok(n) if n > 0) {
            if let Err(e) = self.decrypt(plain) {
                return Some(Err(e));
            }
        }
        Some(Ok(SocketRead { result, offered }))
    }

    fn write_wire(&mut self, plain: &mut LayerBuffers, wire: &mut dyn Write) -> Result<(), Error> {
        let mut budget = WIRE_BUDGET;
        loop {
            let conn = &mut self.conn;
            if budget > 0 && !conn.is_handshaking() {
                plain.drain_output(|buf| conn.writer().write(buf).unwrap_or(0));
            }
            let mut progressed = false;
            while self.conn.wants_write() {
                match self.conn.write_tls(wire) {
                    Ok(0) => break,
                    Ok(n) => {
                        budget = budget.saturating_sub(n);
                        progressed = true;
                    }
                    Err(e) => return Err(Error::layer(e)),
                }
            }
            if !progressed || plain.output_len() == 0 || budget == 0 || self.conn.is_handshaking() {
                return Ok(());
            }
        }
    }

    fn is_ready(&self) -> bool {
        !self.conn.is_handshaking()
    }

    fn peer_closed(&self) -> bool {
        self.peer_closed
    }

    fn close(&mut self) {
        self.conn.send_close_notify();
    }
}

impl Drop for TlsSession {
    fn drop(&mut self) {
        // Still counting: the connection ended before its handshake did.
        if let Some(c) = self.counters.take() {
            c.failed();
        }
    }
}
