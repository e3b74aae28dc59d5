//! The request head parser as a whole ([`parse_request`]): heads it takes and what it
//! reads from them, the status of each head it rejects, heads not complete yet, limits.

use super::*;

fn cfg() -> Config {
    Config::default()
}

/// `ok! { name: input => |req, len| { assertions } }`: the head parses.
macro_rules! ok {
    ($($name:ident: $input:expr => |$req:ident, $len:ident| $body:block)*) => {$(
        #[test]
        fn $name() {
            let input: &[u8] = $input;
            let mut slots = header_slots();
            let c = cfg();
            match parse_request(input, &mut slots, &c) {
                Ok(Some(($len, $req))) => $body,
                other => panic!("expected a request, got {:?}", other.map(|o| o.map(|(l, _)| l))),
            }
        }
    )*};
}

/// `err! { name: input => status; }`: the head is rejected with `status`.
macro_rules! err {
    ($($name:ident: $input:expr => $status:expr;)*) => {$(
        #[test]
        fn $name() {
            let input: &[u8] = $input;
            let mut slots = header_slots();
            let c = cfg();
            match parse_request(input, &mut slots, &c) {
                Err(e) => assert_eq!(e.status(), $status, "{e}"),
                Ok(o) => panic!("expected {}, got {:?}", $status, o.map(|(l, _)| l)),
            }
        }
    )*};
}

/// `partial! { name: input; }`: the head is not complete yet, and not wrong so far.
macro_rules! partial {
    ($($name:ident: $input:expr;)*) => {$(
        #[test]
        fn $name() {
            let input: &[u8] = $input;
            let mut slots = header_slots();
            let c = cfg();
            match parse_request(input, &mut slots, &c) {
                Ok(None) => {}
                Ok(Some((l, _))) => panic!("expected partial, got a head of {l}"),
                Err(e) => panic!("expected partial, got {e}"),
            }
        }
    )*};
}

ok! {
    simple_get: b"GET / HTTP/1.1\r\nHost: a\r\n\r\n" => |r, len| {
        assert_eq!(len, 27);
        assert_eq!(r.method(), "GET");
        assert_eq!(r.target(), "/");
        assert_eq!(r.version_minor(), 1);
        assert!(r.keep_alive());
        assert_eq!(r.body_length(), BodyLength::None);
        assert_eq!(r.header("HOST"), Some(&b"a"[..]));
    }
    path_and_query: b"GET /a/b?x=1&y HTTP/1.1\r\nHost: a\r\n\r\n" => |r, _len| {
        assert_eq!(r.path(), "/a/b");
        assert_eq!(r.query(), Some("x=1&y"));
    }
    body_follows: b"POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc" => |r, len| {
        assert_eq!(len, 48);
        assert_eq!(r.content_length(), Some(3));
        assert!(r.has_body());
    }
    http10_closes: b"GET / HTTP/1.0\r\n\r\n" => |r, _len| {
        assert_eq!(r.version_minor(), 0);
        assert!(!r.keep_alive());
    }
    http10_keep_alive: b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n" => |r, _len| {
        assert!(r.keep_alive());
    }
    http11_close: b"GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, close\r\n\r\n" => |r, _len| {
        assert!(!r.keep_alive());
    }
    chunked: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" => |r, _len| {
        assert!(r.is_chunked());
    }
    chunked_case_and_ows: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:  ,CHUNKED \r\n\r\n" => |r, _len| {
        assert!(r.is_chunked());
    }
    same_content_lengths: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5, 5\r\n\r\n" => |r, _len| {
        assert_eq!(r.content_length(), Some(5));
    }
    leading_zeros: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 007\r\n\r\n" => |r, _len| {
        assert_eq!(r.content_length(), Some(7));
    }
    expect_continue: b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n" => |r, _len| {
        assert!(r.expects_continue());
    }
    expect_ignored_in_10: b"PUT / HTTP/1.0\r\nExpect: fancy\r\n\r\n" => |r, _len| {
        assert!(!r.expects_continue());
    }
    upgrade: b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n" => |r, _len| {
        assert!(r.wants_upgrade());
    }
    leading_empty_line: b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n" => |r, len| {
        assert_eq!(len, 29);
        assert_eq!(r.method(), "GET");
    }
    empty_host_value: b"OPTIONS * HTTP/1.1\r\nHost:\r\n\r\n" => |r, _len| {
        assert_eq!(r.target(), "*");
    }
    pipelined_first_only: b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n" => |r, len| {
        assert_eq!(r.target(), "/1");
        assert_eq!(len, 28);
    }
    absolute_form: b"GET http://Example.com:8080/a/b?x=1 HTTP/1.1\r\nHost: example.COM:8080\r\n\r\n" => |r, _len| {
        assert_eq!(r.target(), "http://Example.com:8080/a/b?x=1");
        assert_eq!(r.authority(), Some("Example.com:8080"));
        assert_eq!(r.origin(), "/a/b?x=1");
        assert_eq!(r.path(), "/a/b");
        assert_eq!(r.query(), Some("x=1"));
    }
    absolute_form_no_path: b"GET https://a?q HTTP/1.1\r\nHost: a\r\n\r\n" => |r, _len| {
        assert_eq!(r.origin(), "?q");
        assert_eq!(r.path(), "/");
        assert_eq!(r.query(), Some("q"));
    }
    absolute_form_http10_without_host: b"GET http://a/x HTTP/1.0\r\n\r\n" => |r, _len| {
        assert_eq!(r.authority(), Some("a"));
        assert_eq!(r.path(), "/x");
    }
    origin_form_has_no_authority: b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n" => |r, _len| {
        assert_eq!(r.authority(), None);
        assert_eq!(r.origin(), "/x");
    }
    connect_authority_form: b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n" => |r, _len| {
        assert_eq!(r.target(), "a:443");
        assert_eq!(r.authority(), None);
    }
}

