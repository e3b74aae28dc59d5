#![no_main]
//! Arbitrary bytes, as a server's, through a client HTTP/2 connection fed in
//! chunks, responses answered with bodies: no panic, bounded output and buffers, a GOAWAY on
//! every connection error. The body lives in `wireloop_middleware::h2::conn::fuzzing` so
//! that `tests/fuzz_corpus.rs` replays the corpus.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    wireloop_middleware::h2::conn::fuzzing::client(data);
});
