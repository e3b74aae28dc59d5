//! Incremental UTF-8 validation across frames and reads, failing as soon as an invalid
//! sequence appears (RFC 6455 §8.1: a text message with invalid UTF-8 fails the
//! connection; Autobahn checks that this happens before the message ends).

/// Validates a text message fed in pieces. At most three bytes of an incomplete character
/// are kept between pieces.
#[derive(Clone, Copy, Debug, Default)]
pub struct Utf8Validator {
    pending: [u8; 4],
    pending_len: u8,
}

/// The input is not UTF-8 (and no continuation can make it so).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvalidUtf8;

impl std::fmt::Display for InvalidUtf8 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("invalid UTF-8 in a text message")
    }
}

impl std::error::Error for InvalidUtf8 {}

impl Utf8Validator {
    /// A validator at the start of a message.
    pub fn new() -> Utf8Validator {
        Utf8Validator::default()
    }

    /// Forgets everything (a new message starts).
    pub fn reset(&mut self) {
        self.pending_len = 0;
    }

    /// Checks the next piece of the message. `Err` as soon as the bytes so far cannot be
    /// the start of valid UTF-8; an incomplete character at the end is kept for the next
    /// piece.
    pub fn feed(&mut self, mut data: &[u8]) -> Result<(), InvalidUtf8> {
        while self.pending_len > 0 {
            let Some((&b, rest)) = data.split_first() else {
                return Ok(());
            };
            data = rest;
            self.pending[self.pending_len as usize] = b;
            self.pending_len += 1;
            match std::str::from_utf8(&self.pending[..self.pending_len as usize]) {
                Ok(_) => self.pending_len = 0,
                Err(e) if e.error_len().is_some() => return Err(InvalidUtf8),
                Err(_) if self.pending_len >= 4 => return Err(InvalidUtf8),
                Err(_) => {}
            }
        }
        match std::str::from_utf8(data) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_some() => Err(InvalidUtf8),
            Err(e) => {
                let tail = &data[e.valid_up_to()..];
                self.pending[..tail.len()].copy_from_slice(tail);
                self.pending_len = tail.len() as u8;
                Ok(())
            }
        }
    }

    /// The message ended: `Err` if it stopped inside a character.
    pub fn finish(&mut self) -> Result<(), InvalidUtf8> {
        let complete = self.pending_len == 0;
        self.pending_len = 0;
        if complete {
            Ok(())
        } else {
            Err(InvalidUtf8)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_split(data: &[u8]) -> Result<(), InvalidUtf8> {
        let whole = {
            let mut v = Utf8Validator::new();
            v.feed(data).and_then(|_| v.finish())
        };
        assert_eq!(whole.is_ok(), std::str::from_utf8(data).is_ok());
        for cut in 0..=data.len() {
            let mut v = Utf8Validator::new();
            let r = v
                .feed(&data[..cut])
                .and_then(|_| v.feed(&data[cut..]))
                .and_then(|_| v.finish());
            assert_eq!(r, whole, "cut {cut} of {data:x?}");
        }
        let mut v = Utf8Validator::new();
        let r = data
            .iter()
            .try_for_each(|b| v.feed(std::slice::from_ref(b)))
            .and_then(|_| v.finish());
        assert_eq!(r, whole, "bytewise {data:x?}");
        whole
    }

    /// `cases! { name: bytes => valid; }`, each checked whole, cut in two everywhere and
    /// byte by byte.
    macro_rules! cases {
        ($($name:ident: $input:expr => $ok:expr;)*) => {$(
            #[test]
            fn $name() {
                assert_eq!(check_split($input).is_ok(), $ok);
            }
        )*};
    }

    cases! {
        ascii: b"Hello-World" => true;
        greek: "κόσμε".as_bytes() => true;
        four_byte: "\u{10FFFF}𝄞".as_bytes() => true;
        empty: b"" => true;
        lone_continuation: b"\x80" => false;
        truncated_at_end: b"ab\xe2\x82" => false;
        overlong: b"\xc0\xaf" => false;
        surrogate: b"\xed\xa0\x80" => false;
        above_max: b"\xf4\x90\x80\x80" => false;
        invalid_start: b"\xff" => false;
        hello_then_bad: b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited" => false;
    }

    #[test]
    fn fails_fast_before_the_message_ends() {
        // κόσμε followed by the start of a code point above U+10FFFF: the second byte
        // already makes it invalid.
        let mut v = Utf8Validator::new();
        assert!(v.feed("κόσμε".as_bytes()).is_ok());
        assert!(v.feed(b"\xf4").is_ok());
        assert_eq!(v.feed(b"\x90"), Err(InvalidUtf8));
    }
}