err! {
    bare_lf_request_line: b"GET / HTTP/1.1\nHost: a\r\n\r\n" => 400;
    bare_lf_header: b"GET / HTTP/1.1\r\nHost: a\n\r\n" => 400;
    bare_lf_end: b"GET / HTTP/1.1\r\nHost: a\r\n\n" => 400;
    bare_lf_leading: b"\nGET / HTTP/1.1\r\nHost: a\r\n\r\n" => 400;
    bare_lf_partial: b"GET / HTTP/1.1\nHo" => 400;
    bare_cr: b"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n" => 400;
    obs_fold: b"GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n" => 400;
    obs_fold_first: b"GET / HTTP/1.1\r\n Host: a\r\n\r\n" => 400;
    space_before_colon: b"GET / HTTP/1.1\r\nHost : a\r\n\r\n" => 400;
    no_host: b"GET / HTTP/1.1\r\n\r\n" => 400;
    two_hosts: b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n" => 400;
    bad_host: b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n" => 400;
    cl_and_te: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n" => 400;
    te_and_cl: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n" => 400;
    differing_cl: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n" => 400;
    differing_cl_list: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 4\r\n\r\n" => 400;
    negative_cl: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n" => 400;
    plus_cl: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\n" => 400;
    hex_cl: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n" => 400;
    empty_cl: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n" => 400;
    space_in_cl: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 2\r\n\r\n" => 400;
    overflow_cl: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n" => 400;
    te_not_final_chunked: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n" => 400;
    te_unknown_alone: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: foo\r\n\r\n" => 400;
    te_double_chunked: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n" => 400;
    te_gzip_chunked: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n" => 501;
    te_split_fields: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n" => 501;
    te_in_http10: b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n" => 400;
    te_garbage: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n" => 400;
    te_empty: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \r\n\r\n" => 400;
    te_chunked_params: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;q=1\r\n\r\n" => 400;
    version_2: b"GET / HTTP/2.0\r\nHost: a\r\n\r\n" => 505;
    version_12: b"GET / HTTP/1.2\r\nHost: a\r\n\r\n" => 505;
    version_09: b"GET / HTTP/0.9\r\n\r\n" => 505;
    version_garbage: b"GET / HTTX/1.1\r\nHost: a\r\n\r\n" => 400;
    no_version: b"GET /\r\n\r\n" => 400;
    expect_other: b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: fancy\r\n\r\n" => 417;
    nul_in_value: b"GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n" => 400;
    space_in_target: b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n" => 400;
    double_space: b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n" => 400;
    junk: b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" => 400;
    empty_method: b" / HTTP/1.1\r\n" => 400;
    absolute_form_other_host: b"GET http://evil/admin HTTP/1.1\r\nHost: a\r\n\r\n" => 400;
    absolute_form_userinfo: b"GET http://a@evil/ HTTP/1.1\r\nHost: evil\r\n\r\n" => 400;
    absolute_form_empty_authority: b"GET http:///x HTTP/1.1\r\nHost: a\r\n\r\n" => 400;
    absolute_form_other_scheme: b"GET ftp://a/x HTTP/1.1\r\nHost: a\r\n\r\n" => 400;
    absolute_form_fragment: b"GET http://a#x HTTP/1.1\r\nHost: a\r\n\r\n" => 400;
    absolute_form_backslash_no_host: b"GET http://a\\b/ HTTP/1.0\r\n\r\n" => 400;
    connect_backslash: b"CONNECT a\\b:443 HTTP/1.1\r\nHost: a\\b:443\r\n\r\n" => 400;
    target_without_slash: b"GET admin HTTP/1.1\r\nHost: a\r\n\r\n" => 400;
    asterisk_other_method: b"GET * HTTP/1.1\r\nHost: a\r\n\r\n" => 400;
    connect_origin_form: b"CONNECT /x HTTP/1.1\r\nHost: a\r\n\r\n" => 400;
    connect_no_port: b"CONNECT a HTTP/1.1\r\nHost: a\r\n\r\n" => 400;
    authority_form_not_connect: b"GET a:443 HTTP/1.1\r\nHost: a\r\n\r\n" => 400;
}

