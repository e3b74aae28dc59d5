#![no_main]
//! Arbitrary bytes as a connection's HPACK header blocks: no panic, limits kept, and every
//! decoded block re-encoded and decoded again gives the same fields. The body lives in
//! `wireloop_middleware::h2::hpack::fuzzing` so that `tests/fuzz_corpus.rs` replays the
//! corpus.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    wireloop_middleware::h2::hpack::fuzzing::decode(data);
});
