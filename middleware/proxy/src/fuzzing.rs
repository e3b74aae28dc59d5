//! Bodies of the proxy's fuzz targets (`fuzz/fuzz_targets/`), public so that
//! `tests/fuzz_corpus.rs` replays their corpora with a plain `cargo test`.

use crate::sni::{peek_sni, Hello};

/// `sni_hello`: [`peek_sni`] on any bytes never panics, and agrees with itself as bytes
/// arrive: a prefix of a complete hello is partial (never an error or another name), and
/// more bytes never turn an error into anything else.
pub fn sni_hello(data: &[u8]) {
    let whole = peek_sni(data);
    // Cut points spread over the input (every one for short inputs).
    let step = (data.len() / 64).max(1);
    for n in (0..data.len()).step_by(step) {
        let part = peek_sni(&data[..n]);
        match (&whole, &part) {
            (Ok(Hello::Complete(_)), Ok(Hello::Partial)) => {}
            (Ok(Hello::Complete(a)), Ok(Hello::Complete(b))) => {
                assert_eq!(a, b, "a prefix named another server")
            }
            (Ok(_), Err(e)) => panic!("prefix of {n} bytes failed ({e}) but the whole did not"),
            (Ok(Hello::Partial), Ok(Hello::Complete(_))) => {
                panic!("prefix of {n} bytes complete, the whole only partial")
            }
            _ => {}
        }
    }
}
