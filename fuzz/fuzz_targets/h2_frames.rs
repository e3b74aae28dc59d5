#![no_main]
//! Arbitrary bytes through the HTTP/2 frame decoder: every frame decoded is re-encoded
//! and must decode to itself; header blocks must survive splitting into CONTINUATION
//! frames. The body lives in `wireloop_middleware::h2::frame::fuzzing` so that
//! `tests/fuzz_corpus.rs` replays the corpus.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    wireloop_middleware::h2::frame::fuzzing::frames(data);
});
