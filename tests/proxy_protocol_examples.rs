//! The PROXY protocol in the example proxies, with the real binaries: `reverse-proxy` and
//! `tcp-proxy` take headers from trusted senders (`--proxy-protocol-from`) and use the
//! client they name (X-Forwarded-For; the header `tcp-proxy` sends on); `tcp-proxy` sends
//! one to its upstreams (`--send-proxy-protocol`), as `reverse-proxy` does; haproxy itself
//! sends v2 to both. Every process is killed on drop; every wait is bounded.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;

use common::process::{reverse_proxy, Process};
use common::{recv_n, TIMEOUT};
use wireloop_middleware::codec::Status;
use wireloop_middleware::proxy_protocol::{parse, write, Header, Version};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn header(version: Version, source: &str, dest: &str) -> Vec<u8> {
    let mut h = Vec::new();
    write(
        version,
        source.parse().unwrap(),
        dest.parse().unwrap(),
        &mut h,
    );
    h
}

/// Sends `bytes` on a fresh connection and reads until the peer closes.
fn exchange(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    let _ = s.write_all(bytes);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

#[test]
fn reverse_proxy_forwards_the_client_a_trusted_header_names() {
    let be = common::backend::header_echo("be");
    let upstream = format!("http://{}", be.tcp_addr(0));
    let (_p, addr) = reverse_proxy(&upstream, &["--proxy-protocol-from", "127.0.0.0/8, ::1"]);
    let request = b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
    for version in [Version::V1, Version::V2] {
        let mut bytes = header(version, "203.0.113.9:40000", "192.0.2.1:80");
        bytes.extend(request);
        let out = String::from_utf8_lossy(&exchange(addr, &bytes)).into_owned();
        assert!(out.starts_with("HTTP/1.1 200 "), "{version:?}: {out}");
        assert!(
            out.contains("x-forwarded-for: 203.0.113.9\n"),
            "{version:?}: {out}"
        );
    }
    // A request without a header is refused, not served as the proxy's own address.
    assert_eq!(exchange(addr, request), b"");
}

/// A listener on 127.0.0.1 whose every connection is served by `serve` on a thread of
/// its own (read timeout set), with a sender for what it reports.
fn upstream_threads<T: Send + 'static>(
    serve: fn(&mut TcpStream, &mpsc::Sender<T>),
) -> (SocketAddr, mpsc::Receiver<T>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            let tx = tx.clone();
            thread::spawn(move || {
                s.set_read_timeout(Some(TIMEOUT)).unwrap();
                serve(&mut s, &tx);
            });
        }
    });
    (addr, rx)
}

