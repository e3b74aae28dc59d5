#![no_main]
//! Arbitrary bytes into the chunked decoder alone, in one read and cut into reads.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    wireloop_middleware::http1::fuzzing::chunked(data);
});
