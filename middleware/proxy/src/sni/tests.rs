use std::sync::Arc;

use super::{peek_sni, Hello, HelloError, SniRoutes, MAX_HELLO};

/// The first flight of a real rustls client asking for `name`.
fn rustls_hello(name: &str) -> Vec<u8> {
    let roots = rustls::RootCertStore::empty();
    let provider = wireloop_middleware::tls::crypto_provider();
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let server = rustls::pki_types::ServerName::try_from(name.to_string()).unwrap();
    let mut conn = rustls::ClientConnection::new(Arc::new(config), server).unwrap();
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out).unwrap();
    }
    out
}

/// A ClientHello body with `exts` as its extensions (`None`: no extensions block).
fn hello_body(exts: Option<&[u8]>) -> Vec<u8> {
    let mut b = vec![3, 3];
    b.extend([7u8; 32]);
    b.push(0); // session id
    b.extend([0, 2, 0x13, 0x01]); // one suite
    b.extend([1, 0]); // null compression
    if let Some(e) = exts {
        b.extend((e.len() as u16).to_be_bytes());
        b.extend(e);
    }
    b
}

fn sni_ext(names: &[(u8, &[u8])]) -> Vec<u8> {
    let mut list = Vec::new();
    for (kind, n) in names {
        list.push(*kind);
        list.extend((n.len() as u16).to_be_bytes());
        list.extend(*n);
    }
    let mut data = (list.len() as u16).to_be_bytes().to_vec();
    data.extend(list);
    let mut e = vec![0, 0];
    e.extend((data.len() as u16).to_be_bytes());
    e.extend(data);
    e
}

/// `body` as a ClientHello message cut into records of at most `per_record` bytes.
fn records(body: &[u8], per_record: usize) -> Vec<u8> {
    let mut msg = vec![1];
    msg.extend(&(body.len() as u32).to_be_bytes()[1..]);
    msg.extend(body);
    let mut out = Vec::new();
    for chunk in msg.chunks(per_record) {
        out.extend([22, 3, 1]);
        out.extend((chunk.len() as u16).to_be_bytes());
        out.extend(chunk);
    }
    out
}

#[test]
fn a_real_client_hello_names_its_server_and_every_prefix_is_partial() {
    let wire = rustls_hello("API.Example.test");
    assert_eq!(
        peek_sni(&wire),
        Ok(Hello::Complete(Some("api.example.test".into())))
    );
    for n in 0..wire.len() {
        assert_eq!(
            peek_sni(&wire[..n]),
            Ok(Hello::Partial),
            "prefix of {n} bytes"
        );
    }
    // Bytes after the hello are not looked at.
    let mut more = wire.clone();
    more.extend(b"\x17\x03\x03garbage");
    assert_eq!(
        peek_sni(&more),
        Ok(Hello::Complete(Some("api.example.test".into())))
    );
}

#[test]
fn a_hello_over_several_records_is_reassembled() {
    let body = hello_body(Some(&sni_ext(&[(0, b"split.example.")])));
    for per in [1, 2, 7, 40] {
        let wire = records(&body, per);
        assert_eq!(
            peek_sni(&wire),
            Ok(Hello::Complete(Some("split.example".into()))),
            "{per} bytes per record"
        );
        assert_eq!(peek_sni(&wire[..wire.len() - 1]), Ok(Hello::Partial));
    }
}

#[test]
fn hellos_without_a_name() {
    let none = records(&hello_body(None), 512);
    assert_eq!(peek_sni(&none), Ok(Hello::Complete(None)));
    let other_ext = records(&hello_body(Some(&[0, 10, 0, 2, 0, 29])), 512);
    assert_eq!(peek_sni(&other_ext), Ok(Hello::Complete(None)));
}

#[test]
fn what_is_not_a_routable_hello_is_an_error() {
    let not_tls = [
        &b"GET / HTTP/1.1\r\n"[..],
        b"G",
        b"\x16\x02",
        b"\x15\x03\x03\x00\x02\x02\x28",
    ];
    for input in not_tls {
        assert_eq!(peek_sni(input), Err(HelloError::NotTls), "{input:?}");
    }
    let bad = |body: &[u8]| peek_sni(&records(body, 512));
    // A server hello (type 2) first.
    let mut server_hello = records(&hello_body(None), 512);
    server_hello[5] = 2;
    assert!(matches!(
        peek_sni(&server_hello),
        Err(HelloError::Malformed(_))
    ));
    // Truncated inside the body, an odd suite list, a bad name, two names.
    let body = hello_body(Some(&sni_ext(&[(0, b"ok.test")])));
    assert!(matches!(bad(&body[..40]), Err(HelloError::Malformed(_))));
    let mut odd = body.clone();
    odd[35..37].copy_from_slice(&[0, 1]);
    assert!(matches!(bad(&odd), Err(HelloError::Malformed(_))));
    for name in [&b"a b.test"[..], b"", b"x\0y", b"\xff.test"] {
        let body = hello_body(Some(&sni_ext(&[(0, name)])));
        assert!(
            matches!(bad(&body), Err(HelloError::Malformed(_))),
            "{name:?}"
        );
    }
    let two = hello_body(Some(&sni_ext(&[(0, b"a.test"), (0, b"b.test")])));
    assert!(matches!(bad(&two), Err(HelloError::Malformed(_))));
    // A zero-length record.
    assert!(matches!(
        peek_sni(b"\x16\x03\x01\x00\x00"),
        Err(HelloError::Malformed(_))
    ));
}

#[test]
fn a_hello_larger_than_the_limit_is_refused_before_it_arrives() {
    let mut head = vec![22, 3, 1, 0, 4, 1];
    head.extend(&((MAX_HELLO + 1) as u32).to_be_bytes()[1..]);
    assert_eq!(peek_sni(&head), Err(HelloError::TooLarge));
}

#[test]
fn routes_exact_then_longest_wildcard_then_default() {
    let mut r = SniRoutes::new();
    assert_eq!(r.route(Some("x")), None);
    r.add("api.example.test", "api").unwrap();
    r.add("*.example.test", "any").unwrap();
    r.add("*.eu.example.test", "eu").unwrap();
    assert_eq!(r.route(Some("api.example.test")), Some(&"api"));
    assert_eq!(r.route(Some("www.example.test")), Some(&"any"));
    assert_eq!(r.route(Some("a.eu.example.test")), Some(&"eu"));
    assert_eq!(r.route(Some("example.test")), None);
    assert_eq!(r.route(None), None);
    r.add("*", "default").unwrap();
    assert_eq!(r.route(Some("example.test")), Some(&"default"));
    assert_eq!(r.route(None), Some(&"default"));
    assert!(r.add("bad name", "x").is_err());
    assert!(r.add("*.", "x").is_err());
}
