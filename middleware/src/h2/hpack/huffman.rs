//! The Huffman code of RFC 7541 Appendix B, for string literals (§5.2).
//!
//! [`encode`] appends the code of each octet and pads the last octet with the most
//! significant bits of EOS (ones); [`encoded_len`] says how long that will be, so an
//! encoder can pick the shorter of the plain and the coded string. [`decode`] runs a
//! table-driven state machine four bits at a time (the tables are built at compile time
//! from the code table), appending to the caller's buffer and allocating nothing else.
//! It refuses what §5.2 calls decoding errors: the EOS symbol inside the string, padding
//! longer than 7 bits, and padding that is not the most significant bits of EOS.

use std::fmt;

/// `(code, length in bits)` of every symbol, octets 0 to 255 then EOS (256), as RFC 7541
/// Appendix B lists them (codes aligned to the least significant bit).
const CODES: [(u32, u8); 257] = [
    (0x1ff8, 13),
    (0x7fffd8, 23),
    (0xfffffe2, 28),
    (0xfffffe3, 28),
    (0xfffffe4, 28),
    (0xfffffe5, 28),
    (0xfffffe6, 28),
    (0xfffffe7, 28),
    (0xfffffe8, 28),
    (0xffffea, 24),
    (0x3ffffffc, 30),
    (0xfffffe9, 28),
    (0xfffffea, 28),
    (0x3ffffffd, 30),
    (0xfffffeb, 28),
    (0xfffffec, 28),
    (0xfffffed, 28),
    (0xfffffee, 28),
    (0xfffffef, 28),
    (0xffffff0, 28),
    (0xffffff1, 28),
    (0xffffff2, 28),
    (0x3ffffffe, 30),
    (0xffffff3, 28),
    (0xffffff4, 28),
    (0xffffff5, 28),
    (0xffffff6, 28),
    (0xffffff7, 28),
    (0xffffff8, 28),
    (0xffffff9, 28),
    (0xffffffa, 28),
    (0xffffffb, 28),
    (0x14, 6),
    (0x3f8, 10),
    (0x3f9, 10),
    (0xffa, 12),
    (0x1ff9, 13),
    (0x15, 6),
    (0xf8, 8),
    (0x7fa, 11),
    (0x3fa, 10),
    (0x3fb, 10),
    (0xf9, 8),
    (0x7fb, 11),
    (0xfa, 8),
    (0x16, 6),
    (0x17, 6),
    (0x18, 6),
    (0x0, 5),
    (0x1, 5),
    (0x2, 5),
    (0x19, 6),
    (0x1a, 6),
    (0x1b, 6),
    (0x1c, 6),
    (0x1d, 6),
    (0x1e, 6),
    (0x1f, 6),
    (0x5c, 7),
    (0xfb, 8),
    (0x7ffc, 15),
    (0x20, 6),
    (0xffb, 12),
    (0x3fc, 10),
    (0x1ffa, 13),
    (0x21, 6),
    (0x5d, 7),
    (0x5e, 7),
    (0x5f, 7),
    (0x60, 7),
    (0x61, 7),
    (0x62, 7),
    (0x63, 7),
    (0x64, 7),
    (0x65, 7),
    (0x66, 7),
    (0x67, 7),
    (0x68, 7),
    (0x69, 7),
    (0x6a, 7),
    (0x6b, 7),
    (0x6c, 7),
    (0x6d, 7),
    (0x6e, 7),
    (0x6f, 7),
    (0x70, 7),
    (0x71, 7),
    (0x72, 7),
    (0xfc, 8),
    (0x73, 7),
    (0xfd, 8),
    (0x1ffb, 13),
    (0x7fff0, 19),
    (0x1ffc, 13),
    (0x3ffc, 14),
    (0x22, 6),
    (0x7ffd, 15),
    (0x3, 5),
    (0x23, 6),
    (0x4, 5),
    (0x24, 6),
    (0x5, 5),
    (0x25, 6),
    (0x26, 6),
    (0x27, 6),
    (0x6, 5),
    (0x74, 7),
    (0x75, 7),
    (0x28, 6),
    (0x29, 6),
    (0x2a, 6),
    (0x7, 5),
    (0x2b, 6),
    (0x76, 7),
    (0x2c, 6),
    (0x8, 5),
    (0x9, 5),
    (0x2d, 6),
    (0x77, 7),
    (0x78, 7),
    (0x79, 7),
    (0x7a, 7),
    (0x7b, 7),
    (0x7ffe, 15),
    (0x7fc, 11),
    (0x3ffd, 14),
    (0x1ffd, 13),
    (0xffffffc, 28),
    (0xfffe6, 20),
    (0x3fffd2, 22),
    (0xfffe7, 20),
    (0xfffe8, 20),
    (0x3fffd3, 22),
    (0x3fffd4, 22),
    (0x3fffd5, 22),
    (0x7fffd9, 23),
    (0x3fffd6, 22),
    (0x7fffda, 23),
    (0x7fffdb, 23),
    (0x7fffdc, 23),
    (0x7fffdd, 23),
    (0x7fffde, 23),
    (0xffffeb, 24),
    (0x7fffdf, 23),
    (0xffffec, 24),
    (0xffffed, 24),
    (0x3fffd7, 22),
    (0x7fffe0, 23),
    (0xffffee, 24),
    (0x7fffe1, 23),
    (0x7fffe2, 23),
    (0x7fffe3, 23),
    (0x7fffe4, 23),
    (0x1fffdc, 21),
    (0x3fffd8, 22),
    (0x7fffe5, 23),
    (0x3fffd9, 22),
    (0x7fffe6, 23),
    (0x7fffe7, 23),
    (0xffffef, 24),
    (0x3fffda, 22),
    (0x1fffdd, 21),
    (0xfffe9, 20),
    (0x3fffdb, 22),
    (0x3fffdc, 22),
    (0x7fffe8, 23),
    (0x7fffe9, 23),
    (0x1fffde, 21),
    (0x7fffea, 23),
    (0x3fffdd, 22),
    (0x3fffde, 22),
    (0xfffff0, 24),
    (0x1fffdf, 21),
    (0x3fffdf, 22),
    (0x7fffeb, 23),
    (0x7fffec, 23),
    (0x1fffe0, 21),
    (0x1fffe1, 21),
    (0x3fffe0, 22),
    (0x1fffe2, 21),
    (0x7fffed, 23),
    (0x3fffe1, 22),
    (0x7fffee, 23),
    (0x7fffef, 23),
    (0xfffea, 20),
    (0x3fffe2, 22),
    (0x3fffe3, 22),
    (0x3fffe4, 22),
    (0x7ffff0, 23),
    (0x3fffe5, 22),
    (0x3fffe6, 22),
    (0x7ffff1, 23),
    (0x3ffffe0, 26),
    (0x3ffffe1, 26),
    (0xfffeb, 20),
    (0x7fff1, 19),
    (0x3fffe7, 22),
    (0x7ffff2, 23),
    (0x3fffe8, 22),
    (0x1ffffec, 25),
    (0x3ffffe2, 26),
    (0x3ffffe3, 26),
    (0x3ffffe4, 26),
    (0x7ffffde, 27),
    (0x7ffffdf, 27),
    (0x3ffffe5, 26),
    (0xfffff1, 24),
    (0x1ffffed, 25),
    (0x7fff2, 19),
    (0x1fffe3, 21),
    (0x3ffffe6, 26),
    (0x7ffffe0, 27),
    (0x7ffffe1, 27),
    (0x3ffffe7, 26),
    (0x7ffffe2, 27),
    (0xfffff2, 24),
    (0x1fffe4, 21),
    (0x1fffe5, 21),
    (0x3ffffe8, 26),
    (0x3ffffe9, 26),
    (0xffffffd, 28),
    (0x7ffffe3, 27),
    (0x7ffffe4, 27),
    (0x7ffffe5, 27),
    (0xfffec, 20),
    (0xfffff3, 24),
    (0xfffed, 20),
    (0x1fffe6, 21),
    (0x3fffe9, 22),
    (0x1fffe7, 21),
    (0x1fffe8, 21),
    (0x7ffff3, 23),
    (0x3fffea, 22),
    (0x3fffeb, 22),
    (0x1ffffee, 25),
    (0x1ffffef, 25),
    (0xfffff4, 24),
    (0xfffff5, 24),
    (0x3ffffea, 26),
    (0x7ffff4, 23),
    (0x3ffffeb, 26),
    (0x7ffffe6, 27),
    (0x3ffffec, 26),
    (0x3ffffed, 26),
    (0x7ffffe7, 27),
    (0x7ffffe8, 27),
    (0x7ffffe9, 27),
    (0x7ffffea, 27),
    (0x7ffffeb, 27),
    (0xffffffe, 28),
    (0x7ffffec, 27),
    (0x7ffffed, 27),
    (0x7ffffee, 27),
    (0x7ffffef, 27),
    (0x7fffff0, 27),
    (0x3ffffee, 26),
    (0x3fffffff, 30),
];

