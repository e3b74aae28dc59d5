//! Entry points of the codec fuzz targets (`fuzz/fuzz_targets/{resp,length_prefixed,lines}.rs`)
//! and of the corpus replay test.
//!
//! Each takes arbitrary bytes: the first byte picks the codec's settings (small limits, so
//! the fuzzer reaches them), the second seeds how the rest — the stream — is cut into
//! reads. The stream is decoded twice, in one piece and read by read with the partial
//! item carried over (as a connection's unconsumed input is), and the two must agree
//! exactly: the same items, then the same error or the same bytes left over. Every item
//! must also re-encode to what was decoded.

use std::fmt::Debug;

use super::resp::{self, RespDecoder, RespError, RespLimits};
use super::{
    ByteOrder, FrameError, HeaderWidth, LengthPrefixed, LineEnding, LineError, LineScan, Lines,
    Status,
};

/// Read sizes (1 to 64 bytes), from a xorshift generator seeded by `seed`.
fn read_sizes(seed: u8) -> impl Iterator<Item = usize> {
    let mut s = (0x9E37_79B9u32 ^ (seed as u32).wrapping_mul(0x0101_0101)) | 1;
    let max = 1 + (seed as u32 % 8) * 8;
    std::iter::from_fn(move || {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        Some(1 + (s % max) as usize)
    })
}

/// The settings byte, the seed byte, and the stream.
fn split(data: &[u8]) -> (u8, u8, &[u8]) {
    match data {
        [] => (0, 0, &[]),
        [a] => (*a, 0, &[]),
        [a, b, rest @ ..] => (*a, *b, rest),
    }
}

/// Items decoded, then how the stream ended: the bytes left over, or the error.
type Outcome<T, E> = (Vec<T>, Result<usize, E>);

/// Decodes `stream` with a fresh decoder from `make`, in one piece.
fn whole<D, T, E>(
    stream: &[u8],
    make: &impl Fn() -> D,
    next: &impl Fn(&mut D, &[u8]) -> Result<Option<(T, usize)>, E>,
) -> Outcome<T, E> {
    let mut dec = make();
    let mut items = Vec::new();
    let mut pos = 0;
    loop {
        match next(&mut dec, &stream[pos..]) {
            Ok(Some((item, n))) => {
                assert!(n > 0 && n <= stream.len() - pos, "consumed {n}");
                items.push(item);
                pos += n;
            }
            Ok(None) => return (items, Ok(stream.len() - pos)),
            Err(e) => return (items, Err(e)),
        }
    }
}

/// Decodes `stream` with a fresh decoder from `make`, read by read, keeping what a read
/// left undecoded in front of the next one.
fn pieces<D, T, E>(
    stream: &[u8],
    sizes: impl Iterator<Item = usize>,
    make: &impl Fn() -> D,
    next: &impl Fn(&mut D, &[u8]) -> Result<Option<(T, usize)>, E>,
) -> Outcome<T, E> {
    let mut dec = make();
    let mut items = Vec::new();
    let mut buf = Vec::new();
    let mut rest = stream;
    let mut sizes = sizes;
    while !rest.is_empty() {
        let n = sizes.next().unwrap_or(1).min(rest.len());
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        let mut pos = 0;
        loop {
            match next(&mut dec, &buf[pos..]) {
                Ok(Some((item, n))) => {
                    assert!(n > 0 && n <= buf.len() - pos, "consumed {n}");
                    items.push(item);
                    pos += n;
                }
                Ok(None) => break,
                Err(e) => return (items, Err(e)),
            }
        }
        buf.drain(..pos);
    }
    (items, Ok(buf.len()))
}

/// Both ways must agree.
fn check<D, T: PartialEq + Debug, E: PartialEq + Debug>(
    seed: u8,
    stream: &[u8],
    make: impl Fn() -> D,
    next: impl Fn(&mut D, &[u8]) -> Result<Option<(T, usize)>, E>,
) {
    let a = whole(stream, &make, &next);
    let b = pieces(stream, read_sizes(seed), &make, &next);
    assert_eq!(a, b, "decoding in one piece and read by read differ");
}

