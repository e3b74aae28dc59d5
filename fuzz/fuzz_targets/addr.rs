//! Fuzz the listen/dial address parser; the body lives in `wireloop::fuzzing` so that
//! `tests/fuzz_corpus.rs` can replay the corpus without cargo-fuzz.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    wireloop::fuzzing::addr(data);
});
