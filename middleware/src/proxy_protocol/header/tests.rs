use std::net::SocketAddr;

use super::{parse, write, Header, Version, V1_MAX, V2_SIGNATURE};
use crate::codec::Status;

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn complete(input: &[u8]) -> (usize, Header) {
    match parse(input) {
        Ok(Status::Complete(c)) => c,
        other => panic!("{:?}: {other:?}", String::from_utf8_lossy(input)),
    }
}

#[test]
fn version_1_examples_of_the_spec() {
    let line = b"PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n";
    assert_eq!(
        complete(line),
        (
            line.len(),
            Header::Proxied {
                source: addr("255.255.255.255:65535"),
                dest: addr("255.255.255.255:65535")
            }
        )
    );
    let six = b"PROXY TCP6 ffff:f::ffff:ffff:ffff:ffff ::1 65535 80\r\nrest";
    assert_eq!(
        complete(six),
        (
            six.len() - 4,
            Header::Proxied {
                source: addr("[ffff:f::ffff:ffff:ffff:ffff]:65535"),
                dest: addr("[::1]:80")
            }
        )
    );
    assert_eq!(complete(b"PROXY UNKNOWN\r\n"), (15, Header::Local));
    assert_eq!(
        complete(b"PROXY UNKNOWN ffff:f::ffff 1.2.3.4 1 2\r\n").1,
        Header::Local
    );
}

#[test]
fn every_version_and_family_round_trips_and_every_prefix_is_partial() {
    let cases = [
        (addr("192.0.2.1:51000"), addr("198.51.100.2:443")),
        (addr("[2001:db8::1]:51000"), addr("[2001:db8::2]:8443")),
    ];
    for version in [Version::V1, Version::V2] {
        for (source, dest) in cases {
            let mut wire = Vec::new();
            write(version, source, dest, &mut wire);
            let len = wire.len();
            wire.extend_from_slice(b"\x16\x03\x01 the TLS hello follows");
            assert_eq!(
                complete(&wire),
                (len, Header::Proxied { source, dest }),
                "{version:?}"
            );
            for n in 0..len {
                assert_eq!(parse(&wire[..n]), Ok(Status::Partial), "{version:?} {n}");
            }
        }
        let mut mixed = Vec::new();
        write(version, cases[0].0, cases[1].1, &mut mixed);
        assert_eq!(complete(&mixed), (mixed.len(), Header::Local));
    }
}

#[test]
fn version_2_local_unix_and_tlvs() {
    let mut local = V2_SIGNATURE.to_vec();
    local.extend([0x20, 0x00, 0, 0]);
    assert_eq!(complete(&local), (16, Header::Local));
    // Unix stream addresses (2 x 108 bytes) say nothing about IP.
    let mut unix = V2_SIGNATURE.to_vec();
    unix.extend([0x21, 0x31, 0, 216]);
    unix.extend([0u8; 216]);
    assert_eq!(complete(&unix), (232, Header::Local));
    // TLVs after the addresses are skipped.
    let mut tlv = Vec::new();
    write(
        Version::V2,
        addr("10.0.0.1:1"),
        addr("10.0.0.2:2"),
        &mut tlv,
    );
    tlv[15] += 7;
    tlv.extend([0x04, 0, 4, b'n', b'o', b'o', b'p']);
    assert_eq!(complete(&tlv).0, tlv.len());
}

#[test]
fn what_is_not_a_header_is_an_error() {
    let bad: &[&[u8]] = &[
        b"GET / HTTP/1.1\r\n",
        b"\x16\x03\x01",
        b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
        b"PROXY TCP4 1.2.3.4 ::1 1 2\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
        b"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
    ];
    for input in bad {
        assert!(
            parse(input).is_err(),
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
    let long = [b"PROXY UNKNOWN ".as_slice(), &[b'x'; V1_MAX]].concat();
    assert!(parse(&long).is_err());
    let mut v3 = V2_SIGNATURE.to_vec();
    v3.extend([0x31, 0x11, 0, 12]);
    assert!(parse(&v3).is_err());
    let mut cmd = V2_SIGNATURE.to_vec();
    cmd.extend([0x22, 0x11, 0, 12]);
    cmd.extend([0; 12]);
    assert!(parse(&cmd).is_err());
    let mut short = V2_SIGNATURE.to_vec();
    short.extend([0x21, 0x11, 0, 4, 1, 2, 3, 4]);
    assert!(parse(&short).is_err(), "addresses cut short");
    let mut huge = V2_SIGNATURE.to_vec();
    huge.extend([0x21, 0x11, 0xff, 0xff]);
    assert!(parse(&huge).is_err(), "64 KiB of TLVs");
    let mut family = V2_SIGNATURE.to_vec();
    family.extend([0x21, 0x41, 0, 0]);
    assert!(parse(&family).is_err());
}
