//! RFC 7541 Appendix C decoded, and the encoder: its blocks against C.4 and C.6, and
//! round trips through a decoder.

use super::table::DynamicTable;
use super::*;

/// Octets from space-separated hex, as the RFC prints them.
fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

type Fields = Vec<(Vec<u8>, Vec<u8>, bool)>;

fn decode(d: &mut Decoder, block: &[u8]) -> Fields {
    let mut fields = Vec::new();
    d.decode(block, usize::MAX, |n, v, s| {
        fields.push((n.to_vec(), v.to_vec(), s))
    })
    .unwrap_or_else(|e| panic!("{e}: {block:x?}"));
    fields
}

fn plain(list: &[(&str, &str)]) -> Fields {
    list.iter()
        .map(|&(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec(), false))
        .collect()
}

const REQUEST_1: &[(&str, &str)] = &[
    (":method", "GET"),
    (":scheme", "http"),
    (":path", "/"),
    (":authority", "www.example.com"),
];
const REQUEST_2: &[(&str, &str)] = &[
    (":method", "GET"),
    (":scheme", "http"),
    (":path", "/"),
    (":authority", "www.example.com"),
    ("cache-control", "no-cache"),
];
const REQUEST_3: &[(&str, &str)] = &[
    (":method", "GET"),
    (":scheme", "https"),
    (":path", "/index.html"),
    (":authority", "www.example.com"),
    ("custom-key", "custom-value"),
];
const RESPONSE_1: &[(&str, &str)] = &[
    (":status", "302"),
    ("cache-control", "private"),
    ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
    ("location", "https://www.example.com"),
];
const RESPONSE_2: &[(&str, &str)] = &[
    (":status", "307"),
    ("cache-control", "private"),
    ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
    ("location", "https://www.example.com"),
];
const RESPONSE_3: &[(&str, &str)] = &[
    (":status", "200"),
    ("cache-control", "private"),
    ("date", "Mon, 21 Oct 2013 20:13:22 GMT"),
    ("location", "https://www.example.com"),
    ("content-encoding", "gzip"),
    (
        "set-cookie",
        "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
    ),
];

/// C.3 (plain) and C.4 (Huffman): three requests on one table of 4096.
const C3: [&str; 3] = [
    "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
    "8286 84be 5808 6e6f 2d63 6163 6865",
    "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
];
const C4: [&str; 3] = [
    "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
    "8286 84be 5886 a8eb 1064 9cbf",
    "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
];
const REQUEST_TABLE_SIZES: [usize; 3] = [57, 110, 164];

/// C.5 (plain) and C.6 (Huffman): three responses on one table of 256.
const C5: [&str; 3] = [
    "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 \
     2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 \
     6c65 2e63 6f6d",
    "4803 3330 37c1 c0bf",
    "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d \
     54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 \
     5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e \
     3d31",
];
const C6: [&str; 3] = [
    "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 \
     2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
    "4883 640e ffc1 c0bf",
    "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab \
     77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f \
     9587 3160 65c0 03ed 4ee5 b106 3d50 07",
];
const RESPONSE_TABLE_SIZES: [usize; 3] = [222, 222, 215];

const REQUESTS: [&[(&str, &str)]; 3] = [REQUEST_1, REQUEST_2, REQUEST_3];
const RESPONSES: [&[(&str, &str)]; 3] = [RESPONSE_1, RESPONSE_2, RESPONSE_3];

#[test]
fn c2_single_representations() {
    let cases: [(&str, (&str, &str), bool, usize); 4] = [
        // C.2.1: literal with indexing.
        (
            "400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572",
            ("custom-key", "custom-header"),
            false,
            55,
        ),
        // C.2.2: literal without indexing.
        (
            "040c 2f73 616d 706c 652f 7061 7468",
            (":path", "/sample/path"),
            false,
            0,
        ),
        // C.2.3: literal never indexed.
        (
            "1008 7061 7373 776f 7264 0673 6563 7265 74",
            ("password", "secret"),
            true,
            0,
        ),
        // C.2.4: indexed.
        ("82", (":method", "GET"), false, 0),
    ];
    for (block, (name, value), sensitive, size) in cases {
        let mut d = Decoder::new(4096);
        let fields = decode(&mut d, &hex(block));
        let want = (
            name.as_bytes().to_vec(),
            value.as_bytes().to_vec(),
            sensitive,
        );
        assert_eq!(fields, [want]);
        assert_eq!(d.table_size(), size, "{block}");
    }
}

