//! The reverse proxy serving HTTP/2 to its clients, end to end: by ALPN `h2` on its TLS
//! port and by prior knowledge on its plain port, in front of the `http-server` example
//! (HTTP/1.1 upstream), with curl, h2load (many streams on few connections) and a Python
//! `h2` client that resets one stream while another is answered. Each stream is its own
//! exchange: a stalled one holds back no other, and a reset one aborts its upstream
//! connection. Every process is killed and reaped on drop.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc::{channel, Sender};
use std::thread;

use common::process::{free_port, Process};
use common::tools::{curl, text, TempDir};
use common::TIMEOUT;

/// The reverse-proxy example on free plain and TLS ports of 127.0.0.1 in front of
/// `upstream`, its certificate written to `cert`.
fn proxy(upstream: &str, cert: &Path) -> (Process, u16, u16) {
    proxy_with(upstream, cert, &[])
}

/// [`proxy`] with more arguments.
fn proxy_with(upstream: &str, cert: &Path, more: &[&str]) -> (Process, u16, u16) {
    let (port, tlsport) = (free_port(), free_port());
    let mut args: Vec<String> = [
        "--listen-host",
        "127.0.0.1",
        "--port",
        &port.to_string(),
        "--tlsport",
        &tlsport.to_string(),
        "--cert-out",
        cert.to_str().unwrap(),
        "--upstream",
        upstream,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(more.iter().map(|s| s.to_string()));
    let p = Process::start(
        &common::example_bin("reverse-proxy"),
        &args,
        "forwarding to",
        TIMEOUT,
    )
    .expect("reverse-proxy starts");
    (p, port, tlsport)
}

/// The http-server example on a free plain port.
fn http_server() -> (Process, u16) {
    let (p, port, _) = common::process::http_server(None);
    (p, port)
}

#[test]
fn curl_and_h2load_speak_http2_through_the_proxy_by_alpn_and_prior_knowledge() {
    let dir = TempDir::new("rp-h2");
    let cert = dir.path().join("cert.pem");
    let (_backend, bport) = http_server();
    let (p, port, tlsport) = proxy(&format!("http://127.0.0.1:{bport}"), &cert);
    let cert = cert.to_str().unwrap();
    let plain = format!("http://127.0.0.1:{port}/");
    let tls = format!("https://localhost:{tlsport}/");
    let resolve = format!("localhost:{tlsport}:127.0.0.1");
    for (args, want) in common::h2::version_cases(&plain, &tls, cert, &resolve) {
        let mut all = vec!["-s", "-i", "-w", "%{http_version} %{http_code}"];
        all.extend_from_slice(&args);
        let out = text(&curl(&all));
        assert!(out.ends_with(want), "{args:?}: {out}\n{}", p.output());
        assert!(out.contains("Hello World!"), "{args:?}: {out}");
        // The upstream's response, passed on with the proxy's `Via`.
        assert!(
            out.to_ascii_lowercase().contains("via: 1.1 wireloop"),
            "{out}"
        );
    }
    // A body larger than the stream's and the connection's windows, streamed to the
    // upstream (HTTP/1.1, chunked: an h2 request has no Content-Length here) and back.
    let body = dir.path().join("body");
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&body, &data).unwrap();
    let at = format!("@{}", body.display());
    for extra in [&[][..], &["-H", "Content-Length:"][..]] {
        let echo = format!("http://127.0.0.1:{port}/echo");
        let mut args = vec!["-s", "--http2-prior-knowledge", "--data-binary", &at];
        args.extend_from_slice(extra);
        args.push(&echo);
        let back = curl(&args);
        assert!(
            back == data,
            "echo through the proxy over h2: {} bytes back of {}\n{}",
            back.len(),
            data.len(),
            p.output()
        );
    }
    for url in [plain.clone(), format!("https://127.0.0.1:{tlsport}/")] {
        // Many streams at once on each connection, all to one HTTP/1.1 upstream pool.
        common::h2::h2load_gets_every_answer(&url);
    }
}

