//! The client connection preface (RFC 9113 §3.4).

/// The 24 bytes a client sends first on every HTTP/2 connection, before its SETTINGS
/// frame. The server's preface is just its SETTINGS frame.
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// How a buffer's start compares with [`PREFACE`] (see [`check_preface`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preface {
    /// The buffer starts with the whole preface: consume `PREFACE.len()` bytes.
    Complete,
    /// The buffer is a proper prefix of the preface (possibly empty): read more.
    Partial,
    /// The buffer cannot start a preface: not HTTP/2 with prior knowledge (an HTTP/1.1
    /// request, say), or a connection error PROTOCOL_ERROR on an HTTP/2 connection.
    Mismatch,
}

/// Compares the start of `buf` with the client preface, for a server detecting h2c
/// with prior knowledge or checking an HTTP/2 client's first bytes.
///
/// Decides as soon as one byte differs, so an HTTP/1.1 request is told apart from its
/// first byte (no HTTP/1.1 method starts with `PRI`, RFC 9113 §3.4).
pub fn check_preface(buf: &[u8]) -> Preface {
    let n = buf.len().min(PREFACE.len());
    if buf.get(..n) != PREFACE.get(..n) {
        Preface::Mismatch
    } else if n == PREFACE.len() {
        Preface::Complete
    } else {
        Preface::Partial
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_prefix() {
        for n in 0..PREFACE.len() {
            assert_eq!(check_preface(&PREFACE[..n]), Preface::Partial, "{n}");
            let mut bad = PREFACE[..=n].to_vec();
            bad[n] ^= 0x20;
            assert_eq!(check_preface(&bad), Preface::Mismatch, "{n}");
        }
        assert_eq!(check_preface(PREFACE), Preface::Complete);
        let mut more = PREFACE.to_vec();
        more.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
        assert_eq!(check_preface(&more), Preface::Complete);
        assert_eq!(check_preface(b"GET / HTTP/1.1\r\n"), Preface::Mismatch);
        assert_eq!(check_preface(b"PRI * HTTP/1.1"), Preface::Mismatch);
    }
}
