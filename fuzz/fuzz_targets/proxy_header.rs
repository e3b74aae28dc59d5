//! Fuzz the PROXY protocol header parser (versions 1 and 2); the body lives in
//! `wireloop_middleware::proxy_protocol::fuzzing` so that `tests/fuzz_corpus.rs` replays
//! the corpus.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    wireloop_middleware::proxy_protocol::fuzzing::header(data);
});