/// An upstream that reports what each connection sent once a PROXY header and 4 bytes
/// after it are in (or the connection ended).
fn recording_upstream() -> (SocketAddr, mpsc::Receiver<Vec<u8>>) {
    upstream_threads(|s, tx| {
        let mut got = Vec::new();
        let mut buf = [0u8; 512];
        let done =
            |got: &[u8]| matches!(parse(got), Ok(Status::Complete((n, _))) if got.len() >= n + 4);
        while !done(&got) {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        let _ = tx.send(got);
    })
}

fn tcp_proxy(args: &[String]) -> (Process, SocketAddr) {
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mut all = vec!["--listen".to_string(), addr.to_string()];
    all.extend_from_slice(args);
    let p = Process::start(
        &common::example_bin("tcp-proxy"),
        &all,
        "tcp-proxy serving",
        TIMEOUT,
    )
    .expect("tcp-proxy starts");
    (p, addr)
}

/// What a recorded connection began with: its header, then the rest.
fn split_header(got: &[u8]) -> (Header, Vec<u8>) {
    match parse(got) {
        Ok(Status::Complete((n, h))) => (h, got[n..].to_vec()),
        other => panic!("no PROXY header first ({other:?}): {got:?}"),
    }
}

#[test]
fn tcp_proxy_passes_on_the_client_a_trusted_header_names() {
    let (up, rx) = recording_upstream();
    let (_p, addr) = tcp_proxy(&[
        "--upstream".into(),
        up.to_string(),
        "--proxy-protocol-from".into(),
        "127.0.0.1".into(),
        "--send-proxy-protocol".into(),
        "v2".into(),
    ]);
    let mut s = TcpStream::connect(addr).unwrap();
    let mut bytes = header(Version::V1, "198.51.100.7:5555", "192.0.2.9:443");
    bytes.extend(b"data");
    s.write_all(&bytes).unwrap();
    let got = recv_n(&rx, 1, TIMEOUT, "the upstream's bytes").remove(0);
    let (h, rest) = split_header(&got);
    assert_eq!(
        h,
        Header::Proxied {
            source: "198.51.100.7:5555".parse().unwrap(),
            dest: "192.0.2.9:443".parse().unwrap()
        }
    );
    assert_eq!(rest, b"data");
}

#[test]
fn tcp_proxy_names_the_socket_client_when_no_header_came() {
    let (up, rx) = recording_upstream();
    let (_p, addr) = tcp_proxy(&[
        "--upstream".into(),
        up.to_string(),
        "--send-proxy-protocol".into(),
        "v1".into(),
    ]);
    let mut s = TcpStream::connect(addr).unwrap();
    let me = s.local_addr().unwrap();
    s.write_all(b"data").unwrap();
    let got = recv_n(&rx, 1, TIMEOUT, "the upstream's bytes").remove(0);
    let (h, rest) = split_header(&got);
    assert_eq!(
        h,
        Header::Proxied {
            source: me,
            dest: addr
        }
    );
    assert_eq!(rest, b"data");
}

/// An HTTP upstream whose connections start with a PROXY header: every response's body is
/// the client that header named. Reports each connection's header.
fn naming_upstream() -> (SocketAddr, mpsc::Receiver<Header>) {
    upstream_threads(|s, tx| {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        let (n, h) = loop {
            if let Ok(Status::Complete(done)) = parse(&got) {
                break done;
            }
            match s.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(k) => got.extend_from_slice(&buf[..k]),
            }
        };
        got.drain(..n);
        let _ = tx.send(h);
        let body = match h {
            Header::Proxied { source, .. } => source.to_string(),
            Header::Local => "local".to_string(),
        };
        loop {
            while let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                got.drain(..end + 4);
                let r = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                if s.write_all(r.as_bytes()).is_err() {
                    return;
                }
            }
            match s.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(k) => got.extend_from_slice(&buf[..k]),
            }
        }
    })
}

/// Reads one response with a Content-Length body; returns its body.
fn read_response(s: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
            assert!(head.starts_with("http/1.1 200 "), "{head}");
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .and_then(|v| v.trim().parse().ok())
                .expect("a content-length");
            if got.len() >= end + 4 + len {
                return String::from_utf8_lossy(&got[end + 4..end + 4 + len]).into_owned();
            }
        }
        let n = s.read(&mut buf).expect("the response");
        assert!(n > 0, "EOF before the whole response");
        got.extend_from_slice(&buf[..n]);
    }
}

#[test]
fn reverse_proxy_sends_each_upstream_connection_a_header_naming_its_client() {
    let (up, rx) = naming_upstream();
    let (_p, addr) = reverse_proxy(&format!("http://{up}"), &["--send-proxy-protocol", "v2"]);
    let request = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n";
    // Two clients, two keep-alive requests each, interleaved: an upstream connection
    // that named one client never carries the other's requests.
    let mut a = TcpStream::connect(addr).unwrap();
    let mut b = TcpStream::connect(addr).unwrap();
    for s in [&a, &b] {
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
    }
    let (me_a, me_b) = (a.local_addr().unwrap(), b.local_addr().unwrap());
    for round in 0..2 {
        a.write_all(request).unwrap();
        assert_eq!(
            read_response(&mut a),
            me_a.to_string(),
            "client a, round {round}"
        );
        b.write_all(request).unwrap();
        assert_eq!(
            read_response(&mut b),
            me_b.to_string(),
            "client b, round {round}"
        );
    }
    let headers = recv_n(&rx, 2, TIMEOUT, "the upstream connections' headers");
    for h in headers {
        match h {
            Header::Proxied { source, dest } => {
                assert!(source == me_a || source == me_b, "{source}");
                assert_eq!(dest, addr);
            }
            other => panic!("{other:?}"),
        }
    }
}