partial! {
    nothing: b"";
    half_method: b"GE";
    request_line_only: b"GET / HTTP/1.1\r\n";
    ends_in_cr: b"GET / HTTP/1.1\r\nHost: a\r\n\r";
    one_empty_line: b"\r\n";
}

#[test]
fn too_many_headers() {
    let mut req = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
    for i in 0..64 {
        req.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    req.extend_from_slice(b"\r\n");
    let mut slots = header_slots();
    let e = parse_request(&req, &mut slots, &cfg())
        .map(|_| ())
        .unwrap_err();
    assert_eq!(e.status(), 431);
}

#[test]
fn head_too_large() {
    let mut req = b"GET / HTTP/1.1\r\nHost: a\r\nX: ".to_vec();
    req.resize(cfg().max_head + 10, b'a');
    let mut slots = header_slots();
    let e = parse_request(&req, &mut slots, &cfg())
        .map(|_| ())
        .unwrap_err();
    assert_eq!(e.status(), 431);
}

#[test]
fn uri_too_long_complete() {
    let long = "a".repeat(cfg().max_target + 1);
    let req = format!("GET /{long} HTTP/1.1\r\nHost: a\r\n\r\n");
    let mut slots = header_slots();
    let e = parse_request(req.as_bytes(), &mut slots, &cfg())
        .map(|_| ())
        .unwrap_err();
    assert_eq!(e.status(), 414);
}

#[test]
fn uri_too_long_never_ends() {
    let mut req = b"GET /".to_vec();
    req.resize(cfg().max_head, b'a');
    let mut slots = header_slots();
    let e = parse_request(&req, &mut slots, &cfg())
        .map(|_| ())
        .unwrap_err();
    assert_eq!(e.status(), 414);
}

#[test]
fn every_prefix_of_a_valid_head_is_partial() {
    let req = b"POST /x?y HTTP/1.1\r\nHost: example.com\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n";
    for cut in 0..req.len() {
        let mut slots = header_slots();
        assert!(
            matches!(parse_request(&req[..cut], &mut slots, &cfg()), Ok(None)),
            "prefix of {cut} bytes"
        );
    }
    let mut slots = header_slots();
    let (len, r) = parse_request(req, &mut slots, &cfg()).unwrap().unwrap();
    assert_eq!(len, req.len());
    assert!(r.expects_continue());
}

/// A caller's empty header slots: an error for a head with fields (httparse's verdict),
/// never a panic.
#[test]
fn no_slots_is_an_error_not_a_panic() {
    let c = cfg();
    let mut none: [MaybeUninit<Header<'_>>; 0] = [];
    let r = parse_request(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", &mut none, &c);
    assert!(
        matches!(r, Err(ParseError::TooManyHeaders)),
        "{:?}",
        r.map(|o| o.is_some())
    );
    let mut none: [MaybeUninit<Header<'_>>; 0] = [];
    let r = parse_request(b"GET / HTTP/1.0\r\n\r\n", &mut none, &c);
    assert!(
        matches!(r, Ok(Some((18, _)))),
        "{:?}",
        r.map(|o| o.is_some())
    );
}