/// Length-prefixed frames: settings byte = width (bits 0-1), little-endian (bit 2),
/// length includes header (bit 3), max frame (bits 4-7, from a table).
pub fn length_prefixed(data: &[u8]) {
    const MAX: [usize; 16] = [
        0,
        1,
        2,
        3,
        7,
        8,
        15,
        16,
        64,
        255,
        256,
        1000,
        4096,
        65_535,
        1 << 20,
        usize::MAX,
    ];
    let (cfg, seed, stream) = split(data);
    let codec = LengthPrefixed::new()
        .width(
            [
                HeaderWidth::U8,
                HeaderWidth::U16,
                HeaderWidth::U32,
                HeaderWidth::U64,
            ][(cfg & 3) as usize],
        )
        .byte_order(if cfg & 4 != 0 {
            ByteOrder::Little
        } else {
            ByteOrder::Big
        })
        .length_includes_header(cfg & 8 != 0)
        .max_frame(MAX[(cfg >> 4) as usize]);
    check(
        seed,
        stream,
        || codec,
        |c, input| -> Result<_, FrameError> {
            Ok(match c.decode(input)? {
                Status::Complete((payload, n)) => {
                    assert!(payload.len() as u64 <= c.max_payload());
                    let mut wire = Vec::new();
                    c.encode(payload, &mut wire)
                        .expect("a decoded frame encodes");
                    assert_eq!(&wire[..], &input[..n], "re-encoded frame differs");
                    Some((payload.to_vec(), n))
                }
                Status::Partial => None,
            })
        },
    );
}

/// Lines: settings byte = ending (bits 0-1: any, LF, CRLF, any), max line (bits 2-7).
/// Decoded with [`Lines::decode_resume`], so the search state is carried between reads.
pub fn lines(data: &[u8]) {
    let (cfg, seed, stream) = split(data);
    let ending = [
        LineEnding::Any,
        LineEnding::Lf,
        LineEnding::CrLf,
        LineEnding::Any,
    ][(cfg & 3) as usize];
    let codec = Lines::new().ending(ending).max_line((cfg >> 2) as usize);
    check(
        seed,
        stream,
        || (codec, LineScan::default()),
        |(c, scan), input| -> Result<_, LineError> {
            Ok(match c.decode_resume(input, scan)? {
                Status::Complete((line, n)) => {
                    let (taken, end) = input[..n].split_at(line.len());
                    assert_eq!(taken, line);
                    assert!(
                        end == b"\n" || (end == b"\r\n" && ending != LineEnding::Lf),
                        "terminator {end:?}"
                    );
                    assert!(line.len() <= (cfg >> 2) as usize);
                    Some((line.to_vec(), n))
                }
                Status::Partial => None,
            })
        },
    );
}

/// RESP commands: settings byte = max bulk (bits 0-2), max args (bits 3-4), max inline
/// (bits 5-7), each from a table; the defaults are among the choices.
pub fn resp(data: &[u8]) {
    const BULK: [usize; 8] = [0, 1, 3, 8, 64, 1000, 1 << 20, 64 << 20];
    const ARGS: [usize; 4] = [1, 3, 16, 1024 * 1024];
    const INLINE: [usize; 8] = [0, 1, 4, 8, 16, 100, 1024, 64 << 10];
    let (cfg, seed, stream) = split(data);
    let limits = RespLimits {
        max_bulk: BULK[(cfg & 7) as usize],
        max_args: ARGS[((cfg >> 3) & 3) as usize],
        max_inline: INLINE[(cfg >> 5) as usize],
    };
    check(
        seed,
        stream,
        || RespDecoder::with_limits(limits),
        |dec, input| -> Result<_, RespError> {
            Ok(match dec.decode(input)? {
                Status::Complete((cmd, n)) => {
                    let args: Vec<Vec<u8>> = cmd.iter().map(<[u8]>::to_vec).collect();
                    assert!(args.len() <= limits.max_args);
                    assert!(args
                        .iter()
                        .all(|a| a.len() <= limits.max_bulk || input[0] != b'*'));
                    // Re-encoded as an array, the command decodes to the same arguments;
                    // a non-empty array command re-encodes to exactly its bytes.
                    let mut wire = Vec::new();
                    resp::command(&mut wire, args.iter().map(Vec::as_slice));
                    if input[0] == b'*' && !args.is_empty() {
                        assert_eq!(&wire[..], &input[..n], "re-encoded command differs");
                    }
                    let mut fresh = RespDecoder::new();
                    match fresh.decode(&wire) {
                        Ok(Status::Complete((again, m))) => {
                            assert_eq!(m, wire.len());
                            assert!(again.iter().eq(args.iter().map(Vec::as_slice)));
                        }
                        other => panic!("re-encoded command does not decode: {other:?}"),
                    }
                    Some((args, n))
                }
                Status::Partial => None,
            })
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_accept_anything_small() {
        for data in [
            &b""[..],
            b"\x00",
            b"\x00\x07*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\n",
            b"\xff\x01\0\0\0\x03abc\0\0",
            b"\x40\x05line\r\nnext\nlong long long long line\n",
        ] {
            length_prefixed(data);
            lines(data);
            resp(data);
        }
    }

    #[test]
    fn read_sizes_vary() {
        let s: Vec<usize> = read_sizes(7).take(50).collect();
        assert!(s.iter().all(|&n| (1..=64).contains(&n)));
        assert!(s.iter().any(|&n| n != s[0]));
    }
}
