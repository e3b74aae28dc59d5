//! Body of the `proxy_header` fuzz target, public so that `tests/fuzz_corpus.rs` replays
//! its corpus with a plain `cargo test`.

use super::{parse, write, Header, Version};
use crate::codec::Status;

/// [`parse`] on any bytes never panics; a complete header's length is within the input,
/// every shorter prefix of it is partial, and what it says survives being written again
/// (both versions) and parsed back.
pub fn header(data: &[u8]) {
    let Ok(Status::Complete((n, h))) = parse(data) else {
        return;
    };
    assert!(n <= data.len());
    for k in (0..n).step_by((n / 32).max(1)) {
        assert_eq!(
            parse(&data[..k]),
            Ok(Status::Partial),
            "prefix of {k} of {n}"
        );
    }
    if let Header::Proxied { source, dest } = h {
        for version in [Version::V1, Version::V2] {
            let mut again = Vec::new();
            write(version, source, dest, &mut again);
            let back = parse(&again);
            let same = back == Ok(Status::Complete((again.len(), h)));
            // Two families in one header are written as unknown addresses.
            let mixed = source.is_ipv4() != dest.is_ipv4();
            assert!(
                same || (mixed && back == Ok(Status::Complete((again.len(), Header::Local)))),
                "{version:?}: {h:?} came back as {back:?}"
            );
        }
    }
}
