//! Verifying TLS clients for the tests: rustls over a blocking `TcpStream`, and `openssl
//! s_client -quiet` as a child process. Both check the server's certificate and the record
//! layer, so plaintext that leaks into the TLS stream fails the read instead of passing as
//! data.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustls::client::ClientConnection;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore, StreamOwned, SupportedProtocolVersion};
use wireloop_middleware::CertKey;

use super::{ChildGuard, TempFile, TIMEOUT};

/// A rustls client connection over a blocking socket.
pub type Tls = StreamOwned<ClientConnection, TcpStream>;

pub fn localhost_cert() -> CertKey {
    CertKey::self_signed(&["localhost".to_string()]).expect("self-signed certificate")
}

/// A client configuration trusting `trust`'s certificate, for the given TLS versions.
pub fn client_config(
    trust: &CertKey,
    versions: &[&'static SupportedProtocolVersion],
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(trust.leaf_pem().as_bytes()) {
        roots.add(c.expect("PEM")).expect("trust anchor");
    }
    let provider = wireloop_middleware::tls::crypto_provider();
    Arc::new(
        ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// A TCP connection with bounded reads and writes.
pub fn tcp_connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.set_write_timeout(Some(TIMEOUT)).unwrap();
    s
}

/// Completes a TLS handshake for `localhost` over `sock`.
#[track_caller]
pub fn handshake(sock: TcpStream, cfg: &Arc<ClientConfig>) -> Tls {
    let name = ServerName::try_from("localhost").unwrap();
    let conn = ClientConnection::new(cfg.clone(), name).expect("client connection");
    let mut s = StreamOwned::new(conn, sock);
    while s.conn.is_handshaking() {
        if let Err(e) = s.conn.complete_io(&mut s.sock) {
            panic!("TLS handshake: {e}");
        }
    }
    s
}

/// Connects to `addr` and completes the handshake.
#[track_caller]
pub fn tls_connect(addr: SocketAddr, cfg: &Arc<ClientConfig>) -> Tls {
    handshake(tcp_connect(addr), cfg)
}

/// Reads exactly `n` bytes of plaintext, or panics saying what failed after how many.
#[track_caller]
pub fn read_exact(s: &mut impl Read, n: usize, what: &str) -> Vec<u8> {
    let mut got = vec![0u8; n];
    let mut have = 0;
    while have < n {
        match s.read(&mut got[have..]) {
            Ok(0) => panic!("{what}: the stream ended after {have} of {n} bytes"),
            Ok(k) => have += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!("{what}: after {have} of {n} bytes: {e} ({:?})", e.kind()),
        }
    }
    got
}

/// Asserts that `got` is `want`, naming the first difference instead of dumping megabytes.
#[track_caller]
pub fn assert_bytes(got: &[u8], want: &[u8], what: &str) {
    if got != want {
        let at = got.iter().zip(want).position(|(a, b)| a != b);
        panic!(
            "{what}: {} bytes differ from the {} expected (first difference at {at:?}; \
             starts {:?})",
            got.len(),
            want.len(),
            String::from_utf8_lossy(&got[..got.len().min(64)])
        );
    }
}

/// Sends close_notify; the server's close_notify and nothing else must come back.
#[track_caller]
pub fn close_cleanly(mut s: Tls) {
    s.conn.send_close_notify();
    s.flush().expect("flush close_notify");
    let mut rest = Vec::new();
    if let Err(e) = s.read_to_end(&mut rest) {
        panic!("expected close_notify, got {e} ({:?})", e.kind());
    }
    assert!(rest.is_empty(), "bytes before close_notify: {rest:?}");
}

/// `openssl s_client -quiet` connected to `port` on 127.0.0.1 and verifying the server
/// against `cafile`; its stdout is collected by a thread. Killed and reaped when dropped.
pub struct SClient {
    guard: ChildGuard,
    stdin: Option<ChildStdin>,
    out: Receiver<Vec<u8>>,
    got: Vec<u8>,
    err: Option<JoinHandle<String>>,
}

impl SClient {
    pub fn spawn(port: u16, cafile: &TempFile) -> SClient {
        let spawned = Command::new("openssl")
            .args(["s_client", "-connect"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-servername", "localhost", "-CAfile"])
            .arg(cafile.path())
            // -quiet implies -ign_eof; -no_ign_eof after it makes the end of stdin end
            // the session (close_notify).
            .args(["-verify_return_error", "-quiet", "-no_ign_eof"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let child = spawned.unwrap_or_else(|e| {
            panic!("cannot run `openssl` ({e}): the openssl command-line tool must be on PATH")
        });
        let mut guard = ChildGuard(Some(child));
        let stdin = guard.child().stdin.take();
        let mut stdout = guard.child().stdout.take().unwrap();
        let mut stderr = guard.child().stderr.take().unwrap();
        let (tx, out) = mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 16 * 1024];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        let err = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        SClient {
            guard,
            stdin,
            out,
            got: Vec::new(),
            err: Some(err),
        }
    }

    /// Writes `data` to s_client's stdin (it sends it to the server).
    pub fn send(&mut self, data: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(data).expect("write to s_client");
        stdin.flush().unwrap();
    }

    /// The next `n` bytes s_client printed (the plaintext it decrypted).
    #[track_caller]
    pub fn read_exact(&mut self, n: usize) -> Vec<u8> {
        let deadline = Instant::now() + TIMEOUT;
        while self.got.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.out.recv_timeout(left) {
                Ok(chunk) => self.got.extend_from_slice(&chunk),
                Err(e) => {
                    let have = self.got.len();
                    let stderr = self.stop();
                    panic!("s_client: {have} of {n} bytes, then {e:?}; stderr:\n{stderr}");
                }
            }
        }
        self.got.drain(..n).collect()
    }

    /// Closes stdin (s_client sends close_notify and exits) and asserts a clean exit with
    /// nothing more printed.
    #[track_caller]
    pub fn finish(mut self) {
        self.stdin = None;
        let status = self.guard.wait_timeout(TIMEOUT);
        let stderr = self.err.take().map(|t| t.join().unwrap_or_default());
        let stderr = stderr.unwrap_or_default();
        match status {
            Ok(st) => assert!(st.success(), "s_client exited with {st}; stderr:\n{stderr}"),
            Err(e) => panic!("s_client: {e}; stderr:\n{stderr}"),
        }
        while let Ok(chunk) = self.out.recv_timeout(Duration::from_millis(100)) {
            self.got.extend_from_slice(&chunk);
        }
        assert!(self.got.is_empty(), "s_client printed more: {:?}", self.got);
    }

    /// Kills s_client; returns what it said on stderr.
    fn stop(&mut self) -> String {
        self.stdin = None;
        let _ = self.guard.wait_timeout(Duration::from_secs(2));
        self.err
            .take()
            .map(|t| t.join().unwrap_or_default())
            .unwrap_or_default()
    }
}
