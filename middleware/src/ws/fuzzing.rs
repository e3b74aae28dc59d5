//! Entry point of the `ws_frames` fuzz target (`fuzz/fuzz_targets/ws_frames.rs`) and of
//! the corpus replay test.
//!
//! The first byte picks the settings (a small message limit and streamed delivery, so the
//! fuzzer reaches 1009 and the chunk path), the second how the rest — the frame stream a
//! client sends after its handshake — is cut into reads. The stream runs through the
//! sans-IO protocol (in one piece and read by read, which must agree exactly) and through
//! the whole server stack (`Http1` + [`WebSocket`] over [`Driver`]), whose output must be
//! the `101` followed by well-formed, unmasked server frames, nothing after a close frame.

use std::cell::RefCell;

use wireloop::testing::Driver;

use super::frame::{decode_header, Opcode};
use super::protocol::{Event, Protocol, Role, Src};
use super::{Config, Message, WebSocket, Ws, WsHandler};
use crate::codec::Status;
use crate::http1::{Http1, Request, Response};
use crate::kept::{finish, reuse, Drivers};

/// Echoes messages and pieces.
struct Echo;

impl WsHandler for Echo {
    type State = ();
    fn message(&mut self, ws: &mut Ws<'_, '_>, msg: Message<'_>, _: &mut ()) {
        ws.send(msg);
    }
    fn chunk(&mut self, ws: &mut Ws<'_, '_>, chunk: super::Chunk<'_>, _: &mut ()) {
        ws.send_fragment(chunk.kind, chunk.data, chunk.first, chunk.last);
    }
}

fn no_page(_: &Request<'_>, res: &mut Response<'_>) {
    res.status(404).body(b"");
}

const HANDSHAKE: &[u8] = b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";

/// Read sizes (1 to 64 bytes) from a xorshift generator seeded by `seed`.
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

/// Everything the protocol reported for `reads`, as text, ending with the error if any.
fn protocol_events<'a>(cfg: &Config, reads: impl Iterator<Item = &'a [u8]>) -> Vec<String> {
    let mut p = Protocol::new(Role::Server, cfg.max_message, cfg.stream);
    let mut pending: Vec<u8> = Vec::new();
    let mut out = Vec::new();
    // Streamed pieces are joined per message so that different cuts compare equal.
    let mut piece = Vec::new();
    for read in reads {
        pending.extend_from_slice(read);
        loop {
            match p.step(&mut pending) {
                Ok(None) => break,
                Ok(Some((n, ev))) => {
                    assert!(n <= pending.len(), "used more than it was given");
                    let input = pending.drain(..n).collect::<Vec<u8>>();
                    let Some(ev) = ev else { continue };
                    match ev {
                        Event::Message(kind, src) => {
                            let d = match src {
                                Src::Input { start, end } => &input[start..end],
                                Src::Buf => p.buffered(),
                            };
                            assert!(d.len() <= cfg.max_message);
                            if kind == super::MessageKind::Text && std::str::from_utf8(d).is_err() {
                                // What the session checks for whole messages.
                                out.push("error 1007".into());
                                return out;
                            }
                            out.push(format!("{kind:?} {d:?}"));
                        }
                        Event::Chunk {
                            kind, last, len, ..
                        } => {
                            piece.extend_from_slice(&input[..len]);
                            if last {
                                out.push(format!("{kind:?} {piece:?}"));
                                piece.clear();
                            }
                        }
                        Event::Ping => out.push(format!("ping {:?}", p.control())),
                        Event::Pong => out.push(format!("pong {:?}", p.control())),
                        Event::Close(c) => out.push(format!("close {c}")),
                    }
                }
                Err(e) => {
                    out.push(format!("error {}", e.close_code()));
                    return out;
                }
            }
        }
    }
    out
}

/// Checks that `out` is a 101 head followed by well-formed server frames.
fn check_output(out: &[u8]) {
    let Some(end) = out.windows(4).position(|w| w == b"\r\n\r\n") else {
        assert!(out.is_empty(), "output without a response head");
        return;
    };
    assert!(out.starts_with(b"HTTP/1.1 101 "), "not a 101");
    let mut rest = &out[end + 4..];
    let mut closed = false;
    while !rest.is_empty() {
        assert!(!closed, "bytes after the close frame");
        let (h, hl) = match decode_header(rest) {
            Ok(Status::Complete(x)) => x,
            other => panic!("malformed server frame: {other:?}"),
        };
        assert!(h.mask.is_none() && h.rsv == 0 && !h.opcode.is_reserved());
        let total = hl + h.len as usize;
        assert!(rest.len() >= total, "truncated server frame");
        if h.opcode == Opcode::CLOSE {
            closed = true;
        }
        rest = &rest[total..];
    }
}

/// The `ws_frames` target: see the module documentation.
pub fn frames(data: &[u8]) {
    let (settings, seed, stream) = match data {
        [] => (0, 0, &[][..]),
        [a] => (*a, 0, &[][..]),
        [a, b, rest @ ..] => (*a, *b, rest),
    };
    let cfg = Config {
        max_message: if settings & 1 == 0 { 16 << 20 } else { 64 },
        stream: settings & 2 != 0,
    };
    // Sans-IO: one read versus many reads.
    let whole = protocol_events(&cfg, std::iter::once(stream));
    let mut at = 0;
    let cuts = read_sizes(seed).map_while(|n| {
        (at < stream.len()).then(|| {
            let end = (at + n).min(stream.len());
            let piece = &stream[at..end];
            at = end;
            piece
        })
    });
    let pieces = protocol_events(&cfg, cuts);
    assert_eq!(whole, pieces, "one read and many reads disagree");

    // The whole stack, on a driver kept between inputs (one per setting).
    thread_local!(static KEPT: Drivers<Stack> = const { RefCell::new(Vec::new()) });
    let make = || {
        Driver::new(Http1::server(WebSocket::with_config(
            no_page as Page,
            Echo,
            cfg,
        )))
    };
    let out = reuse(&KEPT, usize::from(settings & 3), make, |d| {
        let c = d.open(0);
        let mut out = Vec::new();
        d.feed(c, HANDSHAKE);
        out.extend(d.take_output(c));
        let mut at = 0;
        // At most 64 reads through the loop (each is a turn of it); the sans-IO run above
        // takes the reads as they come.
        let least = stream.len().div_ceil(64);
        for n in read_sizes(seed) {
            if at >= stream.len() || !d.is_open(c) {
                break;
            }
            let end = (at + n.max(least)).min(stream.len());
            d.feed(c, &stream[at..end]);
            out.extend(d.take_output(c));
            at = end;
        }
        out.extend(finish(d, c));
        out
    });
    check_output(&out);
}

/// The HTTP application for requests that are not upgrades.
type Page = fn(&Request<'_>, &mut Response<'_>);

/// The whole server stack the target drives.
type Stack = Http1<WebSocket<Page, Echo>>;

#[cfg(test)]
mod tests {
    #[test]
    fn samples_hold() {
        for s in [
            &b"\x00\x05\x81\x85\x01\x02\x03\x04iflmn"[..],
            b"\x03\x01\x01\x82\x00\x00\x00\x00\x80\x80\x00\x00\x00\x00",
            b"\x01\x00\x82\xfe\x01\x00\x00\x00\x00\x00",
            b"",
            b"\x02",
        ] {
            super::frames(s);
        }
    }
}