/// haproxy (Debian's package) in front of `backend`, `mode tcp`, sending a PROXY v2
/// header on every connection (`send-proxy-v2`); killed on drop. Its address.
fn haproxy_in_front_of(backend: SocketAddr, dir: &std::path::Path) -> (Process, SocketAddr) {
    let port = free_port();
    let cfg = dir.join("haproxy.cfg");
    std::fs::write(
        &cfg,
        format!(
            "global\n  log stderr local0 info\n\
             defaults\n  mode tcp\n  log global\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n\
             frontend fe\n  bind 127.0.0.1:{port}\n  default_backend be\n\
             backend be\n  server s1 {backend} send-proxy-v2\n"
        ),
    )
    .unwrap();
    let haproxy = which("haproxy").expect("haproxy (Debian's package) is needed for this test");
    // haproxy says nothing when it is ready: its start is checked by connecting.
    let child = std::process::Command::new(&haproxy)
        .args(["-db", "-f"])
        .arg(&cfg)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("haproxy starts");
    let p = Process {
        child,
        log: Default::default(),
        out: Default::default(),
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let up = common::wait_until(TIMEOUT, || TcpStream::connect(addr).is_ok());
    assert!(up, "haproxy is not listening on {addr}\n{}", p.output());
    (p, addr)
}

fn which(cmd: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .chain(["/usr/sbin", "/sbin"])
        .map(|d| std::path::Path::new(d).join(cmd))
        .find(|p| p.is_file())
}

/// A connection to `addr` from 127.0.0.2, so that the client the header names differs
/// from every proxy's own address (127.0.0.1).
fn connect_from_127_0_0_2(addr: SocketAddr) -> TcpStream {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.bind(&SocketAddr::from(([127, 0, 0, 2], 0)).into())
        .unwrap();
    s.connect(&addr.into()).unwrap();
    let s: TcpStream = s.into();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s
}

#[test]
fn haproxy_sending_proxy_v2_names_the_client_to_both_example_proxies() {
    let dir = std::env::temp_dir().join(format!("wl-haproxy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // L7: haproxy -> reverse-proxy (trusting 127.0.0.1) -> a backend echoing headers.
    let be = common::backend::header_echo("be");
    let upstream = format!("http://{}", be.tcp_addr(0));
    let (_rp, rp) = reverse_proxy(&upstream, &["--proxy-protocol-from", "127.0.0.1"]);
    let (_h7, front7) = haproxy_in_front_of(rp, &dir);
    let mut c = connect_from_127_0_0_2(front7);
    c.write_all(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = Vec::new();
    let _ = c.read_to_end(&mut out);
    let out = String::from_utf8_lossy(&out);
    assert!(out.starts_with("HTTP/1.1 200 "), "{out}");
    assert!(out.contains("x-forwarded-for: 127.0.0.2\n"), "{out}");
    // L4: haproxy -> tcp-proxy (trusting 127.0.0.1, sending v1 on) -> a recording upstream.
    let (up, rx) = recording_upstream();
    let (_tp, tp) = tcp_proxy(&[
        "--upstream".into(),
        up.to_string(),
        "--proxy-protocol-from".into(),
        "127.0.0.1".into(),
        "--send-proxy-protocol".into(),
        "v1".into(),
    ]);
    let (_h4, front4) = haproxy_in_front_of(tp, &dir);
    let mut c = connect_from_127_0_0_2(front4);
    c.write_all(b"data").unwrap();
    // The connection that checked haproxy was up came through too (from 127.0.0.1, with
    // nothing after its header): the client's is the one that carried data.
    let (h, rest) = loop {
        let got = recv_n(&rx, 1, TIMEOUT, "the upstream's bytes").remove(0);
        if let Ok(Status::Complete((n, h))) = parse(&got) {
            if got.len() > n {
                break (h, got[n..].to_vec());
            }
        }
    };
    match h {
        Header::Proxied { source, dest } => {
            assert_eq!(source.ip(), std::net::IpAddr::from([127, 0, 0, 2]));
            assert_eq!(
                dest, front4,
                "the address the client connected to: haproxy's"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(rest, b"data");
    let _ = std::fs::remove_dir_all(&dir);
}
