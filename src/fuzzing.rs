//! Entry points shared by the cargo-fuzz targets in `fuzz/` and the corpus replay test.

use crate::addr::Addr;

/// Feed arbitrary bytes to the address parser: must never panic; when the text parses, its
/// canonical form must parse to an equal address (panics with a message otherwise, so the fuzzer reports it).
pub fn addr(data: &[u8]) {
    match std::str::from_utf8(data) {
        Ok(text) => addr_text(text),
        // Invalid UTF-8 never reaches the parser as `&str`; its lossy form still exercises
        // the rejection of U+FFFD and whatever surrounds it.
        Err(_) => addr_text(&String::from_utf8_lossy(data)),
    }
}

fn addr_text(text: &str) {
    let a = match Addr::parse(text) {
        Ok(a) => a,
        Err(e) => {
            assert_eq!(e.address(), text, "error names another address");
            assert!(!e.reason().is_empty(), "empty reason for {text:?}");
            // Display must not panic, whatever the text.
            let _ = e.to_string();
            return;
        }
    };
    assert_eq!(a.as_str(), text, "as_str is not the text given");
    let canon = a.to_string();
    let b = match Addr::parse(&canon) {
        Ok(b) => b,
        Err(e) => panic!("{text:?} parsed, but its canonical form {canon:?} did not: {e}"),
    };
    assert!(
        a == b,
        "{text:?} parsed to {a:?}, its canonical form {canon:?} to {b:?}"
    );
    let again = b.to_string();
    assert!(
        again == canon,
        "canonical form is not stable: {text:?} -> {canon:?} -> {again:?}"
    );
    assert_eq!(a.scheme(), b.scheme());
    assert_eq!(a.target(), b.target());
    assert_eq!(a.reuseport(), b.reuseport());
}

#[cfg(test)]
mod tests {
    #[test]
    fn addr_accepts_anything() {
        let inputs: [&[u8]; 8] = [
            b"",
            b"tcp://127.0.0.1:80",
            b"unix:///tmp/a.sock",
            b"tcp://[::1]:80?reuseport=1",
            b"\xff\xfe",
            b"tcp://\xc3:80",
            b"\0",
            b"tcp://x:99999",
        ];
        for data in inputs {
            super::addr(data);
        }
    }
}