#[test]
fn an_h2_upstream_carries_many_clients_requests_on_one_connection() {
    let dir = TempDir::new("rp-h2-up");
    let (backend, bport) = http_server();
    let idle_fds = backend.open_fds();
    let (p, port, _) = proxy_with(
        &format!("http://127.0.0.1:{bport}"),
        &dir.path().join("cert.pem"),
        &["--upstream-protocol", "h2"],
    );
    let url = format!("http://127.0.0.1:{port}/");
    for args in [&["--http1.1"][..], &["--http2-prior-knowledge"][..]] {
        let mut all = vec!["-s", "-i"];
        all.extend_from_slice(args);
        all.push(&url);
        let out = text(&curl(&all));
        assert!(
            out.contains("Hello World!"),
            "{args:?}: {out}\n{}",
            p.output()
        );
        // The response came over HTTP/2.
        assert!(
            out.to_ascii_lowercase().contains("via: 2 wireloop"),
            "{out}"
        );
    }
    // Bodies both ways over the upstream's streams, larger than its windows, from an
    // HTTP/1.1 and an HTTP/2 client.
    let body = dir.path().join("body");
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 13 % 251) as u8).collect();
    std::fs::write(&body, &data).unwrap();
    let at = format!("@{}", body.display());
    let echo = format!("http://127.0.0.1:{port}/echo");
    for version in ["--http1.1", "--http2-prior-knowledge"] {
        let back = curl(&["-s", version, "--data-binary", &at, &echo]);
        assert!(
            back == data,
            "{version}: {} bytes back of {}\n{}",
            back.len(),
            data.len(),
            p.output()
        );
    }
    // 80 requests at once from 4 clients: multiplexed, not a connection each (the
    // HTTP/1.1 pool would open up to 64).
    common::h2::h2load_gets_every_answer(&url);
    let upstream_conns = backend.open_fds() - idle_fds;
    assert!(
        upstream_conns <= 2,
        "{upstream_conns} upstream connections for 80 concurrent requests"
    );
}

/// An HTTP/1.1 upstream answering `ok` to every request but `/stall`, which it never
/// answers; it reports when a `/stall` request arrives and when its connection ends.
fn stalling_upstream(events: Sender<&'static str>) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { return };
            let events = events.clone();
            thread::spawn(move || serve(s, events));
        }
    });
    port
}

fn serve(mut s: TcpStream, events: Sender<&'static str>) {
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut r = BufReader::new(s.try_clone().unwrap());
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split(' ').nth(1).unwrap_or("").to_string();
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            if h == "\r\n" {
                break;
            }
        }
        if path == "/stall" {
            let _ = events.send("stall open");
            let mut rest = Vec::new();
            // Until the proxy ends the connection (reset or closed): never answered.
            let ended = match r.read_to_end(&mut rest) {
                Ok(_) => true,
                Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
            };
            let _ = events.send(if ended {
                "stall closed"
            } else {
                "stall timed out"
            });
            return;
        }
        if s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            .is_err()
        {
            return;
        }
    }
}

/// A Python `h2` client: `/stall` on stream 1 and `/ok` on stream 3 at once; prints
/// stream 3's answer, resets stream 1, waits for a line on stdin, then asks `/ok` again
/// on stream 5 of the same connection and prints that answer.
const H2_RESET: &str = r#"
import socket, sys
import h2.config, h2.connection, h2.events
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
c.initiate_connection()
def get(sid, path):
    c.send_headers(sid, [(":method", "GET"), (":path", path), (":authority", "backend"),
                         (":scheme", "http")], end_stream=True)
def answer(sid):
    status, body = None, b""
    while True:
        s.sendall(c.data_to_send())
        data = s.recv(65536)
        if not data:
            sys.exit("connection closed")
        for e in c.receive_data(data):
            if isinstance(e, h2.events.ResponseReceived) and e.stream_id == sid:
                status = dict(e.headers)[b":status"].decode()
            elif isinstance(e, h2.events.DataReceived):
                c.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
                if e.stream_id == sid:
                    body += e.data
            elif isinstance(e, h2.events.StreamEnded) and e.stream_id == sid:
                return status, body.decode()
            elif isinstance(e, h2.events.StreamReset) and e.stream_id == sid:
                return "reset", body.decode()
