//! Tests of the HTTP/1.1 server adapter, driven through `wireloop::testing::Driver`.

use super::super::fuzzing::{before_error, driver, run, small_config};
use super::*;
use crate::http1::{Request, Response};

const HELLO: &str = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Length: 14\r\n\r\nHello World!\r\n";

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The output for `input` in one read, checked equal for every cut into two reads
/// and for one byte per read.
fn every_split(input: &[u8]) -> String {
    let whole = run(Config::default(), [input]);
    for cut in 0..=input.len() {
        let out = run(Config::default(), [&input[..cut], &input[cut..]]);
        assert_eq!(text(&out), text(&whole), "cut at {cut}");
    }
    let bytes = run(Config::default(), input.chunks(1));
    assert_eq!(text(&bytes), text(&whole), "one byte per read");
    text(&whole)
}

#[test]
fn pipelined_requests_at_every_split() {
    let req = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\nHEAD / HTTP/1.1\r\nHost: a\r\n\r\n";
    let out = every_split(req);
    let head_only = &HELLO[..HELLO.len() - 14];
    assert_eq!(out, format!("{HELLO}{HELLO}{head_only}"));
}

#[test]
fn pipelined_responses_batched_in_one_callback() {
    let mut d = driver(Config::default());
    let c = d.open(0);
    let one = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    let req: Vec<u8> = one.iter().copied().cycle().take(one.len() * 16).collect();
    assert!(d.feed(c, &req));
    assert_eq!(text(&d.take_output(c)), HELLO.repeat(16));
    assert_eq!(d.handler().app().requests, 16);
    assert!(d.is_open(c));
}

#[test]
fn collected_chunked_body_at_every_split() {
    let req = b"POST /collect HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
    let out = every_split(req);
    assert!(out.starts_with("HTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Length: 11\r\n\r\nhello world"), "{out}");
    assert!(out.ends_with(HELLO));
}

#[test]
fn collected_sized_body_at_every_split() {
    let req = b"POST /collect HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\nHost: a\r\n\r\n";
    let out = every_split(req);
    assert!(
        out.ends_with(&format!("Content-Length: 5\r\n\r\nhello{HELLO}")),
        "{out}"
    );
}

