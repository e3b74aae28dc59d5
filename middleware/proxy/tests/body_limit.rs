//! A route's request body limit (`Target::max_body`, `[[route]] max_body`): a larger
//! `Content-Length` is answered 413 without going upstream; a chunked body that grows
//! past it ends the exchange with a 413 (the upstream's connection reset) and the
//! client's connection closes; bodies within the limit, and routes without one, pass.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use common::{backend, get, group, run, TIMEOUT};
use wireloop_middleware::http1::Request;
use wireloop_proxy::{Group, HttpProxy, ProxyHttp, Router, Session, Settings, Target};

/// Routes with a router: `/small/` takes bodies of at most 16 bytes, the rest any.
#[derive(Clone)]
struct Routed(Router);

impl ProxyHttp for Routed {
    type Ctx = ();

    fn upstream_peer(
        &mut self,
        req: &Request<'_>,
        session: &Session<'_>,
        _: &[Group],
        _: &mut (),
    ) -> Option<Target> {
        self.0.target_request(req, session.sni)
    }
}

fn proxy(be: SocketAddr) -> common::Running {
    let mut router = Router::new();
    router.add(None, "/", 0).unwrap();
    router
        .add_target(None, "/small/", Target::group(0).max_body(16))
        .unwrap();
    let policy = Routed(router);
    let g = group(&[be]);
    run(move |_| HttpProxy::new(policy.clone(), vec![g.clone()], Settings::default()))
}

fn post(path: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: h\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

#[test]
fn a_content_length_over_the_route_limit_is_answered_413() {
    let be = backend("a");
    let px = proxy(be.addr);
    let out = get(px.addr, &post("/small/x", &"x".repeat(17)));
    assert!(out.starts_with("HTTP/1.1 413 "), "{out}");
    assert!(out.contains("Connection: close\r\n"), "{out}");
    let out = get(px.addr, &post("/small/x", &"x".repeat(16)));
    assert!(
        out.starts_with("HTTP/1.1 200 ") && out.contains("a POST /small/x"),
        "{out}"
    );
    let out = get(px.addr, &post("/big/x", &"x".repeat(1000)));
    assert!(
        out.starts_with("HTTP/1.1 200 ") && out.contains("a POST /big/x"),
        "{out}"
    );
}

#[test]
fn a_chunked_body_growing_past_the_limit_ends_with_413_and_a_close() {
    let be = backend("a");
    let px = proxy(be.addr);
    let mut s = TcpStream::connect(px.addr).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    // The first chunk is within the limit and goes upstream; the second takes the body
    // past it.
    s.write_all(b"POST /small/x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n")
        .unwrap();
    s.write_all(b"a\r\n0123456789\r\n").unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("an answer, then the close");
    let out = String::from_utf8_lossy(&out);
    assert!(out.starts_with("HTTP/1.1 413 "), "{out}");
    assert!(out.ends_with("request body too large\n"), "{out}");

    // The same body on a route without a limit, and the limited route afterwards, work.
    let chunked = |path: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
             a\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n"
        )
    };
    let out = get(px.addr, &chunked("/big/x"));
    assert!(
        out.starts_with("HTTP/1.1 200 ") && out.contains("a POST /big/x"),
        "{out}"
    );
    let out = get(px.addr, &post("/small/y", "ok"));
    assert!(
        out.starts_with("HTTP/1.1 200 ") && out.contains("a POST /small/y"),
        "{out}"
    );
}
