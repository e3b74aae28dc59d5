#![no_main]
//! Arbitrary bytes (pipelined requests, junk) through the HTTP/1.1 adapter's session state
//! machine on the loop's real dispatch (a test driver kept between inputs), in one read and
//! cut into reads: no panic, only responses written, same answers either way.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    wireloop_middleware::http1::fuzzing::request(data);
});
