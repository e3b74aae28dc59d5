#![no_main]
//! Arbitrary bytes as lines, decoded in one piece and read by read: both must agree.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    wireloop_middleware::codec::fuzzing::lines(data);
});
