//! Body of the `h2_client` fuzz target (`fuzz/fuzz_targets/h2_client.rs`), reached as
//! [`fuzzing::client`](super::fuzzing::client).

use std::time::{Duration, Instant};

use super::super::frame::PREFACE;
use super::super::hpack::Field;
use super::fuzzing::{last_goaway, picks};
use super::{Connection, Event};

/// Arbitrary bytes as what a server sends a client [`Connection`] that has requests
/// open (some with bodies under way), fed in chunks (the [`Config`](super::Config) as picked below). Panics if the connection panics,
/// if its output, open streams or buffers pass their bounds, or if a connection error
/// leaves no GOAWAY.
///
/// The first byte picks as for the server target: bit 0 small limits (4 streams,
/// 100-byte stream windows, 1 KiB header lists, 16 KiB output), bits 1-3 the chunk size
/// (1 to 64 bytes, or everything); bit 4 whether response bodies are released.
pub fn client(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let (cfg, chunk) = picks(pick);
    let release = pick & 0x10 != 0;
    let mut now = Instant::now();
    let mut conn = Connection::client(cfg, now);
    let cfg = conn.config().clone();
    // The preface string is not a frame: sent before anything else.
    conn.consume_output(PREFACE.len());
    let mut opened = 0u32;
    let open = |conn: &mut Connection, opened: &mut u32| {
        if *opened >= 64 || !conn.can_open() {
            return;
        }
        let path = if opened.is_multiple_of(2) {
            "/get"
        } else {
            "/post"
        };
        let method: &[u8] = if opened.is_multiple_of(3) {
            b"HEAD"
        } else {
            b"POST"
        };
        let fields = [
            Field::new(b":method", method),
            Field::new(b":scheme", b"https"),
            Field::new(b":authority", b"fuzz"),
            Field::new(b":path", path.as_bytes()),
            Field::new(b"te", b"trailers"),
        ];
        if let Ok(id) = conn.send_request(&fields, opened.is_multiple_of(4)) {
            let _ = conn.send_data(id, &[b'r'; 200], *opened % 4 == 1);
        }
        *opened += 1;
    };
    for _ in 0..4 {
        open(&mut conn, &mut opened);
    }
    let mut pending = Vec::new();
    let mut todo = Vec::new();
    let mut fed = 0usize;
    loop {
        let end = rest.len().min(fed.saturating_add(chunk));
        pending.extend_from_slice(rest.get(fed..end).unwrap_or_default());
        let progress = end > fed;
        fed = end;
        now += Duration::from_millis(3);
        let result = conn.recv(&pending, now, &mut |e| match e {
            Event::Data { stream, data, .. } => todo.push((stream, data.len())),
            Event::Writable { stream } | Event::Response { stream, .. } => {
                todo.push((stream, usize::MAX))
            }
            Event::Unprocessed { .. } | Event::Reset { .. } | Event::Trailers { .. } => {
                todo.push((0, 0))
            }
            _ => {}
        });
        let n = match result {
            Ok(n) => n,
            Err(e) => {
                assert!(conn.is_done());
                assert_eq!(last_goaway(conn.output()), Some(e.code()), "{e}");
                return;
            }
        };
        assert!(n <= pending.len());
        pending.drain(..n);
        for (stream, what) in todo.drain(..) {
            match what {
                0 => open(&mut conn, &mut opened),
                usize::MAX => {
                    let _ = conn.send_data(stream, &[b'b'; 500], true);
                }
                n if release => conn.release(stream, n),
                _ => {}
            }
        }
        assert!(conn.open_streams() <= 64);
        assert!(conn.headers_capacity() <= 8 * cfg.max_header_list_size as usize + 4096);
        assert!(conn.output().len() <= cfg.max_output + (64 << 10));
        assert!(pending.len() <= 9 + cfg.max_frame_size as usize + chunk.min(rest.len()));
        let all = conn.output().len();
        conn.consume_output(all);
        if !progress && n == 0 {
            break;
        }
    }
}
