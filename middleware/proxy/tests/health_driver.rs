//! The engine's health without sockets: the test `Driver` runs the proxy on virtual
//! client connections with a manual clock, so a peer marked down answers 503 at once
//! until its down time is over, to the millisecond, and verdicts published by another
//! loop's checks are obeyed at once.

mod common;

use std::time::{Duration, Instant};

use common::{closed_port, group};
use wireloop::testing::Driver;
use wireloop_proxy::health::Verdict;
use wireloop_proxy::{HealthCheck, HttpProxy, ProxyHttp, Settings};

#[derive(Clone)]
struct Plain;

impl ProxyHttp for Plain {
    type Ctx = ();
}

const GET: &[u8] = b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n";

/// Sends one request on a new client connection; what the proxy answered at once.
fn ask(d: &mut Driver<HttpProxy<Plain>>) -> String {
    let c = d.open(0);
    d.feed(c, GET);
    String::from_utf8_lossy(&d.take_output(c)).into_owned()
}

#[test]
fn a_peer_marked_down_answers_503_at_once_until_its_down_time_is_over() {
    let down = Duration::from_secs(10);
    let mut g = group(&[closed_port()]);
    // Marked down a moment before the driver's clock starts.
    assert!(g.mark_down(0, Instant::now(), down));
    let mut d = Driver::new(HttpProxy::new(Plain, vec![g], Settings::default()));
    let out = ask(&mut d);
    assert!(out.starts_with("HTTP/1.1 503 "), "{out}");
    assert!(out.ends_with("no healthy upstream\n"), "{out}");
    let now = d.now();
    assert_eq!(d.handler().groups()[0].healthy_count(now), 0);
    d.advance(down - Duration::from_millis(1));
    assert!(ask(&mut d).starts_with("HTTP/1.1 503 "));
    // Over: the request goes out (a dial, which the driver never completes: no answer).
    d.advance(Duration::from_millis(1));
    let now = d.now();
    assert_eq!(d.handler().groups()[0].healthy_count(now), 1);
    assert_eq!(ask(&mut d), "");
}

#[test]
fn verdicts_of_another_loops_checks_are_obeyed_at_once() {
    let check = HealthCheck {
        fall: 1,
        ..HealthCheck::tcp()
    };
    let mut elsewhere = group(&[closed_port()]).with_health_check(check).unwrap();
    let here = elsewhere.clone();
    // Loop 5 runs the checks: the driver's loop 0 only reads the verdicts.
    let t0 = Instant::now();
    let c = elsewhere.checker(5, t0).unwrap();
    assert_eq!(c.due(t0), Some(0));
    assert_eq!(c.report(0, false, t0), Some(Verdict::Down));
    elsewhere.publish(0, Verdict::Down);
    let mut d = Driver::new(HttpProxy::new(Plain, vec![here], Settings::default()));
    let out = ask(&mut d);
    assert!(out.starts_with("HTTP/1.1 503 "), "{out}");
    let now = d.now();
    assert!(!d.handler().groups()[0].is_healthy(0, now));
    elsewhere.publish(0, Verdict::Up);
    assert!(d.handler().groups()[0].is_healthy(0, now));
    assert_eq!(ask(&mut d), "", "the request goes out");
}
