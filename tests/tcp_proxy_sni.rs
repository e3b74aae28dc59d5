//! The `tcp-proxy` example routing TLS by server name without terminating it
//! (`--sni-listen`, `--sni-route`), end to end with the real binary: ClientHellos captured
//! from `openssl s_client` (`tests/data/client-hello-*.bin`) go to the group their name
//! routes to and arrive byte for byte; a hello without a name takes the default route;
//! anything that is not a ClientHello, an unrouted name and a stalled hello are closed.
//!
//! Each backend reads what it is sent until the client's half-close (passed on by the
//! proxy), then answers `NAME:` and the bytes it got. Every wait is bounded; the proxy is
//! killed and reaped on drop.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use common::process::Process;
use common::TIMEOUT;

const HELLO_API: &[u8] = include_bytes!("data/client-hello-api.example.test.bin");
const HELLO_NO_NAME: &[u8] = include_bytes!("data/client-hello-no-name.bin");
const HELLO_TLS12_OLD: &[u8] = include_bytes!("data/client-hello-tls12-old.example.test.bin");

/// A backend that answers `NAME:` and everything a connection sent before its EOF.
fn backend(name: &'static str) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            thread::spawn(move || {
                s.set_read_timeout(Some(TIMEOUT)).unwrap();
                let mut got = Vec::new();
                if s.read_to_end(&mut got).is_ok() {
                    let mut reply = format!("{name}:").into_bytes();
                    reply.extend(got);
                    let _ = s.write_all(&reply);
                }
            });
        }
    });
    addr
}

/// Starts `tcp-proxy` with `args` plus an `--sni-listen` on a free port; its address.
fn proxy(args: &[String]) -> (Process, SocketAddr) {
    let bin = common::example_bin("tcp-proxy");
    let mut last = String::new();
    for _ in 0..5 {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut all = vec!["--sni-listen".to_string(), addr.to_string()];
        all.extend_from_slice(args);
        match Process::start(&bin, &all, "tcp-proxy serving", TIMEOUT) {
            Ok(p) => return (p, addr),
            Err(why) => last = why,
        }
    }
    panic!("tcp-proxy did not start: {last}");
}

/// Sends `bytes`, half-closes, and reads the whole answer.
fn exchange(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.write_all(bytes).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out)
        .expect("answer or close within the timeout");
    out
}

fn reply(name: &str, bytes: &[u8]) -> Vec<u8> {
    let mut r = format!("{name}:").into_bytes();
    r.extend(bytes);
    r
}

#[test]
fn hellos_go_to_the_group_their_server_name_routes_to_unchanged() {
    let api = backend("api");
    let wild = backend("wild");
    let other = backend("other");
    let args = [
        format!("--sni-route=api.example.test={api}"),
        format!("--sni-route=*.example.test={wild}"),
        format!("--sni-route=*={other}"),
    ];
    let (_p, addr) = proxy(&args);
    // The hello and what follows it (here: a fake application record) pass unchanged.
    let mut stream = HELLO_API.to_vec();
    stream.extend(b"\x17\x03\x03\x00\x05hello");
    assert_eq!(exchange(addr, &stream), reply("api", &stream));
    assert_eq!(exchange(addr, HELLO_NO_NAME), reply("other", HELLO_NO_NAME));
    assert_eq!(
        exchange(addr, HELLO_TLS12_OLD),
        reply("wild", HELLO_TLS12_OLD)
    );
    // A hello cut into many small writes is gathered first.
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.set_nodelay(true).unwrap();
    for chunk in HELLO_API.chunks(7) {
        s.write_all(chunk).unwrap();
    }
    s.shutdown(Shutdown::Write).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    assert_eq!(out, reply("api", HELLO_API));
}

#[test]
fn what_cannot_be_routed_is_closed_and_a_default_upstream_catches_unknown_names() {
    let api = backend("api");
    let (p, addr) = proxy(&[
        format!("--sni-route=api.example.test={api}"),
        "--hello-timeout".into(),
        "0.5".into(),
    ]);
    // No route for the name, no name, not TLS at all: closed without an answer.
    assert_eq!(exchange(addr, HELLO_TLS12_OLD), b"");
    assert_eq!(exchange(addr, HELLO_NO_NAME), b"");
    assert_eq!(exchange(addr, b"GET / HTTP/1.1\r\nHost: api\r\n\r\n"), b"");
    // A hello that stops half-way is closed after the hello timeout.
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.write_all(&HELLO_API[..100]).unwrap();
    let start = Instant::now();
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("closed by the proxy");
    let after = start.elapsed();
    assert!(out.is_empty());
    assert!(
        after >= Duration::from_millis(400) && after < TIMEOUT,
        "closed after {after:?}; the hello timeout is 0.5 s. {}",
        p.output()
    );
    drop(p);

    // With --upstream, names without a route go there.
    let fallback = backend("fallback");
    let (_p, addr) = proxy(&[
        format!("--sni-route=api.example.test={api}"),
        "--upstream".into(),
        fallback.to_string(),
    ]);
    assert_eq!(exchange(addr, HELLO_API), reply("api", HELLO_API));
    assert_eq!(
        exchange(addr, HELLO_TLS12_OLD),
        reply("fallback", HELLO_TLS12_OLD)
    );
}

#[test]
fn sni_command_line_errors_name_the_option() {
    let bin = common::example_bin("tcp-proxy");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(&bin)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = run(&["--sni-listen", "127.0.0.1:0", "--sni-route", "no-equals"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--sni-route"), "{err}");
    let (code, err) = run(&[
        "--sni-listen",
        "127.0.0.1:0",
        "--sni-route",
        "bad name=127.0.0.1:1",
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("bad server name"), "{err}");
    let (code, err) = run(&[
        "--listen",
        "127.0.0.1:0",
        "--sni-route",
        "a=127.0.0.1:1",
        "--upstream",
        "127.0.0.1:1",
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--sni-listen"), "{err}");
}
