//! Health over real sockets: active HTTP and TCP checks run from the proxy's loop take
//! failing peers out and bring them back, passive failures mark a peer down, and a group
//! with no healthy peer answers 503 at once. Checks run on short real intervals; every
//! wait is a poll for a condition with a deadline.

mod common;

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{closed_port, get_path, group, run, run_on, wait_until, Running, TIMEOUT};
use wireloop_middleware::http1::{Http1, Request, Response};
use wireloop_proxy::{Group, HealthCheck, HttpProxy, ProxyHttp, Settings};

/// Every request to group 0, balanced.
#[derive(Clone)]
struct Plain;

impl ProxyHttp for Plain {
    type Ctx = ();
}

/// A backend at `addr` answering `NAME` on every path but `/health`, which answers the
/// status in `health` and is counted in `checks`.
fn health_backend(
    addr: &str,
    name: &'static str,
    health: Arc<AtomicU16>,
    checks: Arc<AtomicUsize>,
) -> Running {
    run_on(addr, move |_| {
        let (health, checks) = (health.clone(), checks.clone());
        Http1::server(move |req: &Request<'_>, res: &mut Response<'_>| {
            if req.target() == "/health" {
                checks.fetch_add(1, Ordering::SeqCst);
                res.status(health.load(Ordering::SeqCst)).body(b"");
            } else {
                res.body(name.as_bytes());
            }
        })
    })
}

fn proxy(g: Group, settings: Settings) -> Running {
    run(move |_| HttpProxy::new(Plain, vec![g.clone()], settings.clone()))
}

/// The body of `GET /` through the proxy, or its status line if not a 200.
fn served_by(px: SocketAddr) -> String {
    let out = get_path(px, "h", "/");
    match out.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/1.1 200 ") => body.to_string(),
        _ => out.lines().next().unwrap_or("").to_string(),
    }
}

fn fast(check: HealthCheck, rise: u32, fall: u32) -> HealthCheck {
    HealthCheck {
        interval: Duration::from_millis(20),
        timeout: Duration::from_millis(200),
        rise,
        fall,
        ..check
    }
}

#[test]
fn http_check_takes_a_failing_peer_out_and_brings_it_back() {
    let (ha, hb) = (Arc::new(AtomicU16::new(200)), Arc::new(AtomicU16::new(200)));
    let (ca, cb) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let a = health_backend("tcp://127.0.0.1:0", "a", ha, ca.clone());
    let b = health_backend("tcp://127.0.0.1:0", "b", hb.clone(), cb.clone());
    let check = HealthCheck {
        // A loaded machine must not fail a good peer's checks.
        timeout: Duration::from_secs(1),
        ..fast(HealthCheck::http("/health").unwrap(), 2, 2)
    };
    let g = group(&[a.addr, b.addr]).with_health_check(check).unwrap();
    let px = proxy(g, Settings::default());
    assert!(wait_until(TIMEOUT, || ca.load(Ordering::SeqCst) >= 2
        && cb.load(Ordering::SeqCst) >= 2));
    let both: Vec<String> = (0..4).map(|_| served_by(px.addr)).collect();
    assert_eq!(both.iter().filter(|s| *s == "b").count(), 2, "{both:?}");

    // b answers 503 to its checks: after two, it is out and only a serves.
    hb.store(503, Ordering::SeqCst);
    assert!(
        wait_until(TIMEOUT, || (0..4).all(|_| served_by(px.addr) == "a")),
        "b was never taken out"
    );
    // Its checks go on, and two good ones bring it back.
    hb.store(200, Ordering::SeqCst);
    assert!(
        wait_until(TIMEOUT, || served_by(px.addr) == "b"),
        "b never came back"
    );
}

/// A peer that accepts connections and never answers; counts them. Stops on drop.
struct Silent {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Silent {
    fn start() -> Silent {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.set_nonblocking(true).unwrap();
        let (accepted, stop) = (
            Arc::new(AtomicUsize::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let (n, halt) = (accepted.clone(), stop.clone());
        let addr = l.local_addr().unwrap();
        let thread = thread::spawn(move || {
            let mut held = Vec::new();
            while !halt.load(Ordering::SeqCst) {
                match l.accept() {
                    Ok((s, _)) => {
                        held.push(s);
                        n.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(_) => thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Silent {
            addr,
            accepted,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Silent {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn a_silent_peer_fails_its_check_and_the_group_answers_503_at_once() {
    let silent = Silent::start();
    let check = fast(HealthCheck::http("/health").unwrap(), 1, 1);
    let g = group(&[silent.addr]).with_health_check(check).unwrap();
    let settings = Settings {
        first_byte_timeout: Duration::from_secs(60),
        ..Settings::default()
    };
    let px = proxy(g, settings);
    // The second check starts only once the first ran out of time (fall 1: the peer is
    // out by then).
    assert!(wait_until(TIMEOUT, || silent
        .accepted
        .load(Ordering::SeqCst)
        >= 2));
    // At once: no connect, no first-byte timeout to wait for.
    let t = Instant::now();
    let out = get_path(px.addr, "h", "/x");
    assert!(out.starts_with("HTTP/1.1 503 "), "{out}");
    assert!(out.ends_with("no healthy upstream\n"), "{out}");
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
}

#[test]
fn tcp_check_brings_a_restarted_peer_back() {
    let addr = closed_port();
    let check = fast(HealthCheck::tcp(), 2, 1);
    let g = group(&[addr]).with_health_check(check).unwrap();
    // Active checks alone (a failed request would mark it down for a while too).
    let settings = Settings {
        max_fails: 0,
        ..Settings::default()
    };
    let px = proxy(g, settings);
    assert!(
        wait_until(TIMEOUT, || served_by(px.addr).starts_with("HTTP/1.1 503 ")),
        "the dead peer was never taken out"
    );
    let checks = Arc::new(AtomicUsize::new(0));
    let _up = health_backend(
        &format!("tcp://{addr}"),
        "back",
        Arc::new(AtomicU16::new(200)),
        checks,
    );
    assert!(
        wait_until(TIMEOUT, || served_by(px.addr) == "back"),
        "the restarted peer never came back"
    );
}

#[test]
fn failures_in_a_row_mark_a_peer_down_then_503_at_once() {
    let dead = [closed_port(), closed_port()];
    let settings = Settings {
        max_fails: 2,
        down_time: Duration::from_secs(60),
        ..Settings::default()
    };
    let px = proxy(group(&dead), settings);
    // Each request tries both peers (a failed connect is retried on the other): two
    // requests make two failures in a row of each.
    assert!(served_by(px.addr).starts_with("HTTP/1.1 502 "));
    assert!(served_by(px.addr).starts_with("HTTP/1.1 502 "));
    let out = get_path(px.addr, "h", "/");
    assert!(out.starts_with("HTTP/1.1 503 "), "{out}");
    assert!(out.ends_with("no healthy upstream\n"), "{out}");
}

#[test]
fn a_groups_only_peer_is_never_marked_down_by_failures() {
    let settings = Settings {
        max_fails: 1,
        down_time: Duration::from_secs(60),
        ..Settings::default()
    };
    let px = proxy(group(&[closed_port()]), settings);
    for i in 0..5 {
        let out = served_by(px.addr);
        assert!(out.starts_with("HTTP/1.1 502 "), "request {i}: {out}");
    }
}
