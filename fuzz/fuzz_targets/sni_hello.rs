//! Fuzz the ClientHello server-name peeker a layer-4 proxy routes TLS on; the body lives
//! in `wireloop_proxy::fuzzing` so that `tests/fuzz_corpus.rs` replays the corpus.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    wireloop_proxy::fuzzing::sni_hello(data);
});
