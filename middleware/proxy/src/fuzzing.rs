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

/// `proxy_config`: [`ProxyConfig::parse`](crate::config::ProxyConfig::parse) on any text
/// never panics, and every refusal names the file and a line within the text. Files a
/// configuration names are looked up under a directory that does not exist, and inputs
/// naming anything under `/dev`, `/proc` or `/sys` are skipped (a fuzzer must not read
/// `/dev/zero`).
#[cfg(feature = "config")]
pub fn proxy_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if ["/dev", "/proc", "/sys"].iter().any(|d| text.contains(d)) {
        return;
    }
    let dir = std::path::Path::new("/nonexistent-wireloop-fuzz");
    if let Err(e) = crate::config::ProxyConfig::parse(text, "fuzz.toml", dir) {
        let msg = e.to_string();
        assert!(msg.starts_with("fuzz.toml"), "{msg}");
        let lines = text.lines().count().max(1);
        if let Some(line) = msg
            .strip_prefix("fuzz.toml:")
            .and_then(|r| r.split(':').next())
            .and_then(|l| l.parse::<usize>().ok())
        {
            assert!(
                line >= 1 && line <= lines + 1,
                "line {line} of {lines}: {msg}"
            );
        }
    }
}
