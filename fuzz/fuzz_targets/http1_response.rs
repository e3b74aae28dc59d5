#![no_main]
//! Arbitrary bytes as a server's answer to the HTTP/1.1 response reader (client side),
//! cut into reads as the first byte says.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    wireloop_middleware::http1::fuzzing::response(data);
});
