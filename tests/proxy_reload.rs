//! `reverse-proxy --config FILE` reloads without dropping anything: keep-alive clients
//! send requests without a pause while the file changes its route and its TLS
//! certificate three times (reloads by `SIGHUP` and by `POST /reload` on the admin
//! listener), and once is broken. Every request is answered (a client reconnects only
//! after a response that said `Connection: close`); each reload sends new connections to
//! the new route and serves the new certificates, the default one and one chosen by
//! server name (SNI, an exact name and a wildcard), their fingerprints read with
//! `openssl s_client`; the broken file is refused with its file and line, and the
//! running configuration stays.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use common::process::{free_port, Process};
use common::tools::TempDir;
use common::{wait_until, TestServer, TIMEOUT};
use wireloop::Server;
use wireloop_middleware::http1::{Http1, Request, Response};
use wireloop_middleware::CertKey;

/// A backend answering its name on every path.
fn backend(name: &'static str) -> TestServer {
    let server = Server::builder()
        .listen("tcp://127.0.0.1:0")
        .unwrap()
        .build()
        .unwrap();
    TestServer::start(server, move |_| {
        Http1::server(move |_: &Request<'_>, res: &mut Response<'_>| {
            res.body(name.as_bytes());
        })
    })
}

struct Ports {
    plain: u16,
    tls: u16,
    admin: u16,
}

/// The file: a plain and a TLS listener, every request to `upstream`, the TLS
/// listener's certificate from `cert`, and `cert-sni` for two server names.
fn file(p: &Ports, upstream: SocketAddr, cert: &str) -> String {
    format!(
        "[admin]\nlisten = \"127.0.0.1:{admin}\"\n\n\
         [[listener]]\naddress = \"tcp://127.0.0.1:{plain}\"\n\n\
         [[listener]]\naddress = \"tcp://127.0.0.1:{tls}\"\n\
         tls = {{ cert = \"{cert}.pem\", key = \"{cert}.key\", sni = [\
         {{ names = [\"api.reload.test\", \"*.cdn.reload.test\"], \
         cert = \"{cert}-sni.pem\", key = \"{cert}-sni.key\" }}] }}\n\n\
         [[upstream]]\nname = \"app\"\nservers = [\"{upstream}\"]\n\n\
         [[route]]\npath_prefix = \"/\"\nupstream = \"app\"\n",
        admin = p.admin,
        plain = p.plain,
        tls = p.tls,
    )
}

/// Writes `dir/NAME.pem` and `dir/NAME.key`; the certificate's fingerprint.
fn write_cert(dir: &Path, name: &str) -> String {
    let ck = CertKey::self_signed(&["localhost".into()]).unwrap();
    std::fs::write(dir.join(format!("{name}.pem")), ck.leaf_pem()).unwrap();
    std::fs::write(dir.join(format!("{name}.key")), ck.key_pem()).unwrap();
    ck.fingerprint()
}

/// The SHA-256 fingerprint of the certificate the TLS listener serves to a new
/// connection, as `openssl s_client` receives it.
fn served_fingerprint(port: u16, server_name: &str) -> String {
    let s_client = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}")])
        .args(["-servername", server_name])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .expect("run openssl s_client");
    let mut x509 = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run openssl x509");
    x509.stdin
        .take()
        .unwrap()
        .write_all(&s_client.stdout)
        .unwrap();
    let out = x509.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim()
        .rsplit('=')
        .next()
        .unwrap_or_default()
        .to_string()
}

