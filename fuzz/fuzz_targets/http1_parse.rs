#![no_main]
//! Arbitrary bytes into the HTTP/1.1 request-head parser alone: no panic, limits kept,
//! the same request from the head alone, and no verdict on a prefix of a valid head.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    wireloop_middleware::http1::fuzzing::parse(data);
});