get(1, "/stall")
get(3, "/ok")
print(*answer(3), flush=True)
c.reset_stream(1)
s.sendall(c.data_to_send())
sys.stdin.readline()
get(5, "/ok")
print(*answer(5), flush=True)
"#;

#[test]
fn a_stalled_stream_holds_back_no_other_and_its_reset_aborts_the_upstream() {
    let dir = TempDir::new("rp-h2-reset");
    let (tx, rx) = channel();
    let up = stalling_upstream(tx);
    let (p, port, _) = proxy(
        &format!("http://127.0.0.1:{up}"),
        &dir.path().join("cert.pem"),
    );
    let mut py = Command::new("python3")
        .args(["-c", H2_RESET, &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut out = BufReader::new(py.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    if line.is_empty() {
        let _ = py.wait();
        let mut err = String::new();
        py.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        panic!("python h2 client (pip install h2): {err}\n{}", p.output());
    }
    // Stream 3 was answered while stream 1 waits on its upstream.
    assert_eq!(line.trim(), "200 ok");
    assert_eq!(rx.recv_timeout(TIMEOUT), Ok("stall open"));
    // The reset reaches the upstream connection of stream 1: it is ended, not left to
    // wait for an answer nobody reads.
    assert_eq!(
        rx.recv_timeout(TIMEOUT),
        Ok("stall closed"),
        "{}",
        p.output()
    );
    // The client's connection carries on.
    py.stdin.take().unwrap().write_all(b"go\n").unwrap();
    line.clear();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "200 ok", "{}", p.output());
    assert!(py.wait().unwrap().success());
}

/// A Python `h2` client streaming a 64 MiB request body on one stream as fast as the
/// windows allow, until they stay shut for a second: prints how many bytes went out.
const H2_PUSH: &str = r#"
import socket, sys
import h2.config, h2.connection, h2.events
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
c.initiate_connection()
c.send_headers(1, [(":method", "POST"), (":path", "/upload"), (":authority", "backend"),
                   (":scheme", "http")])
chunk, total, sent = b"x" * 16384, 64 << 20, 0
while sent < total:
    n = min(len(chunk), c.local_flow_control_window(1), c.max_outbound_frame_size)
    if n > 0:
        c.send_data(1, chunk[:n])
        sent += n
        s.sendall(c.data_to_send())
        continue
    s.sendall(c.data_to_send())
    s.settimeout(1.0)
    try:
        data = s.recv(65536)
    except socket.timeout:
        break
    if not data:
        break
    c.receive_data(data)
print(sent, flush=True)
"#;

#[test]
fn an_h2_request_body_is_held_by_flow_control_while_the_upstream_does_not_read() {
    let dir = TempDir::new("rp-h2-hold");
    // An upstream that accepts and never reads.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let up = l.local_addr().unwrap().port();
    let (tx, rx) = channel();
    thread::spawn(move || {
        if let Ok((s, _)) = l.accept() {
            let _ = tx.send(());
            // Held open, unread, until the test ends.
            thread::park();
            drop(s);
        }
    });
    let (p, port, _) = proxy(
        &format!("http://127.0.0.1:{up}"),
        &dir.path().join("cert.pem"),
    );
    let before = p.rss();
    let out = Command::new("python3")
        .args(["-c", H2_PUSH, &port.to_string()])
        .stdin(Stdio::null())
        .output()
        .expect("python3");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(rx.recv_timeout(TIMEOUT), Ok(()), "the upstream was dialed");
    let sent: usize = text(&out.stdout).trim().parse().unwrap();
    // What the sockets' buffers, the proxy's output high-water mark (1 MiB) and the
    // windows take, and no more: the proxy stopped giving the client credit.
    assert!(
        sent < 24 << 20,
        "{sent} bytes of 64 MiB taken from a client whose upstream reads nothing"
    );
    let grew = p.rss().saturating_sub(before);
    assert!(grew < 16 << 20, "the proxy grew by {grew} bytes");
}