#[test]
fn large_collected_body_is_copied_not_inlined() {
    let body = vec![b'z'; 100_000];
    let mut req = format!(
        "POST /collect HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&body);
    for step in [1000, 65_536, req.len()] {
        let out = run(Config::default(), req.chunks(step));
        assert!(out.ends_with(&body), "step {step}");
    }
}

#[test]
fn streamed_echo_at_every_split() {
    let req = b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nabcdPOST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nxy\r\n0\r\n\r\n";
    let out = every_split(req);
    assert!(out.contains("Content-Length: 4\r\n\r\nabcd"), "{out}");
    assert!(
        out.ends_with("Transfer-Encoding: chunked\r\n\r\n1\r\nx\r\n1\r\ny\r\n0\r\n\r\n"),
        "{out}"
    );
}

/// `errors! { name: input => status; }`: answered with `status`, then closed.
macro_rules! errors {
    ($($name:ident: $input:expr => $status:expr;)*) => {$(
        #[test]
        fn $name() {
            let mut d = driver(small_config());
            let c = d.open(0);
            d.feed(c, $input);
            let out = text(&d.take_output(c));
            let want = format!("HTTP/1.1 {} ", $status);
            let at = out.find(&want).unwrap_or_else(|| panic!("no {} in {out:?}", $status));
            assert!(out[at..].contains("Connection: close\r\n"), "{out}");
            assert!(!d.is_open(c), "still open after {}", $status);
            let (_, err) = before_error(out.as_bytes());
            assert!(err);
        }
    )*};
}

errors! {
    err_malformed: b"GET / HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n" => 400;
    err_bare_lf: b"GET / HTTP/1.1\nHost: a\n\n" => 400;
    err_obs_fold: b"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n\t2\r\n\r\n" => 400;
    err_cl_te: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" => 400;
    err_two_cl: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab" => 400;
    err_chunk_size: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n" => 400;
    err_chunk_overflow: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n" => 400;
    err_chunk_bare_lf: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\na\r\n0\r\n\r\n" => 400;
    err_te_not_chunked: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n" => 400;
    err_te_unknown: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: br, chunked\r\n\r\n" => 501;
    err_too_many_headers: b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\nE: 1\r\nF: 1\r\nG: 1\r\nH: 1\r\n\r\n" => 431;
    err_head_too_large: &[b"GET / HTTP/1.1\r\nHost: a\r\nX: ".as_slice(), &[b'a'; 700]].concat() => 431;
    err_uri_too_long: &[b"GET /".as_slice(), &[b'a'; 300], b" HTTP/1.1\r\nHost: a\r\n\r\n"].concat() => 414;
    err_body_too_large_cl: b"POST /collect HTTP/1.1\r\nHost: a\r\nContent-Length: 301\r\n\r\n" => 413;
    err_body_too_large_chunked: &[b"POST /collect HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n100\r\n".as_slice(), &[b'a'; 256], b"\r\n100\r\n", &[b'a'; 256]].concat() => 413;
    err_version: b"GET / HTTP/2.0\r\nHost: a\r\n\r\n" => 505;
    err_expect: b"GET / HTTP/1.1\r\nHost: a\r\nExpect: magic\r\n\r\n" => 417;
    err_no_host: b"GET / HTTP/1.1\r\n\r\n" => 400;
    err_after_good: b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n" => 400;
}

#[test]
fn error_after_good_request_answers_the_good_one_first() {
    let out = run(
        Config::default(),
        [b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/9.9\r\n\r\n".as_slice()],
    );
    let out = text(&out);
    assert!(out.starts_with(HELLO));
    assert!(out[HELLO.len()..].starts_with("HTTP/1.1 505 "), "{out}");
}

#[test]
fn smuggled_request_in_body_is_not_served() {
    // CL.TE and TE.CL: rejected before any body byte is trusted.
    for req in [
        &b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n"[..],
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\x0bchunked\r\n\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 40\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2 \r\nxx\r\n0\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nxx\r\n0\r\n\r\n",
    ] {
        let mut d = driver(Config::default());
        let c = d.open(0);
        d.feed(c, req);
        let out = text(&d.take_output(c));
        assert!(out.starts_with("HTTP/1.1 400 ") || out.starts_with("HTTP/1.1 501 "), "{out}");
        assert_eq!(out.matches("HTTP/1.1 ").count(), 1, "{out}");
        assert!(!d.is_open(c));
        assert_eq!(d.handler().app().requests, 0);
    }
}

#[test]
fn expect_continue_collect() {
    let mut d = driver(Config::default());
    let c = d.open(0);
    d.feed(
        c,
        b"POST /collect HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
    );
    assert_eq!(text(&d.take_output(c)), "HTTP/1.1 100 Continue\r\n\r\n");
    d.feed(c, b"abc");
    let out = text(&d.take_output(c));
    assert!(
        out.starts_with("HTTP/1.1 200 OK\r\n") && out.ends_with("\r\n\r\nabc"),
        "{out}"
    );
    assert!(d.is_open(c));
}

#[test]
fn expect_continue_streamed_accept() {
    let mut d = driver(Config::default());
    let c = d.open(0);
    d.feed(
        c,
        b"POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
    );
    let out = text(&d.take_output(c));
    assert!(
        out.starts_with("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"),
        "{out}"
    );
    d.feed(c, b"hi");
    assert_eq!(text(&d.take_output(c)), "hi");
    assert!(d.is_open(c));
}

#[test]
fn expect_continue_rejected_first() {
    let mut d = driver(Config::default());
    let c = d.open(0);
    d.feed(
        c,
        b"POST /reject HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n",
    );
    let out = text(&d.take_output(c));
    assert!(out.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{out}");
    assert!(!out.contains("100 Continue"));
    assert!(out.contains("Connection: close\r\n"));
    assert!(!d.is_open(c));
}

#[test]
fn rejected_without_expect_reads_the_body_and_keeps_alive() {
    let out = every_split(b"POST /reject HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert!(out.starts_with("HTTP/1.1 403 Forbidden\r\n"));
    assert!(out.ends_with(HELLO));
}

#[test]
fn expect_continue_too_large_gets_413_without_100() {
    let mut d = driver(small_config());
    let c = d.open(0);
    d.feed(c, b"POST /collect HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1000\r\n\r\n");
    let out = text(&d.take_output(c));
    assert!(out.starts_with("HTTP/1.1 413 "), "{out}");
    assert!(!d.is_open(c));
}

#[test]
fn keep_alive_rules() {
    // (request, stays open, Connection header expected in the response)
    let cases: &[(&[u8], bool, Option<&str>)] = &[
        (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", true, None),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
            false,
            Some("close"),
        ),
        (b"GET / HTTP/1.0\r\n\r\n", false, Some("close")),
        (
            b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            true,
            Some("keep-alive"),
        ),
        (
            b"GET /close HTTP/1.1\r\nHost: a\r\n\r\n",
            false,
            Some("close"),
        ),
        // No length known for a streamed HTTP/1.0 answer: the close delimits it.
        (
            b"POST /echo HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            false,
            Some("close"),
        ),
    ];
    for &(req, open, header) in cases {
        let mut d = driver(Config::default());
        let c = d.open(0);
        d.feed(c, req);
        let out = text(&d.take_output(c));
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
        assert_eq!(d.is_open(c), open, "{}", text(req));
        match header {
            Some(h) => assert!(out.contains(&format!("\r\nConnection: {h}\r\n")), "{out}"),
            None => assert!(!out.contains("Connection:"), "{out}"),
        }
    }
}

#[test]
fn http10_chunked_response_is_delimited_by_close() {
    let mut d = driver(Config::default());
    let c = d.open(0);
    d.feed(
        c,
        b"POST /echo HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nab",
    );
    let out = text(&d.take_output(c));
    assert!(
        out.ends_with("Content-Length: 2\r\nConnection: keep-alive\r\n\r\nab"),
        "{out}"
    );
    assert!(d.is_open(c));
}

#[test]
fn head_request_has_no_body() {
    let out = text(&run(
        Config::default(),
        [b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n".as_slice()],
    ));
    assert!(out.ends_with("Content-Length: 14\r\n\r\n"), "{out}");
}

#[test]
fn upgrade_hands_over_raw_bytes() {
    let mut d = driver(Config::default());
    let c = d.open(0);
    d.feed(
        c,
        b"GET /upgrade HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nraw1",
    );
    let out = text(&d.take_output(c));
    assert!(
        out.starts_with("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\n"),
        "{out}"
    );
    assert!(out.ends_with("Connection: Upgrade\r\n\r\nraw1"), "{out}");
    d.feed(c, b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(text(&d.take_output(c)), "GET / HTTP/1.1\r\n\r\n");
    d.eof(c);
    assert!(!d.is_open(c));
}

#[test]
fn partial_request_then_eof_closes_without_answer() {
    let mut d = driver(Config::default());
    let c = d.open(0);
    d.feed(c, b"GET / HTTP/1.1\r\nHo");
    assert!(d.take_output(c).is_empty());
    d.eof(c);
    assert!(d.take_output(c).is_empty());
    assert!(!d.is_open(c));
}

#[test]
fn requests_then_eof_are_answered_then_closed() {
    let mut d = driver(Config::default());
    let c = d.open(0);
    d.feed(c, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    d.eof(c);
    assert_eq!(text(&d.take_output(c)), HELLO);
    assert!(!d.is_open(c));
}

#[test]
fn client_eof_mid_response_reaches_the_app() {
    /// Starts a chunked response and continues only when woken; aborts if the client
    /// ends its input first when `abort` is set.
    struct Slow {
        abort: bool,
        eofs: usize,
    }
    impl App for Slow {
        type State = ();
        fn request(&mut self, _req: &Request<'_>, res: &mut Response<'_>, _: &mut ()) {
            res.start_chunked();
            res.write(b"first");
        }
        fn resume(&mut self, res: &mut Response<'_>, _: &mut ()) {
            res.write(b"last");
            res.finish();
        }
        fn client_eof(&mut self, res: &mut Response<'_>, _: &mut ()) {
            self.eofs += 1;
            if self.abort {
                res.abort();
            }
        }
    }
    for abort in [false, true] {
        let mut h = Http1::server(Slow { abort, eofs: 0 });
        h.freeze_date(0);
        let mut d = wireloop::testing::Driver::new(h);
        let c = d.open(0);
        d.feed(c, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        let head = text(&d.take_output(c));
        assert!(head.ends_with("5\r\nfirst\r\n"), "{head}");
        d.eof(c);
        assert_eq!(d.handler().app().eofs, 1);
        if abort {
            assert!(!d.is_open(c), "an aborted response closes the connection");
            assert_eq!(d.take_output(c), b"");
        } else {
            // A half-close: the response still completes, then the connection closes.
            assert!(d.is_open(c));
            d.wake(c);
            let rest = text(&d.take_output(c));
            assert_eq!(rest, "4\r\nlast\r\n0\r\n\r\n");
            assert!(!d.is_open(c), "closed after the response");
        }
    }
}

#[test]
fn aborted_response_closes_without_completing_the_body() {
    let mut h = Http1::server(|req: &Request<'_>, res: &mut Response<'_>| {
        if req.path() == "/sized" {
            res.start_sized(10);
        } else {
            res.start_chunked();
        }
        res.write(b"part");
        res.abort();
    });
    h.freeze_date(0);
    let mut d = wireloop::testing::Driver::new(h);
    for (path, tail) in [
        ("/sized", "Content-Length: 10\r\n\r\npart"),
        ("/chunked", "chunked\r\n\r\n4\r\npart\r\n"),
    ] {
        let c = d.open(0);
        d.feed(
            c,
            format!("GET {path} HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n")
                .as_bytes(),
        );
        let out = text(&d.take_output(c));
        assert!(out.ends_with(tail), "{out}");
        assert_eq!(out.matches("HTTP/1.1").count(), 1, "{out}");
        assert!(!d.is_open(c));
    }
}

#[test]
fn closure_app() {
    let mut h = Http1::server(|req: &Request<'_>, res: &mut Response<'_>| {
        res.status(201).body(req.method().as_bytes());
    });
    h.freeze_date(0);
    let mut d = wireloop::testing::Driver::new(h);
    let c = d.open(0);
    d.feed(c, b"PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(
        text(&d.take_output(c)),
        "HTTP/1.1 201 Created\r\nDate: Thu, 01 Jan 1970 00:00:00 GMT\r\nContent-Length: 3\r\n\r\nPUT"
    );
}

#[test]
fn fuzz_bodies_hold_on_samples() {
    for s in [
        &b"\x05GET / HTTP/1.1\r\nHost: a\r\n\r\nPOST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"[..],
        b"\x00GET / HTTP/1.1\nHost: a\r\n\r\n",
        b"\x10\x00\x01\x02",
        b"",
    ] {
        super::super::fuzzing::request(s);
        super::super::fuzzing::chunked(s);
    }
}