/// The index of EOS in [`CODES`].
const EOS: usize = 256;

/// Why a Huffman-coded string was refused (RFC 7541 §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HuffmanError {
    /// The string contains the EOS symbol.
    Eos,
    /// The padding after the last symbol is longer than 7 bits.
    PaddingTooLong,
    /// The padding is not a prefix of EOS (not all ones).
    PaddingNotOnes,
}

impl fmt::Display for HuffmanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HuffmanError::Eos => "Huffman-coded string contains EOS",
            HuffmanError::PaddingTooLong => "Huffman padding longer than 7 bits",
            HuffmanError::PaddingNotOnes => "Huffman padding is not all ones",
        })
    }
}

impl std::error::Error for HuffmanError {}

/// The length in octets of `src` Huffman-coded (padding included).
pub fn encoded_len(src: &[u8]) -> usize {
    let bits: usize = src
        .iter()
        .map(|&b| usize::from(CODES[usize::from(b)].1))
        .sum();
    bits.div_ceil(8)
}

/// Appends `src` Huffman-coded to `out`, padded to a whole octet with ones.
pub fn encode(src: &[u8], out: &mut Vec<u8>) {
    out.reserve(encoded_len(src));
    // Pending bits are the low `bits` bits of `acc`; `bits` stays below 8 between
    // symbols, so at most 7 + 30 bits are ever pending.
    let mut acc: u64 = 0;
    let mut bits: u32 = 0;
    for &b in src {
        let (code, len) = CODES[usize::from(b)];
        acc = (acc << len) | u64::from(code);
        bits += u32::from(len);
        while bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(((acc << (8 - bits)) as u8) | (0xff >> bits));
    }
}

