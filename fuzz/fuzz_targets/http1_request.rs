#![no_main]
//! Arbitrary bytes (pipelined requests, junk) through the full HTTP/1.1 adapter, in one
//! read and cut into reads: no panic, only responses written, same answers either way.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    wireloop_middleware::http1::fuzzing::request(data);
});
