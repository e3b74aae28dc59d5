//! A peer named by a host name follows its DNS records: every new upstream connection is
//! dialed through the loop's resolver, whose cache keeps an answer for its TTL and asks
//! again once it expires. Over real sockets, with a real (tiny) DNS server on 127.0.0.1.
#![cfg(feature = "dns")]

mod common;

#[path = "../../../tests/common/dns.rs"]
mod dns;

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::thread;
use std::time::{Duration, Instant};

use common::{get_path, run_on, wait_until, Running, TIMEOUT};
use dns::TestDns;
use wireloop::{ResolverConfig, Server};
use wireloop_middleware::http1::{Http1, Request, Response};
use wireloop_proxy::{Balance, Group, HttpProxy, Peer, ProxyHttp, Settings};

const NAME: &str = "svc.wireloop.test";
/// Short enough for a test, long enough for two requests to fall within it.
const TTL: u32 = 2;

#[derive(Clone)]
struct Plain;

impl ProxyHttp for Plain {
    type Ctx = ();
}

/// A backend answering its name and closing: every request dials (and resolves) again.
fn backend(addr: SocketAddr, name: &'static str) -> Running {
    run_on(&format!("tcp://{addr}"), move |_| {
        Http1::server(move |_: &Request<'_>, res: &mut Response<'_>| {
            res.close().body(name.as_bytes());
        })
    })
}

/// Two free listening addresses with the same port, on 127.0.0.1 and 127.0.0.2.
fn same_port_pair() -> (SocketAddr, SocketAddr) {
    for _ in 0..20 {
        let a = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let b = SocketAddr::from(([127, 0, 0, 2], a.port()));
        if TcpListener::bind(b).is_ok() {
            return (a, b);
        }
    }
    panic!("no port free on both 127.0.0.1 and 127.0.0.2");
}

fn body(px: SocketAddr) -> String {
    let out = get_path(px, "h", "/");
    out.split_once("\r\n\r\n")
        .map_or(out.clone(), |(_, b)| b.to_string())
}

#[test]
fn a_peer_is_re_resolved_once_its_dns_ttl_expires() {
    let dns = TestDns::start();
    dns.set_ttl(TTL);
    let (addr_a, addr_b) = same_port_pair();
    dns.set_a(NAME, &[Ipv4Addr::new(127, 0, 0, 1)]);
    let _a = backend(addr_a, "a");
    let _b = backend(addr_b, "b");

    let peer = Peer::parse(&format!("http://{NAME}:{}", addr_a.port())).unwrap();
    let group = Group::new("svc", vec![peer], Balance::RoundRobin).unwrap();
    let server = Server::builder()
        .listen("tcp://127.0.0.1:0")
        .unwrap()
        .resolver(ResolverConfig::nameservers([dns.addr()]))
        .build()
        .unwrap();
    let px = server.local_addrs()[0].inet().unwrap();
    let handle = server.handle();
    let proxy = thread::spawn(move || {
        server
            .serve(move |_| HttpProxy::new(Plain, vec![group.clone()], Settings::default()))
            .expect("serve")
    });

    let first = Instant::now();
    assert_eq!(body(px), "a", "the name's first address");
    let asked = dns.queries();
    assert!(asked > 0, "the proxy asked the DNS server");

    // The record changes; within its TTL the cached answer still stands.
    dns.set_a(NAME, &[Ipv4Addr::new(127, 0, 0, 2)]);
    let again = body(px);
    if first.elapsed() < Duration::from_secs(TTL as u64) {
        // (The server already answers 127.0.0.2: only the cache can say 127.0.0.1.)
        assert_eq!(
            again, "a",
            "a new connection within the TTL uses the cached answer"
        );
    } else {
        eprintln!("note: the machine is slow; not checking the cached answer");
    }

    // Once it expires, the next connection asks again and goes to the new address.
    let moved = wait_until(TIMEOUT, || body(px) == "b");
    assert!(
        moved,
        "still not at the new address {TIMEOUT:?} after the change"
    );
    assert!(
        first.elapsed() >= Duration::from_secs(TTL as u64),
        "re-resolved before the TTL ran out ({:?})",
        first.elapsed()
    );
    assert!(dns.queries() > asked, "the expired name was asked again");

    handle.shutdown();
    proxy.join().unwrap();
}
