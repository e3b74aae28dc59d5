//! Fuzz the proxy's TOML configuration file (`wireloop_proxy::config`); the body lives
//! in `wireloop_proxy::fuzzing` so that `tests/fuzz_corpus.rs` replays the corpus.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    wireloop_proxy::fuzzing::proxy_config(data);
});
