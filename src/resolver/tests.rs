//! The resolver with the `dns` feature, against a test DNS server on loopback.

use std::sync::mpsc;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use hickory_resolver::config::ResolveHosts;

use super::hickory::fallback_conf;
use super::test_dns::TestDns;
use super::*;

/// Bound on any wait in these tests.
const WAIT: Duration = Duration::from_secs(15);

type Answer = Result<Vec<SocketAddr>, ResolveError>;

fn resolve(r: &Resolver, host: &str, family: Family, deadline: Duration) -> Answer {
    resolve_blocking(r, host, family, deadline)
}

fn with_dns() -> (TestDns, Resolver) {
    let dns = TestDns::start();
    dns.add_a("v4.test.", Ipv4Addr::new(10, 0, 0, 4));
    dns.add_aaaa("v6.test.", Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 6));
    dns.add_a("both.test", Ipv4Addr::new(10, 0, 0, 1));
    dns.add_a("both.test", Ipv4Addr::new(10, 0, 0, 2));
    dns.add_a("both.test", Ipv4Addr::new(10, 0, 0, 1));
    dns.add_aaaa("both.test", Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1));
    dns.set_silent("silent.test");
    let cfg = ResolverConfig::nameservers([dns.addr()]);
    let resolver = Resolver::start(&cfg).expect("start resolver");
    (dns, resolver)
}

fn addrs(ips: &[IpAddr]) -> Vec<SocketAddr> {
    ips.iter().map(|ip| SocketAddr::new(*ip, 80)).collect()
}

fn not_found(host: &str) -> Answer {
    Err(ResolveError::NotFound {
        host: host.to_string(),
    })
}

#[test]
fn families() {
    let (_dns, r) = with_dns();
    let d = Duration::from_secs(5);
    let v4: IpAddr = Ipv4Addr::new(10, 0, 0, 4).into();
    let v6: IpAddr = "fd00::6".parse().unwrap();
    assert_eq!(resolve(&r, "v4.test", Family::V4, d), Ok(addrs(&[v4])));
    assert_eq!(resolve(&r, "V4.Test.", Family::Any, d), Ok(addrs(&[v4])));
    assert_eq!(resolve(&r, "v4.test", Family::V6, d), not_found("v4.test"));
    assert_eq!(resolve(&r, "v6.test", Family::V6, d), Ok(addrs(&[v6])));
    assert_eq!(resolve(&r, "v6.test", Family::Any, d), Ok(addrs(&[v6])));
    assert_eq!(resolve(&r, "v6.test", Family::V4, d), not_found("v6.test"));
    let both = resolve(&r, "both.test", Family::Any, d);
    let expected = ["fd00::1", "10.0.0.1", "10.0.0.2"].map(|s| s.parse().unwrap());
    assert_eq!(
        both,
        Ok(addrs(&expected)),
        "interleaved, v6 first, deduplicated"
    );
    let both4 = resolve(&r, "both.test", Family::V4, d);
    assert_eq!(both4, Ok(addrs(&expected[1..])));
    assert_eq!(
        resolve(&r, "nope.test", Family::Any, d),
        not_found("nope.test")
    );
    assert_eq!(
        resolve(&r, "nope.test", Family::V4, d),
        not_found("nope.test")
    );
}

#[test]
fn literals_and_bad_names() {
    let (dns, r) = with_dns();
    let d = Duration::from_secs(5);
    let one: IpAddr = Ipv4Addr::new(192, 0, 2, 1).into();
    assert_eq!(resolve(&r, "192.0.2.1", Family::Any, d), Ok(addrs(&[one])));
    assert_eq!(
        resolve(&r, "192.0.2.1", Family::V6, d),
        not_found("192.0.2.1")
    );
    let v6 = resolve(&r, "[::1]", Family::V6, d);
    assert_eq!(v6, Ok(addrs(&[Ipv6Addr::LOCALHOST.into()])));
    assert!(matches!(
        resolve(&r, "", Family::Any, d),
        Err(ResolveError::Failed { .. })
    ));
    let long = format!("{}.test", "x".repeat(70));
    let bad = resolve(&r, &long, Family::Any, d);
    assert!(matches!(bad, Err(ResolveError::Failed { .. })), "{bad:?}");
    assert_eq!(dns.queries(), 0, "none of these reaches the server");
}

#[test]
fn silent_name_times_out_within_deadline() {
    let (dns, r) = with_dns();
    let start = Instant::now();
    let answer = resolve(&r, "silent.test", Family::Any, Duration::from_millis(300));
    let took = start.elapsed();
    assert_eq!(
        answer,
        Err(ResolveError::Timeout {
            host: "silent.test".to_string()
        })
    );
    assert!(took >= Duration::from_millis(300), "{took:?}");
    assert!(took < Duration::from_millis(1300), "{took:?}");
    assert!(dns.queries() >= 1);
}

