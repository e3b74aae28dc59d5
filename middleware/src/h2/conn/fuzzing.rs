//! Body of the `h2_server` fuzz target (`fuzz/fuzz_targets/h2_server.rs`), public so
//! that the corpus replay test (`tests/fuzz_corpus.rs`) runs it under `cargo test`.

use std::time::{Duration, Instant};

use super::super::frame::{decode, ErrorCode, Frame, Status, MAX_FRAME_SIZE_LIMIT, PREFACE};
use super::super::hpack::Field;
use super::{Config, Connection, Event};

pub use super::fuzzing_client::client;

/// Arbitrary bytes, after a valid client preface, as what a client sends a server
/// [`Connection`], fed in chunks; every request is answered (200, a body, sometimes
/// trailers or a reset). Panics if the connection panics, if its output, open streams
/// or buffers pass their bounds, or if a connection error leaves no GOAWAY.
///
/// The first byte picks: bit 0 small limits (4 streams, 100-byte stream windows,
/// 1 KiB header lists, 16 KiB output), bits 1-3 the chunk size (1 to 255 bytes, or
/// everything), bit 4 whether the application releases request bodies, bit 5 whether
/// the output is drained only every other round (backpressure).
pub fn server(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let (cfg, chunk) = picks(pick);
    let release = pick & 0x10 != 0;
    let lazy_drain = pick & 0x20 != 0;
    let mut now = Instant::now();
    let mut conn = Connection::server(cfg.clone(), now);
    let cfg = conn.config().clone();
    let mut input = PREFACE.to_vec();
    input.extend_from_slice(rest);
    let mut pending = Vec::new();
    let mut todo = Vec::new();
    let mut round = 0usize;
    let mut fed = 0;
    while fed < input.len() || !pending.is_empty() {
        let end = input.len().min(fed.saturating_add(chunk));
        pending.extend_from_slice(input.get(fed..end).unwrap_or_default());
        let progress = end > fed;
        fed = end;
        now += Duration::from_millis(3);
        let result = conn.recv(&pending, now, &mut |e| match e {
            Event::Request { stream, .. } => todo.push((stream, 0)),
            Event::Data {
                stream,
                data,
                end_stream,
                ..
            } => todo.push((stream, if end_stream { 1 } else { 2 + data.len() })),
            Event::Trailers { stream, .. } => todo.push((stream, 1)),
            Event::Writable { stream } => todo.push((stream, 1)),
            _ => {}
        });
        let n = match result {
            Ok(n) => n,
            Err(e) => {
                assert!(conn.is_done());
                assert_eq!(last_goaway(conn.output()), Some(e.code()), "{e}");
                assert_eq!(conn.recv(b"", now, &mut |_| {}), Err(e));
                return;
            }
        };
        assert!(n <= pending.len());
        pending.drain(..n);
        for (stream, what) in todo.drain(..) {
            answer(&mut conn, stream, what, release, round);
        }
        assert!(conn.open_streams() <= cfg.max_concurrent_streams as usize);
        assert!(conn.streams.remembered() <= cfg.closed_streams_remembered as usize);
        assert!(conn.block.capacity() <= 2 * cfg.max_header_block_size as usize + 64);
        assert!(conn.headers_capacity() <= 8 * cfg.max_header_list_size as usize + 4096);
        // One round of frames answers with at most a few small frames past the limit,
        // and the application's headers.
        assert!(
            conn.output().len() <= cfg.max_output + (64 << 10),
            "{}",
            conn.output().len()
        );
        assert!(pending.len() <= 9 + cfg.max_frame_size as usize + chunk.min(input.len()));
        if !lazy_drain || round % 2 == 1 {
            let all = conn.output().len();
            conn.consume_output(all);
        }
        round += 1;
        if !progress && n == 0 && conn.output().is_empty() {
            break; // a partial frame at the end
        }
        if !progress && n == 0 {
            let all = conn.output().len();
            conn.consume_output(all);
        }
    }
}

/// The configuration (bit 0: small limits) and the chunk size (bits 1-3) a fuzz input's
/// first byte picks.
pub(super) fn picks(pick: u8) -> (Config, usize) {
    let cfg = if pick & 1 == 1 {
        Config {
            max_concurrent_streams: 4,
            initial_window_size: 100,
            connection_window_size: 65_535,
            max_header_list_size: 1024,
            max_header_block_size: 2048,
            max_continuation_frames: 4,
            closed_streams_remembered: 8,
            max_output: 16 << 10,
            ..Config::default()
        }
    } else {
        Config::default()
    };
    let chunk = match (pick >> 1) & 7 {
        0 => usize::MAX,
        n => 1usize << (n - 1),
    };
    (cfg, chunk)
}

/// The code of the GOAWAY `out` ends with, if it does (the output must decode).
pub(super) fn last_goaway(mut out: &[u8]) -> Option<ErrorCode> {
    let mut last = None;
    while !out.is_empty() {
        let Ok(Status::Complete((frame, n))) = decode(out, MAX_FRAME_SIZE_LIMIT) else {
            panic!("output does not decode");
        };
        last = match frame {
            Frame::GoAway { code, .. } => Some(code),
            _ => None,
        };
        out = &out[n..];
    }
    last
}

/// The application: answers a request when it is complete, releases body bytes.
fn answer(conn: &mut Connection, stream: u32, what: usize, release: bool, round: usize) {
    if what >= 2 {
        if release {
            conn.release(stream, what - 2);
        }
        return;
    }
    let _ = conn.send_headers(stream, 200, &[Field::new(b"server", b"fuzz")], false);
    match round % 4 {
        0 => {
            let _ = conn.send_data(stream, &[b'x'; 300], true);
        }
        1 => {
            let _ = conn.send_data(stream, b"body", false);
            let _ = conn.send_trailers(stream, &[Field::new(b"x-t", b"1")]);
        }
        2 => {
            let _ = conn.reset(stream, ErrorCode::CANCEL);
        }
        _ => {
            let _ = conn.send_data(stream, b"", true);
        }
    }
}