/// Decodes the Huffman-coded `src`, appending the octets to `out`.
///
/// On an error `out` may hold part of the string. Nothing is allocated beyond `out`'s
/// growth (at most 8 octets out for every 5 in).
pub fn decode(src: &[u8], out: &mut Vec<u8>) -> Result<(), HuffmanError> {
    out.reserve(src.len() + src.len() / 2 + 1);
    let mut state = 0usize;
    for &b in src {
        for nibble in [b >> 4, b & 0x0f] {
            let step = DECODE.steps[state][usize::from(nibble)];
            if step.flags & FAIL != 0 {
                return Err(HuffmanError::Eos);
            }
            if step.flags & EMIT != 0 {
                out.push(step.symbol);
            }
            state = usize::from(step.next);
        }
    }
    // `state` is the node reached by the bits after the last symbol: the padding.
    let node = DECODE.nodes[state];
    match (node.all_ones, node.depth) {
        (true, 0..=7) => Ok(()),
        (true, _) => Err(HuffmanError::PaddingTooLong),
        (false, _) => Err(HuffmanError::PaddingNotOnes),
    }
}

/// One step of the decoder: the state after four more bits, and the symbol they completed.
#[derive(Clone, Copy)]
struct Step {
    next: u8,
    symbol: u8,
    flags: u8,
}

/// [`Step::symbol`] is a decoded octet.
const EMIT: u8 = 1;
/// The four bits completed EOS.
const FAIL: u8 = 2;

/// An interior node of the code tree; the decoder's states are these nodes.
#[derive(Clone, Copy)]
struct Node {
    /// The children (bit 0, bit 1): an interior node, or `LEAF | symbol`.
    child: [u16; 2],
    /// Bits from the root.
    depth: u8,
    /// Every bit from the root is a one (a prefix of EOS).
    all_ones: bool,
}

/// Marks a child as a leaf (a symbol), not an interior node.
const LEAF: u16 = 0x8000;

/// The code tree (257 leaves, so 256 interior nodes, the root first) and the transitions
/// of every node on every nibble.
struct Tables {
    nodes: [Node; 256],
    steps: [[Step; 16]; 256],
}

static DECODE: Tables = build();

