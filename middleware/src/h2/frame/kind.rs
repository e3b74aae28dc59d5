//! Frame types (RFC 9113 §6, §11.2) and flags.

use std::fmt;

/// A frame type: the 8-bit type field of the frame header.
///
/// A newtype so that types this module does not know (extensions, §5.5) keep their
/// value; the decoder hands those back as [`Frame::Unknown`](super::Frame::Unknown).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Kind(pub u8);

impl Kind {
    /// DATA (0x0): request or response content on a stream.
    pub const DATA: Kind = Kind(0x0);
    /// HEADERS (0x1): opens a stream and carries a field block fragment.
    pub const HEADERS: Kind = Kind(0x1);
    /// PRIORITY (0x2): the deprecated RFC 7540 priority signal.
    pub const PRIORITY: Kind = Kind(0x2);
    /// RST_STREAM (0x3): ends a stream with an error code.
    pub const RST_STREAM: Kind = Kind(0x3);
    /// SETTINGS (0x4): connection parameters, or their acknowledgement.
    pub const SETTINGS: Kind = Kind(0x4);
    /// PUSH_PROMISE (0x5): announces a server-initiated stream.
    pub const PUSH_PROMISE: Kind = Kind(0x5);
    /// PING (0x6): round-trip measurement and liveness.
    pub const PING: Kind = Kind(0x6);
    /// GOAWAY (0x7): starts closing the connection.
    pub const GOAWAY: Kind = Kind(0x7);
    /// WINDOW_UPDATE (0x8): flow-control credit.
    pub const WINDOW_UPDATE: Kind = Kind(0x8);
    /// CONTINUATION (0x9): the rest of a field block.
    pub const CONTINUATION: Kind = Kind(0x9);

    /// Whether RFC 9113 defines this type (0x0 to 0x9).
    pub fn is_known(self) -> bool {
        self.0 <= 0x9
    }

    /// The type's name, or `None` for an unknown type.
    pub fn name(self) -> Option<&'static str> {
        const NAMES: [&str; 10] = [
            "DATA",
            "HEADERS",
            "PRIORITY",
            "RST_STREAM",
            "SETTINGS",
            "PUSH_PROMISE",
            "PING",
            "GOAWAY",
            "WINDOW_UPDATE",
            "CONTINUATION",
        ];
        NAMES.get(usize::from(self.0)).copied()
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "frame type {:#x}", self.0),
        }
    }
}

/// Frame flags (RFC 9113 §6). Which bits mean something depends on the frame type;
/// the others are ignored on receipt and sent as 0 (§4.1).
pub mod flags {
    /// DATA, HEADERS: the last frame the sender sends on this stream.
    pub const END_STREAM: u8 = 0x1;
    /// SETTINGS, PING: an acknowledgement.
    pub const ACK: u8 = 0x1;
    /// HEADERS, PUSH_PROMISE, CONTINUATION: the field block ends in this frame.
    pub const END_HEADERS: u8 = 0x4;
    /// DATA, HEADERS, PUSH_PROMISE: a Pad Length byte and padding are present.
    pub const PADDED: u8 = 0x8;
    /// HEADERS: the priority fields (5 bytes) are present.
    pub const PRIORITY: u8 = 0x20;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(Kind::CONTINUATION.to_string(), "CONTINUATION");
        assert_eq!(Kind::DATA.name(), Some("DATA"));
        assert!(Kind::CONTINUATION.is_known());
        assert!(!Kind(0xa).is_known());
        assert_eq!(Kind(0xfe).to_string(), "frame type 0xfe");
        assert_eq!(Kind(0xfe).name(), None);
    }
}