fn decode_chain(blocks: [&str; 3], lists: [&[(&str, &str)]; 3], table: usize, sizes: [usize; 3]) {
    let mut d = Decoder::new(table);
    for ((block, list), size) in blocks.iter().zip(lists).zip(sizes) {
        assert_eq!(decode(&mut d, &hex(block)), plain(list), "{block}");
        assert_eq!(d.table_size(), size, "{block}");
    }
}

#[test]
fn c3_requests_plain() {
    decode_chain(C3, REQUESTS, 4096, REQUEST_TABLE_SIZES);
}

#[test]
fn c4_requests_huffman() {
    decode_chain(C4, REQUESTS, 4096, REQUEST_TABLE_SIZES);
}

#[test]
fn c5_responses_plain() {
    decode_chain(C5, RESPONSES, 256, RESPONSE_TABLE_SIZES);
}

#[test]
fn c6_responses_huffman() {
    decode_chain(C6, RESPONSES, 256, RESPONSE_TABLE_SIZES);
}

fn as_fields(list: &[(&'static str, &'static str)]) -> Vec<Field<'static>> {
    list.iter()
        .map(|&(n, v)| Field::new(n.as_bytes(), v.as_bytes()))
        .collect()
}

#[test]
fn encoder_gives_c4_bytes() {
    let mut e = Encoder::new();
    let mut d = Decoder::new(4096);
    for (block, list) in C4.iter().zip(REQUESTS) {
        let mut out = Vec::new();
        e.encode(as_fields(list), &mut out);
        assert_eq!(out, hex(block));
        assert_eq!(decode(&mut d, &out), plain(list));
    }
}

#[test]
fn encoder_gives_c6_bytes() {
    // C.6 assumes a 256-octet table from the start, without a size update.
    let mut e = Encoder::new();
    e.table = DynamicTable::new(256);
    let mut d = Decoder::new(256);
    // "307" is three octets plain or coded: we keep it plain where C.6.2 codes it, so that
    // block is C.5.2's.
    let blocks = [C6[0], C5[1], C6[2]];
    for ((block, list), size) in blocks.iter().zip(RESPONSES).zip(RESPONSE_TABLE_SIZES) {
        let mut out = Vec::new();
        e.encode(as_fields(list), &mut out);
        assert_eq!(out, hex(block));
        assert_eq!(decode(&mut d, &out), plain(list));
        assert_eq!(e.table_size(), size);
    }
}

#[test]
fn encoder_takes_pairs() {
    let mut e = Encoder::new();
    let mut out = Vec::new();
    let pairs: [(&[u8], &[u8]); 2] = [(b":method", b"GET"), (b"x-a", b"b")];
    e.encode(pairs, &mut out);
    assert_eq!(
        decode(&mut Decoder::new(4096), &out),
        plain(&[(":method", "GET"), ("x-a", "b")])
    );
}

#[test]
fn sensitive_fields_stay_out_of_tables() {
    let mut e = Encoder::new();
    let mut d = Decoder::new(4096);
    let fields = [
        Field::sensitive(b"cookie", b"session=1"),
        Field::sensitive(b"x-token", b"abc"),
        Field::new(b"authorization", b"Bearer x"),
        Field::sensitive(b":method", b"GET"),
    ];
    for _ in 0..2 {
        let mut out = Vec::new();
        e.encode(fields, &mut out);
        let got = decode(&mut d, &out);
        assert!(got.iter().all(|f| f.2), "{got:?}");
        let pairs: Vec<_> = got.iter().map(|f| (f.0.clone(), f.1.clone())).collect();
        let want: Vec<_> = fields
            .iter()
            .map(|f| (f.name.to_vec(), f.value.to_vec()))
            .collect();
        assert_eq!(pairs, want);
        assert_eq!(e.table.len(), 0);
        assert_eq!(d.table_size(), 0);
    }
}

