//! Body of the `hpack_decode` fuzz target, public so that `tests/fuzz_corpus.rs` replays
//! its corpus with a plain `cargo test`.

use super::{DecodeError, Decoder, Encoder, Field};

/// Table sizes the first octet picks from.
const SIZES: [usize; 4] = [0, 64, 256, 4096];
/// Header list limits the first octet picks from.
const LIMITS: [usize; 4] = [usize::MAX, 128, 1024, 16 * 1024];

type Fields = Vec<(Vec<u8>, Vec<u8>, bool)>;

/// Arbitrary bytes as the header blocks of one connection, decoded by one [`Decoder`]:
/// never a panic, and every block decoded whole comes back the same through an
/// [`Encoder`] and a second decoder.
///
/// The first octet picks our table size setting (bits 0-1), the header list limit (bits
/// 2-3), a second table size (bits 4-5) that the setting is lowered or raised to after the
/// first block (bit 6) and that the encoding side alternates with 4096 from block to block
/// (bit 7). Then each block is a length octet and that many octets (255: the rest).
pub fn decode(data: &[u8]) {
    let Some((&first, mut rest)) = data.split_first() else {
        return;
    };
    let limit = LIMITS[usize::from(first >> 2) & 3];
    let other_size = SIZES[usize::from(first >> 4) & 3];
    let mut decoder = Decoder::new(SIZES[usize::from(first) & 3]);
    let mut encoder = Encoder::new();
    let mut again = Decoder::new(4096);
    let mut out = Vec::new();
    let mut block_no = 0usize;
    while let Some((&len, tail)) = rest.split_first() {
        let len = if len == 255 {
            tail.len()
        } else {
            usize::from(len).min(tail.len())
        };
        let (block, tail) = tail.split_at(len);
        rest = tail;

        let mut fields = Fields::new();
        let result = decoder.decode(block, limit, |n, v, s| {
            fields.push((n.to_vec(), v.to_vec(), s))
        });
        let size: usize = fields.iter().map(|(n, v, _)| n.len() + v.len() + 32).sum();
        assert!(size <= limit, "{size} octets called back, limit {limit}");
        match result {
            Ok(()) => {}
            Err(DecodeError::HeaderListTooLarge) => continue,
            Err(e) => {
                assert!(e.is_compression_error());
                return;
            }
        }
        assert!(decoder.table_size() <= 4096);

        if first & 0x40 != 0 && block_no == 0 {
            decoder.set_max_table_size(other_size);
        }
        if first & 0x80 != 0 {
            let size = if block_no.is_multiple_of(2) {
                other_size
            } else {
                4096
            };
            encoder.set_max_table_size(size);
            again.set_max_table_size(size);
        }
        block_no += 1;

        out.clear();
        encoder.encode(
            fields.iter().map(|(n, v, s)| Field {
                name: n,
                value: v,
                sensitive: *s,
            }),
            &mut out,
        );
        let mut back = Fields::new();
        let result = again.decode(&out, usize::MAX, |n, v, s| {
            back.push((n.to_vec(), v.to_vec(), s))
        });
        assert_eq!(result, Ok(()), "re-encoded block refused: {out:x?}");
        assert_eq!(back.len(), fields.len());
        for (a, b) in fields.iter().zip(&back) {
            assert_eq!((&a.0, &a.1), (&b.0, &b.1));
            // The encoder may send more fields never indexed, never fewer.
            assert!(!a.2 || b.2, "a sensitive field lost its flag");
        }
        assert_eq!(again.table_size(), encoder.table_size());
    }
}
