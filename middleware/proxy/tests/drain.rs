//! Graceful shutdown of the HTTP proxy over real sockets: the listener closes, an idle
//! keep-alive client is closed at once, a request in flight is answered in full with
//! `Connection: close`, and the loop then ends by itself. Every wait is bounded.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use wireloop::Server;
use wireloop_proxy::{Balance, Group, HttpProxy, Peer, ProxyHttp, Settings};

const TIMEOUT: Duration = Duration::from_secs(10);

/// Every request to group 0.
struct All;

impl ProxyHttp for All {
    type Ctx = ();
}

/// Reads until the end of a request head.
fn read_head(s: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut b = [0u8; 1024];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut b) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&b[..n]),
        }
    }
    got
}

#[test]
fn shutdown_finishes_the_request_in_flight_and_closes_the_idle() {
    // A backend that answers `/slow` only when told to, anything else at once.
    let backend = TcpListener::bind("127.0.0.1:0").unwrap();
    let up = backend.local_addr().unwrap();
    let (got_tx, got_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let go_rx = std::sync::Arc::new(std::sync::Mutex::new(go_rx));
    thread::spawn(move || {
        for s in backend.incoming() {
            let Ok(mut s) = s else { return };
            let (got_tx, go_rx) = (got_tx.clone(), go_rx.clone());
            thread::spawn(move || {
                s.set_read_timeout(Some(TIMEOUT)).unwrap();
                loop {
                    let head = read_head(&mut s);
                    if head.is_empty() {
                        return;
                    }
                    if head.starts_with(b"GET /slow ") {
                        got_tx.send(()).unwrap();
                        let go = go_rx.lock().unwrap().recv_timeout(TIMEOUT);
                        if go.is_err() {
                            return;
                        }
                    }
                    let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
                    if s.write_all(ok).is_err() {
                        return;
                    }
                }
            });
        }
    });
    let group = Group::new(
        "g",
        vec![Peer::parse(&format!("http://{up}")).unwrap()],
        Balance::RoundRobin,
    )
    .unwrap();
    let server = Server::builder()
        .listen("tcp://127.0.0.1:0")
        .unwrap()
        .shutdown_timeout(TIMEOUT)
        .build()
        .unwrap();
    let addr = server.local_addrs()[0].inet().unwrap();
    let handle = server.handle();
    let (done_tx, done_rx) = mpsc::channel();
    thread::spawn(move || {
        let r =
            server.serve(move |_| HttpProxy::new(All, vec![group.clone()], Settings::default()));
        let _ = done_tx.send(r.is_ok());
    });

    // A keep-alive client that got its answer and now sends nothing.
    let mut idle = TcpStream::connect(addr).unwrap();
    idle.set_read_timeout(Some(TIMEOUT)).unwrap();
    idle.write_all(b"GET /first HTTP/1.1\r\nHost: h\r\n\r\n")
        .unwrap();
    let mut first = vec![0u8; 1024];
    let n = idle.read(&mut first).unwrap();
    assert!(first[..n].ends_with(b"\r\n\r\nhello"), "{:?}", &first[..n]);
    // A client whose request is with the backend.
    let mut busy = TcpStream::connect(addr).unwrap();
    busy.set_read_timeout(Some(TIMEOUT)).unwrap();
    busy.write_all(b"GET /slow HTTP/1.1\r\nHost: h\r\n\r\n")
        .unwrap();
    got_rx
        .recv_timeout(TIMEOUT)
        .expect("the request reached the backend");

    handle.shutdown();
    // The idle one is closed at once, with nothing more said.
    let mut rest = Vec::new();
    idle.read_to_end(&mut rest).expect("closed, not timed out");
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
    // The one in flight gets its whole answer, saying the connection closes, then the close.
    go_tx.send(()).unwrap();
    let mut out = Vec::new();
    busy.read_to_end(&mut out)
        .expect("the answer, then the close");
    let out = String::from_utf8_lossy(&out);
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    assert!(out.contains("\r\nConnection: close\r\n"), "{out}");
    assert!(out.ends_with("\r\n\r\nhello"), "{out}");
    // With nothing left in flight, the loop ends by itself.
    assert_eq!(
        done_rx.recv_timeout(TIMEOUT),
        Ok(true),
        "the server did not end"
    );
}