#[test]
fn indexing_policy() {
    let long = [b'v'; MAX_INDEXED_VALUE + 1];
    let mut e = Encoder::new();
    let mut d = Decoder::new(4096);
    let fields = [
        Field::new(b":path", b"/a/b/c"),
        Field::new(b"content-length", b"1234"),
        Field::new(b"x-long", &long),
        Field::new(b"user-agent", b"wireloop"),
        Field::new(b"x-custom", b"1"),
    ];
    let mut first = Vec::new();
    e.encode(fields, &mut first);
    assert_eq!(e.table.len(), 2);
    let mut second = Vec::new();
    e.encode(fields, &mut second);
    // The indexed ones are one octet each the second time.
    // user-agent: 1 + 1 + 6 (Huffman) octets, then 1; x-custom: 1 + 1 + 6 + 1 + 1, then 1.
    assert_eq!(first.len() - second.len(), 7 + 9);
    assert_eq!(second[second.len() - 2..], [0xbf, 0xbe]);
    let want: Fields = fields
        .iter()
        .map(|f| (f.name.to_vec(), f.value.to_vec(), false))
        .collect();
    assert_eq!(decode(&mut d, &first), want);
    assert_eq!(decode(&mut d, &second), want);
}

#[test]
fn encoder_size_updates() {
    let mut e = Encoder::new();
    let mut d = Decoder::new(4096);
    let fields = as_fields(REQUEST_1);
    let mut out = Vec::new();
    e.encode(fields.iter().copied(), &mut out);
    decode(&mut d, &out);

    // The peer lowers to 0 then raises to 200: both updates lead the next block.
    e.set_max_table_size(0);
    e.set_max_table_size(200);
    d.set_max_table_size(0);
    d.set_max_table_size(200);
    assert_eq!(e.max_table_size(), 200);
    out.clear();
    e.encode(fields.iter().copied(), &mut out);
    assert_eq!(out[..4], [0x20, 0x3f, 0xa9, 0x01]);
    assert_eq!(decode(&mut d, &out), plain(REQUEST_1));
    assert_eq!(d.table_size(), 57);

    // Nothing owed afterwards; a raise past 4096 changes nothing here.
    e.set_max_table_size(4096);
    e.set_max_table_size(65536);
    d.set_max_table_size(65536);
    assert_eq!(e.max_table_size(), 4096);
    out.clear();
    e.encode(fields.iter().copied(), &mut out);
    assert_eq!(out[..3], [0x3f, 0xe1, 0x1f]);
    assert_eq!(decode(&mut d, &out), plain(REQUEST_1));
    out.clear();
    e.encode(fields.iter().copied(), &mut out);
    assert_eq!(out, [0x82, 0x86, 0x84, 0xbe]);
}

#[test]
fn round_trip_many_blocks() {
    // Varied fields through one encoder and one decoder, tables evicting as they go.
    let mut e = Encoder::new();
    e.set_max_table_size(300);
    let mut d = Decoder::new(4096);
    d.set_max_table_size(300);
    for i in 0..200u32 {
        let a = format!("value-{}", i % 7);
        let b = format!("{}", i * 7919);
        let c = "x".repeat((i % 90) as usize);
        let name = format!("x-h{}", i % 5);
        let fields = [
            Field::new(b":status", if i % 2 == 0 { b"200" } else { b"404" }),
            Field::new(name.as_bytes(), a.as_bytes()),
            Field::new(b"x-n", b.as_bytes()),
            Field::new(b"x-c", c.as_bytes()),
            Field {
                name: b"\x00\xff",
                value: b"\x80\x01",
                sensitive: i % 3 == 0,
            },
        ];
        let mut out = Vec::new();
        e.encode(fields, &mut out);
        let want: Fields = fields
            .iter()
            .map(|f| (f.name.to_vec(), f.value.to_vec(), f.sensitive))
            .collect();
        assert_eq!(decode(&mut d, &out), want, "block {i}");
        assert_eq!(d.table_size(), e.table_size(), "block {i}");
        assert!(e.table_size() <= 300);
    }
}
