//! The decoder's errors and limits (RFC 7541 Appendix C is in `hpack/tests.rs`).

use super::*;
use crate::h2::hpack::huffman::HuffmanError;

type Fields = Vec<(Vec<u8>, Vec<u8>, bool)>;

fn decode(d: &mut Decoder, block: &[u8], limit: usize) -> (Fields, Result<(), DecodeError>) {
    let mut fields = Vec::new();
    let r = d.decode(block, limit, |n, v, s| {
        fields.push((n.to_vec(), v.to_vec(), s))
    });
    (fields, r)
}

fn err(block: &[u8]) -> DecodeError {
    decode(&mut Decoder::new(4096), block, usize::MAX)
        .1
        .unwrap_err()
}

#[test]
fn indexes() {
    assert_eq!(err(&[0x80]), DecodeError::InvalidIndex);
    // 62 with an empty dynamic table, indexed and as a literal's name.
    assert_eq!(err(&[0xbe]), DecodeError::InvalidIndex);
    assert_eq!(err(&[0x7e, 0x01, b'x']), DecodeError::InvalidIndex);
    assert_eq!(err(&[0x0f, 0x2f, 0x01, b'x']), DecodeError::InvalidIndex);
    // 61 is the last static entry.
    let (fields, r) = decode(&mut Decoder::new(4096), &[0xbd], usize::MAX);
    assert_eq!(r, Ok(()));
    assert_eq!(fields, [(b"www-authenticate".to_vec(), Vec::new(), false)]);
}

#[test]
fn integers_and_truncation() {
    assert_eq!(
        err(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x0f]),
        DecodeError::IntegerOverflow
    );
    assert_eq!(
        err(&[0xff, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01]),
        DecodeError::IntegerOverflow
    );
    // A string length past u32::MAX.
    assert_eq!(
        err(&[0x40, 0x7f, 0xff, 0xff, 0xff, 0xff, 0x7f]),
        DecodeError::IntegerOverflow
    );
    for block in [
        &[0xff][..],
        &[0xff, 0x80],
        &[0x40],
        &[0x40, 0x03, b'a', b'b'],
        &[0x40, 0x01, b'a'],
        &[0x40, 0x01, b'a', 0x02, b'b'],
        &[0x04, 0x7f],
        &[0x3f],
    ] {
        assert_eq!(err(block), DecodeError::Truncated, "{block:x?}");
    }
}

#[test]
fn huffman_errors() {
    // A new name, Huffman-coded, one octet: '0' and three zero bits.
    assert_eq!(
        err(&[0x00, 0x81, 0x00, 0x00]),
        DecodeError::Huffman(HuffmanError::PaddingNotOnes)
    );
    assert_eq!(
        err(&[0x00, 0x82, 0x07, 0xff, 0x00]),
        DecodeError::Huffman(HuffmanError::PaddingTooLong)
    );
    assert_eq!(
        err(&[0x00, 0x01, b'a', 0x84, 0xff, 0xff, 0xff, 0xff]),
        DecodeError::Huffman(HuffmanError::Eos)
    );
}

#[test]
fn size_updates() {
    // 4097 is over the setting.
    assert_eq!(
        err(&[0x3f, 0xe2, 0x1f]),
        DecodeError::TableSizeUpdateTooLarge
    );
    assert_eq!(err(&[0x82, 0x20]), DecodeError::TableSizeUpdateNotAtStart);
    // At the start, up to the setting, any number: fine.
    let mut d = Decoder::new(4096);
    let (_, r) = decode(&mut d, &[0x20, 0x3f, 0xe1, 0x1f, 0x82], usize::MAX);
    assert_eq!(r, Ok(()));

    // Lowering the setting below the table's size requires an update.
    let mut d = Decoder::new(4096);
    d.set_max_table_size(100);
    assert_eq!(d.max_table_size(), 100);
    let (_, r) = decode(&mut d, &[0x82], usize::MAX);
    assert_eq!(r, Err(DecodeError::TableSizeUpdateMissing));
    let mut d = Decoder::new(4096);
    d.set_max_table_size(100);
    assert_eq!(
        decode(&mut d, &[0x3f, 0x46, 0x82], usize::MAX).1,
        Err(DecodeError::TableSizeUpdateTooLarge)
    );
    let mut d = Decoder::new(4096);
    d.set_max_table_size(100);
    assert_eq!(decode(&mut d, &[0x3f, 0x45, 0x82], usize::MAX).1, Ok(()));
    // Once given, the next block needs none.
    assert_eq!(decode(&mut d, &[0x82], usize::MAX).1, Ok(()));

    // Lowered to 0 then raised back: the update to 0 (or less than the lowest) must come.
    let mut d = Decoder::new(4096);
    d.set_max_table_size(0);
    d.set_max_table_size(4096);
    let (_, r) = decode(&mut d, &[0x3f, 0xe1, 0x1f, 0x82], usize::MAX);
    assert_eq!(r, Err(DecodeError::TableSizeUpdateMissing));
    let mut d = Decoder::new(4096);
    d.set_max_table_size(0);
    d.set_max_table_size(4096);
    let (_, r) = decode(&mut d, &[0x20, 0x3f, 0xe1, 0x1f, 0x82], usize::MAX);
    assert_eq!(r, Ok(()));

    // Raising needs no update.
    let mut d = Decoder::new(4096);
    d.set_max_table_size(8192);
    assert_eq!(decode(&mut d, &[0x82], usize::MAX).1, Ok(()));
}