/// One request on `s`: the backend's name and whether the response said
/// `Connection: close`, or what went wrong.
fn request(s: &mut TcpStream) -> Result<(String, bool), String> {
    s.write_all(b"GET /x HTTP/1.1\r\nHost: reload.test\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut buf = Vec::new();
    let mut b = [0u8; 512];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match s.read(&mut b) {
            Ok(0) => return Err(format!("closed without an answer after {buf:?}")),
            Ok(n) => buf.extend_from_slice(&b[..n]),
            Err(e) => return Err(format!("read: {e}")),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    if !head.starts_with("http/1.1 200") {
        return Err(format!("answered {head:?}"));
    }
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| format!("no length in {head:?}"))?;
    while buf.len() < head_end + len {
        match s.read(&mut b) {
            Ok(0) => return Err("closed in a body".into()),
            Ok(n) => buf.extend_from_slice(&b[..n]),
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    let body = String::from_utf8_lossy(&buf[head_end..head_end + len]).into_owned();
    Ok((body, head.contains("connection: close")))
}

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// The backend a new connection's request reaches.
fn new_connection_reaches(port: u16) -> String {
    request(&mut connect(port)).map(|r| r.0).unwrap_or_default()
}

/// Clients sending requests back to back on keep-alive connections until `stop`.
struct Load {
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicU64>,
    reconnects: Arc<AtomicU64>,
    failures: Arc<Mutex<Vec<String>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(port: u16, clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicU64::new(0));
        let reconnects = Arc::new(AtomicU64::new(0));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let threads = (0..clients)
            .map(|_| {
                let (stop, answered) = (stop.clone(), answered.clone());
                let (reconnects, failures) = (reconnects.clone(), failures.clone());
                std::thread::spawn(move || {
                    let mut s = connect(port);
                    while !stop.load(Ordering::Relaxed) {
                        match request(&mut s) {
                            Ok((_, close)) => {
                                answered.fetch_add(1, Ordering::Relaxed);
                                if close {
                                    reconnects.fetch_add(1, Ordering::Relaxed);
                                    s = connect(port);
                                }
                            }
                            Err(e) => {
                                failures.lock().unwrap().push(e);
                                s = connect(port);
                            }
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            answered,
            reconnects,
            failures,
            threads,
        }
    }

    /// Waits until `n` more requests have been answered.
    fn progress(&self, n: u64) {
        let from = self.answered.load(Ordering::Relaxed);
        assert!(
            wait_until(TIMEOUT, || self.answered.load(Ordering::Relaxed)
                >= from + n),
            "the load stalled"
        );
    }

    fn stop(self) -> (u64, u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
        let failures = self.failures.lock().unwrap().clone();
        (
            self.answered.load(Ordering::Relaxed),
            self.reconnects.load(Ordering::Relaxed),
            failures,
        )
    }
}

/// `POST /reload` on the admin listener: its status and body.
fn post_reload(admin: u16) -> (u16, String) {
    let mut s = connect(admin);
    s.write_all(
        b"POST /reload HTTP/1.1\r\nHost: admin\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out[9..12].parse().unwrap();
    let body = out.split("\r\n\r\n").nth(1).unwrap_or_default().to_string();
    (status, body)
}

fn sighup(p: &Process) {
    let st = Command::new("kill")
        .args(["-HUP", &p.child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}

fn start_proxy(path: &Path) -> Process {
    let args: Vec<String> = ["--config", &path.display().to_string(), "--no-access-log"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    Process::start(
        &common::example_bin("reverse-proxy"),
        &args,
        "reverse-proxy admin on",
        TIMEOUT,
    )
    .unwrap_or_else(|e| panic!("the proxy did not start: {e}"))
}

#[test]
fn reloads_under_load_change_routes_and_certificates_and_lose_no_request() {
    let (a, b) = (backend("a"), backend("b"));
    let dir = TempDir::new("reload");
    let ports = Ports {
        plain: free_port(),
        tls: free_port(),
        admin: free_port(),
    };
    let path: PathBuf = dir.path().join("proxy.toml");
    let fingerprints: Vec<String> = (0..4)
        .map(|i| write_cert(dir.path(), &format!("cert{i}")))
        .collect();
    let sni_fingerprints: Vec<String> = (0..4)
        .map(|i| write_cert(dir.path(), &format!("cert{i}-sni")))
        .collect();
    // What each server name is served: the default certificate, or the SNI one (an
    // exact name, a wildcard).
    let check_certs = |i: usize| {
        for (name, want) in [
            ("localhost", &fingerprints[i]),
            ("api.reload.test", &sni_fingerprints[i]),
            ("x.cdn.reload.test", &sni_fingerprints[i]),
            ("x.y.cdn.reload.test", &fingerprints[i]),
        ] {
            assert_eq!(
                &served_fingerprint(ports.tls, name),
                want,
                "configuration {i}: the certificate for {name}"
            );
        }
    };
    std::fs::write(&path, file(&ports, a.tcp_addr(0), "cert0")).unwrap();
    let proxy = start_proxy(&path);
    assert_eq!(new_connection_reaches(ports.plain), "a");
    check_certs(0);

    let load = Load::start(ports.plain, 4);
    load.progress(200);
    for i in 1..=3 {
        // Routes alternate between the backends; every reload brings a new certificate.
        let (to, name) = if i % 2 == 1 { (&b, "b") } else { (&a, "a") };
        std::fs::write(&path, file(&ports, to.tcp_addr(0), &format!("cert{i}"))).unwrap();
        if i == 2 {
            let (status, body) = post_reload(ports.admin);
            assert_eq!(status, 200, "{body}");
            assert!(body.contains("in service"), "{body}");
        } else {
            sighup(&proxy);
        }
        assert!(
            wait_until(TIMEOUT, || new_connection_reaches(ports.plain) == name),
            "reload {i}: new connections do not reach {name}\n{}",
            proxy.output()
        );
        check_certs(i);
        load.progress(200);
    }

    // A broken file: refused with its line, the running configuration stays.
    std::fs::write(&path, "[[listener]]\naddress = 7\n").unwrap();
    let (status, body) = post_reload(ports.admin);
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("proxy.toml:2:"), "{body}");
    assert_eq!(new_connection_reaches(ports.plain), "b");
    check_certs(3);
    load.progress(200);

    let (answered, reconnects, failures) = load.stop();
    assert!(
        failures.is_empty(),
        "{} of {answered} requests failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    // Every keep-alive client was moved to each new configuration by a response that
    // said `Connection: close`.
    assert!(reconnects >= 3, "{reconnects} reconnects");
    // The counters went on through the reloads: every request the load sent is counted
    // for the group and the route the configurations share by name.
    let mut m = connect(ports.admin);
    m.write_all(b"GET /metrics HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut metrics = String::new();
    m.read_to_string(&mut metrics).unwrap();
    for name in [
        "wireloop_proxy_requests_total{group=\"app\",class=\"2xx\"} ",
        "wireloop_proxy_route_requests_total{route=\"*/\",class=\"2xx\"} ",
    ] {
        let counted: u64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in\n{metrics}"));
        assert!(counted >= answered, "{name}{counted} < {answered} answered");
    }
    let log = proxy.output();
    assert!(log.contains("configuration 4 in service"), "{log}");
    assert!(log.contains("reload refused"), "{log}");
    eprintln!("{answered} requests answered, {reconnects} reconnects, 0 failed");
}
