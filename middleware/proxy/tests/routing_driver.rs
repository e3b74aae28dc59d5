//! A policy routing with a `Router` in its upstream-selection phase, driven without
//! sockets: unrouted requests are answered 404 at once, routed ones go out to the
//! group the router names.

mod common;

use common::{closed_port, group};
use wireloop::testing::Driver;
use wireloop_middleware::http1::Request;
use wireloop_proxy::{Group, HttpProxy, ProxyHttp, Router, Session, Settings, Target};

/// Routes with its router; remembers the group of the last routed request.
struct Routed {
    router: Router,
    last: Option<usize>,
}

impl ProxyHttp for Routed {
    type Ctx = ();

    fn upstream_peer(
        &mut self,
        req: &Request<'_>,
        session: &Session<'_>,
        _: &[Group],
        _: &mut (),
    ) -> Option<Target> {
        self.last = self.router.route_request(req, session.sni);
        self.last.map(Target::group)
    }
}

fn ask(d: &mut Driver<HttpProxy<Routed>>, host: &str, path: &str) -> String {
    let c = d.open(0);
    d.feed(
        c,
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes(),
    );
    String::from_utf8_lossy(&d.take_output(c)).into_owned()
}

#[test]
fn requests_go_to_the_routed_group_or_get_404() {
    let mut router = Router::new();
    router.add(Some("api.example.test"), "/", 0).unwrap();
    router.add(None, "/static/", 1).unwrap();
    let groups = vec![group(&[closed_port()]), group(&[closed_port()])];
    let policy = Routed { router, last: None };
    let mut d = Driver::new(HttpProxy::new(policy, groups, Settings::default()));
    // Routed: the request goes out (a dial the driver never completes: no answer yet).
    assert_eq!(ask(&mut d, "api.example.test:8080", "/users"), "");
    assert_eq!(d.handler().policy().last, Some(0));
    assert_eq!(ask(&mut d, "www.example.test", "/static/a.css"), "");
    assert_eq!(d.handler().policy().last, Some(1));
    // Nothing matches: 404 at once.
    let out = ask(&mut d, "www.example.test", "/users");
    assert!(out.starts_with("HTTP/1.1 404 "), "{out}");
    assert_eq!(d.handler().policy().last, None);
}