#[test]
fn hickory_timeouts_map_to_timeout() {
    let dns = TestDns::start();
    dns.set_silent("silent.test");
    let cfg = ResolverConfig::nameservers([dns.addr()])
        .timeout(Duration::from_millis(100))
        .attempts(2);
    let r = Resolver::start(&cfg).expect("start resolver");
    let start = Instant::now();
    let answer = resolve(&r, "silent.test", Family::V4, Duration::from_secs(10));
    assert!(
        matches!(answer, Err(ResolveError::Timeout { .. })),
        "{answer:?}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn many_concurrent_lookups() {
    let (dns, r) = with_dns();
    for i in 0..200 {
        dns.add_a(
            &format!("h{i}.test"),
            Ipv4Addr::new(10, 1, (i / 256) as u8, i as u8),
        );
    }
    let (tx, rx) = mpsc::channel();
    let start = Instant::now();
    for i in 0..200usize {
        let tx = tx.clone();
        let family = if i % 2 == 0 { Family::V4 } else { Family::Any };
        r.resolve(
            &format!("h{i}.test"),
            1000 + i as u16,
            family,
            Duration::from_secs(10),
            Box::new(move |a| drop(tx.send((i, a, thread::current().name().map(String::from))))),
        );
    }
    let mut seen = [false; 200];
    for _ in 0..200 {
        let (i, answer, thread) = rx.recv_timeout(WAIT).expect("answer");
        let ip = IpAddr::from(Ipv4Addr::new(10, 1, (i / 256) as u8, i as u8));
        assert_eq!(answer, Ok(vec![SocketAddr::new(ip, 1000 + i as u16)]));
        assert_eq!(thread.as_deref(), Some("wireloop-dns"));
        assert!(!seen[i], "answered twice");
        seen[i] = true;
    }
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());
}

#[test]
fn drop_joins_promptly_and_answers_pending() {
    let (_dns, r) = with_dns();
    let (tx, rx) = mpsc::channel();
    for _ in 0..5 {
        let tx = tx.clone();
        r.resolve(
            "silent.test",
            80,
            Family::Any,
            Duration::from_secs(30),
            Box::new(move |a| drop(tx.send(a))),
        );
    }
    thread::sleep(Duration::from_millis(100));
    let start = Instant::now();
    drop(r);
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
    for _ in 0..5 {
        let answer = rx.recv_timeout(Duration::from_millis(100)).expect("answer");
        assert_eq!(
            answer,
            Err(ResolveError::Failed {
                host: "silent.test".to_string(),
                reason: "resolver stopped".to_string()
            })
        );
    }
}

#[test]
fn drop_on_own_thread_does_not_deadlock() {
    let (_dns, r) = with_dns();
    let shared = Arc::new(std::sync::Mutex::new(Some(r)));
    let (tx, rx) = mpsc::channel();
    let inner = shared.clone();
    let guard = shared.lock().unwrap();
    guard.as_ref().unwrap().resolve(
        "v4.test",
        80,
        Family::V4,
        Duration::from_secs(5),
        Box::new(move |a| {
            drop(inner.lock().unwrap().take()); // The resolver drops on its own thread.
            drop(tx.send(a));
        }),
    );
    drop(guard);
    assert!(rx.recv_timeout(WAIT).expect("answer").is_ok());
}

#[test]
fn system_config_resolves_localhost_without_network() {
    let r = Resolver::start(&ResolverConfig::system()).expect("start resolver");
    let d = Duration::from_secs(5);
    let v4 = resolve(&r, "localhost", Family::V4, d).expect("localhost");
    assert!(
        v4.contains(&SocketAddr::from(([127, 0, 0, 1], 80))),
        "{v4:?}"
    );
    assert!(v4.iter().all(|a| a.is_ipv4()));
    let any = resolve(&r, "localhost", Family::Any, d).expect("localhost");
    assert!(any.iter().all(|a| a.ip().is_loopback()), "{any:?}");
    assert!(any.iter().any(|a| a.is_ipv4()), "{any:?}");
}

#[test]
fn config_defaults() {
    let cfg = ResolverConfig::default();
    assert!(matches!(cfg.source, Source::System));
    assert_eq!((cfg.timeout, cfg.attempts), (Duration::from_secs(2), 2));
    let cfg = ResolverConfig::nameservers([]).attempts(0);
    assert_eq!(cfg.attempts, 1);
}

#[test]
fn fallback_is_the_local_nameserver() {
    let (config, opts) = fallback_conf();
    let servers: Vec<(IpAddr, Vec<u16>)> = config
        .name_servers()
        .iter()
        .map(|s| (s.ip, s.connections.iter().map(|c| c.port).collect()))
        .collect();
    let local4 = IpAddr::from(Ipv4Addr::LOCALHOST);
    let local6 = IpAddr::from(Ipv6Addr::LOCALHOST);
    assert_eq!(servers, [(local4, vec![53, 53]), (local6, vec![53, 53])]);
    assert_eq!(opts.use_hosts_file, ResolveHosts::Always);
}

#[test]
fn resolver_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Resolver>();
    check::<ResolverConfig>();
}

#[test]
fn no_nameservers_fails() {
    let r = Resolver::start(&ResolverConfig::nameservers([])).expect("start resolver");
    let answer = resolve(&r, "a.test", Family::Any, Duration::from_secs(5));
    assert!(
        matches!(answer, Err(ResolveError::Failed { .. })),
        "{answer:?}"
    );
}

#[test]
fn interleave_and_dedup() {
    let ip = |n: u8| IpAddr::from([10, 0, 0, n]);
    let out = interleave(vec![ip(1), ip(2), ip(3)], vec![ip(4)]);
    assert_eq!(out, [ip(1), ip(4), ip(2), ip(3)]);
    assert_eq!(
        dedup(vec![ip(1), ip(2), ip(1), ip(2), ip(3)]),
        [ip(1), ip(2), ip(3)]
    );
}

#[test]
fn display_names_the_host() {
    let e = ResolveError::Failed {
        host: "x.test".to_string(),
        reason: "boom".to_string(),
    };
    assert_eq!(e.to_string(), "cannot resolve \"x.test\": boom");
    let e = ResolveError::Timeout {
        host: "x.test".to_string(),
    };
    assert!(e.to_string().contains("x.test"));
}