/// Builds the code tree from [`CODES`], then walks it four bits at a time from every node.
/// At most one symbol completes within four bits: the shortest code has five.
const fn build() -> Tables {
    let empty = Node {
        child: [0, 0],
        depth: 0,
        all_ones: true,
    };
    let mut nodes = [empty; 256];
    let mut count = 1;
    let mut sym = 0;
    while sym < CODES.len() {
        let (code, len) = CODES[sym];
        let mut node = 0;
        let mut i = len;
        while i > 0 {
            i -= 1;
            let bit = ((code >> i) & 1) as usize;
            if i == 0 {
                nodes[node].child[bit] = LEAF | sym as u16;
            } else {
                if nodes[node].child[bit] == 0 {
                    nodes[count] = Node {
                        child: [0, 0],
                        depth: nodes[node].depth + 1,
                        all_ones: nodes[node].all_ones && bit == 1,
                    };
                    nodes[node].child[bit] = count as u16;
                    count += 1;
                }
                node = nodes[node].child[bit] as usize;
            }
        }
        sym += 1;
    }
    assert!(count == 256, "the code table is not a complete prefix code");

    let none = Step {
        next: 0,
        symbol: 0,
        flags: 0,
    };
    let mut steps = [[none; 16]; 256];
    let mut state = 0;
    while state < 256 {
        let mut nibble = 0;
        while nibble < 16 {
            let mut step = none;
            let mut node = state;
            let mut i = 4;
            while i > 0 {
                i -= 1;
                let child = nodes[node].child[(nibble >> i) & 1];
                if child & LEAF != 0 {
                    let symbol = (child & !LEAF) as usize;
                    if symbol == EOS {
                        step.flags |= FAIL;
                    } else {
                        step.flags |= EMIT;
                        step.symbol = symbol as u8;
                    }
                    node = 0;
                } else {
                    node = child as usize;
                }
            }
            step.next = node as u8;
            steps[state][nibble] = step;
            nibble += 1;
        }
        state += 1;
    }
    Tables { nodes, steps }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Octets from space-separated hex, as the RFC prints them.
    pub(crate) fn hex(s: &str) -> Vec<u8> {
        let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
        digits
            .chunks(2)
            .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
            .collect()
    }

    /// Every Huffman-coded string of RFC 7541 Appendix C.4 and C.6.
    const EXAMPLES: &[(&str, &str)] = &[
        ("www.example.com", "f1e3 c2e5 f23a 6ba0 ab90 f4ff"),
        ("no-cache", "a8eb 1064 9cbf"),
        ("custom-key", "25a8 49e9 5ba9 7d7f"),
        ("custom-value", "25a8 49e9 5bb8 e8b4 bf"),
        ("302", "6402"),
        ("private", "aec3 771a 4b"),
        (
            "Mon, 21 Oct 2013 20:13:21 GMT",
            "d07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff",
        ),
        (
            "https://www.example.com",
            "9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3",
        ),
        ("307", "640e ff"),
        (
            "Mon, 21 Oct 2013 20:13:22 GMT",
            "d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff",
        ),
        ("gzip", "9bd9 ab"),
        (
            "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
            "94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 \
             3160 65c0 03ed 4ee5 b106 3d50 07",
        ),
    ];

    #[test]
    fn rfc_examples_encode_and_decode() {
        for &(plain, coded) in EXAMPLES {
            let coded = hex(coded);
            let mut out = Vec::new();
            encode(plain.as_bytes(), &mut out);
            assert_eq!(out, coded, "{plain}");
            assert_eq!(encoded_len(plain.as_bytes()), coded.len(), "{plain}");
            out.clear();
            decode(&coded, &mut out).unwrap();
            assert_eq!(out, plain.as_bytes());
        }
    }

    #[test]
    fn the_code_is_canonical_and_complete() {
        // Codes of one length are consecutive in symbol order, each length continuing
        // from the last code of the shorter ones: a transcription slip breaks this.
        let mut order: Vec<usize> = (0..CODES.len()).collect();
        order.sort_by_key(|&s| (CODES[s].1, s));
        let mut code = 0u32;
        let mut prev_len = CODES[order[0]].1;
        for (i, &s) in order.iter().enumerate() {
            let len = CODES[s].1;
            if i > 0 {
                code = (code + 1) << (len - prev_len);
            }
            prev_len = len;
            assert_eq!(CODES[s].0, code, "symbol {s}");
        }
        assert_eq!(CODES[EOS], (0x3fff_ffff, 30));
    }

    #[test]
    fn every_octet_round_trips() {
        let all: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
        for end in [0, 1, 2, 7, 100, all.len()] {
            let mut coded = Vec::new();
            encode(&all[..end], &mut coded);
            assert_eq!(coded.len(), encoded_len(&all[..end]));
            let mut back = Vec::new();
            decode(&coded, &mut back).unwrap();
            assert_eq!(back, &all[..end]);
        }
    }

    #[test]
    fn padding_and_eos_are_checked() {
        let mut out = Vec::new();
        // '0' is 00000: three zero bits of padding.
        assert_eq!(decode(&[0x00], &mut out), Err(HuffmanError::PaddingNotOnes));
        // '0' then eleven ones: padding of 11 bits.
        assert_eq!(
            decode(&[0x07, 0xff], &mut out),
            Err(HuffmanError::PaddingTooLong)
        );
        // A whole octet of ones alone is 8 bits of padding.
        assert_eq!(decode(&[0xff], &mut out), Err(HuffmanError::PaddingTooLong));
        // Thirty ones are EOS.
        assert_eq!(decode(&[0xff; 4], &mut out), Err(HuffmanError::Eos));
        // '0' then EOS then padding.
        assert_eq!(
            decode(&[0x07, 0xff, 0xff, 0xff, 0xfe], &mut out),
            Err(HuffmanError::Eos)
        );
        // Seven ones of padding are fine, and so is none.
        out.clear();
        assert_eq!(decode(&[0x07], &mut out), Ok(()));
        assert_eq!(out, b"0");
        out.clear();
        assert_eq!(decode(&[], &mut out), Ok(()));
        assert!(out.is_empty());
    }
}
