#![no_main]
//! Arbitrary frame streams through the WebSocket server side: the sans-IO protocol (one
//! read versus many) and the whole `Http1` + `WebSocket` stack. The body lives in
//! `wireloop_middleware::ws::fuzzing` so that `tests/fuzz_corpus.rs` replays the corpus.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    wireloop_middleware::ws::fuzzing::frames(data);
});
