#![no_main]
//! Arbitrary bytes into a plain and a TLS connection of one translated stack.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    wireloop_middleware::fuzzing::translated_stack(data);
});