#[test]
fn size_update_evicts() {
    let mut d = Decoder::new(4096);
    // custom-key: custom-header (55 octets), then an update to 54 evicts it.
    let c21 = b"\x40\x0acustom-key\x0dcustom-header";
    assert_eq!(decode(&mut d, c21, usize::MAX).1, Ok(()));
    assert_eq!(d.table_size(), 55);
    assert_eq!(
        decode(&mut d, &[0x3f, 0x17, 0xbe], usize::MAX).1,
        Err(DecodeError::InvalidIndex)
    );
    assert_eq!(d.table_size(), 0);
}

#[test]
fn header_list_limit_keeps_the_table() {
    // RFC 7541 C.3.1 then C.3.2, the first under a 60-octet list limit: `:method: GET`
    // (42) fits, `:scheme: http` (43 more) does not.
    let c31 = b"\x82\x86\x84\x41\x0fwww.example.com";
    let mut d = Decoder::new(4096);
    let (fields, r) = decode(&mut d, c31, 60);
    assert_eq!(r, Err(DecodeError::HeaderListTooLarge));
    assert!(!r.unwrap_err().is_compression_error());
    assert_eq!(fields, [(b":method".to_vec(), b"GET".to_vec(), false)]);
    // The :authority entry was still added: C.3.2 refers to it.
    assert_eq!(d.table_size(), 57);
    let c32 = b"\x82\x86\x84\xbe\x58\x08no-cache";
    let (fields, r) = decode(&mut d, c32, 233);
    assert_eq!(r, Ok(()));
    assert_eq!(
        fields[3],
        (b":authority".to_vec(), b"www.example.com".to_vec(), false)
    );
    assert_eq!(d.table_size(), 110);
    // Exactly at the limit is fine: 42 + 43 + 38 + 57 = 180, and 53 more for C.3.2.
    let mut d = Decoder::new(4096);
    assert_eq!(decode(&mut d, c31, 180).1, Ok(()));
    assert_eq!(
        decode(&mut d, c32, 232).1,
        Err(DecodeError::HeaderListTooLarge)
    );
    // A compression error later in the block wins.
    let mut d = Decoder::new(4096);
    let (_, r) = decode(&mut d, &[0x82, 0x82, 0x80], 50);
    assert_eq!(r, Err(DecodeError::InvalidIndex));
}

#[test]
fn errors_display_and_classify() {
    let all = [
        DecodeError::Truncated,
        DecodeError::IntegerOverflow,
        DecodeError::InvalidIndex,
        DecodeError::Huffman(HuffmanError::Eos),
        DecodeError::TableSizeUpdateTooLarge,
        DecodeError::TableSizeUpdateNotAtStart,
        DecodeError::TableSizeUpdateMissing,
        DecodeError::HeaderListTooLarge,
    ];
    for e in all {
        assert!(!e.to_string().is_empty());
        assert_eq!(
            e.is_compression_error(),
            e != DecodeError::HeaderListTooLarge
        );
    }
    let e: &dyn std::error::Error = &DecodeError::Huffman(HuffmanError::Eos);
    assert!(e.source().is_some());
}

#[test]
fn arbitrary_blocks_never_panic() {
    for a in 0..=255u8 {
        for b in 0..=255u8 {
            let _ = decode(&mut Decoder::new(256), &[a, b], 100);
        }
    }
    // Pseudo-random blocks (xorshift), some on a shared decoder, some on tiny tables.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut shared = Decoder::new(4096);
    for i in 0..20_000 {
        let len = (i % 40) + 1;
        let block: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let _ = decode(&mut Decoder::new(i % 100), &block, i);
        let _ = decode(&mut shared, &block, usize::MAX);
        assert!(shared.table_size() <= 4096);
    }
}
