#![no_main]
//! Arbitrary bytes, cut into reads, into the TLS server layer above an echo handler.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    wireloop_middleware::fuzzing::tls_server(data);
});
