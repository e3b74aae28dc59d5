//! The `tcp-proxy` example's upstream health, as a real process over real sockets: active
//! connect checks take an upstream that stops listening out and bring it back when it
//! listens again; passive health (`--max-fails`) avoids an upstream whose connects fail;
//! a group with no healthy upstream closes its clients at once. Checks run on short real
//! intervals; every wait is a poll for a condition with a deadline.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use common::process::{free_port, Process};
use common::{wait_until, TIMEOUT};

/// An upstream that answers every connection with its name and closes; stops (and stops
/// listening) when dropped.
struct Named {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Named {
    fn start(addr: SocketAddr, name: &'static str) -> Named {
        let l = TcpListener::bind(addr).expect("bind the upstream");
        let addr = l.local_addr().unwrap();
        l.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                match l.accept() {
                    Ok((mut s, _)) => {
                        let _ = s.write_all(name.as_bytes());
                    }
                    Err(_) => thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Named {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Named {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn proxy(upstreams: &[SocketAddr], extra: &[&str]) -> (Process, SocketAddr) {
    let bin = common::example_bin("tcp-proxy");
    let mut last = String::new();
    for _ in 0..5 {
        let port = free_port();
        let mut args = vec!["--listen".to_string(), format!("127.0.0.1:{port}")];
        for u in upstreams {
            args.extend(["--upstream".to_string(), u.to_string()]);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        match Process::start(&bin, &args, "tcp-proxy serving", TIMEOUT) {
            Ok(p) => return (p, SocketAddr::from(([127, 0, 0, 1], port))),
            Err(why) => last = why,
        }
    }
    panic!("tcp-proxy did not start: {last}");
}

/// What one connection through the proxy reads before its end ("" when closed at once).
fn answer(px: SocketAddr) -> String {
    let mut s = TcpStream::connect(px).expect("connect to the proxy");
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn logged(p: &Process, needle: &str) -> bool {
    wait_until(TIMEOUT, || {
        p.log.lock().unwrap().iter().any(|l| l.contains(needle))
    })
}

fn a_free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

#[test]
fn connect_checks_take_a_dead_upstream_out_and_bring_it_back() {
    let a = Named::start(a_free_addr(), "a");
    let b_addr = a_free_addr();
    let (p, px) = proxy(
        &[a.addr, b_addr],
        &[
            "--health-interval",
            "0.02",
            "--health-timeout",
            "1",
            "--health-rise",
            "2",
            "--health-fall",
            "1",
        ],
    );
    assert!(
        logged(&p, &format!("upstream {b_addr} is down")),
        "{}",
        p.output()
    );
    // Round-robin over two upstreams, one of them out: every client reaches the other.
    for i in 0..20 {
        assert_eq!(answer(px), "a", "client {i}\n{}", p.output());
    }
    let b = Named::start(b_addr, "b");
    assert!(
        logged(&p, &format!("upstream {b_addr} is up")),
        "{}",
        p.output()
    );
    let got: Vec<String> = (0..20).map(|_| answer(px)).collect();
    assert!(
        got.iter().any(|g| g == "a") && got.iter().any(|g| g == "b"),
        "both upstreams serve again: {got:?}"
    );
    drop(b);
}

#[test]
fn no_healthy_upstream_closes_clients_at_once() {
    let dead = a_free_addr();
    let (p, px) = proxy(
        &[dead],
        &["--health-interval", "0.02", "--health-fall", "1"],
    );
    assert!(logged(&p, "is down"), "{}", p.output());
    assert_eq!(answer(px), "");
    assert!(logged(&p, "no healthy upstream in group"), "{}", p.output());
}

#[test]
fn passive_health_avoids_an_upstream_whose_connects_fail() {
    let a = Named::start(a_free_addr(), "a");
    let dead = a_free_addr();
    let (p, px) = proxy(&[dead, a.addr], &["--max-fails", "1", "--down-time", "60"]);
    // Round-robin tries the dead one first: that client is closed, the peer marked down.
    let first: Vec<String> = (0..2).map(|_| answer(px)).collect();
    assert!(first.contains(&"a".to_string()), "{first:?}");
    assert!(
        logged(&p, &format!("upstream {dead} marked down")),
        "{}",
        p.output()
    );
    for i in 0..20 {
        assert_eq!(answer(px), "a", "client {i} after the mark\n{}", p.output());
    }
}
