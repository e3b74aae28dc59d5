//! The message state machine (RFC 6455 §5-§7), shared by the server and client roles:
//! frames in → messages, control frames and close out, every rule checked. Sans-IO: it
//! reads a byte slice and reports how much it used; the caller sends what it must
//! (pongs, the closing handshake) with [`encode_frame`].

use std::fmt;

use super::frame::{apply_mask, decode_header, extend_masked, Opcode, MAX_CONTROL};
use super::handshake::HandshakeError;
use super::utf8::Utf8Validator;
use crate::codec::Status;

/// Which end of the connection this is: a server expects masked frames and sends plain
/// ones, a client the opposite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The accepting side.
    Server,
    /// The dialing side.
    Client,
}

/// Close status codes (RFC 6455 §7.4.1).
pub mod code {
    /// Normal closure.
    pub const NORMAL: u16 = 1000;
    /// The endpoint is going away (server shutdown, page navigation).
    pub const GOING_AWAY: u16 = 1001;
    /// A protocol error.
    pub const PROTOCOL: u16 = 1002;
    /// A data type the endpoint cannot accept.
    pub const UNSUPPORTED: u16 = 1003;
    /// No status code was present (never sent on the wire).
    pub const NO_STATUS: u16 = 1005;
    /// The connection closed without a close frame (never sent on the wire).
    pub const ABNORMAL: u16 = 1006;
    /// Data inconsistent with the message type (invalid UTF-8 in a text message).
    pub const INVALID_DATA: u16 = 1007;
    /// A policy violation.
    pub const POLICY: u16 = 1008;
    /// A message too big to process.
    pub const TOO_BIG: u16 = 1009;
    /// An unexpected condition on the server.
    pub const INTERNAL: u16 = 1011;

    /// Whether `code` may appear in a close frame: 1000-1003, 1007-1014, 3000-4999.
    pub fn is_valid(code: u16) -> bool {
        matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

/// A text or binary message, delivered whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Message<'a> {
    /// A text message (valid UTF-8).
    Text(&'a str),
    /// A binary message.
    Binary(&'a [u8]),
}

impl<'a> Message<'a> {
    /// The payload bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        match self {
            Message::Text(t) => t.as_bytes(),
            Message::Binary(b) => b,
        }
    }

    /// Whether it is a text message.
    pub fn is_text(&self) -> bool {
        matches!(self, Message::Text(_))
    }
}

/// The kind of a message (for streamed pieces, see [`Chunk`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageKind {
    /// Text (UTF-8).
    Text,
    /// Binary.
    Binary,
}

/// A piece of a message delivered as it arrives ([`Config::stream`](super::Config::stream)).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunk<'a> {
    /// The message's kind.
    pub kind: MessageKind,
    /// The next bytes of the message (for text, validated so far; a character may be
    /// split between pieces). May be empty for the last piece.
    pub data: &'a [u8],
    /// The first piece of a message.
    pub first: bool,
    /// The last piece of the message.
    pub last: bool,
}

/// A close frame's content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseFrame {
    /// The status code ([`code::NO_STATUS`] if the frame carried none).
    pub code: u16,
    /// The reason (may be empty).
    pub reason: String,
}

/// Why a WebSocket connection failed. Reaches [`WsHandler::closed`](super::WsHandler::closed)
/// wrapped in a [`wireloop::Error`] ([`Error::layer_error`](wireloop::Error::layer_error)
/// downcasts back to it).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WsError {
    /// The peer broke the protocol (close code 1002); the detail says how.
    Protocol(&'static str),
    /// Invalid UTF-8 in a text message or a close reason (1007).
    InvalidUtf8,
    /// A message or frame over [`Config::max_message`](super::Config::max_message) (1009).
    TooBig,
    /// The opening handshake failed.
    Handshake(HandshakeError),
}

impl WsError {
    /// The close code sent to the peer for this error.
    pub fn close_code(&self) -> u16 {
        match self {
            WsError::Protocol(_) | WsError::Handshake(_) => code::PROTOCOL,
            WsError::InvalidUtf8 => code::INVALID_DATA,
            WsError::TooBig => code::TOO_BIG,
        }
    }
}

impl fmt::Display for WsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WsError::Protocol(why) => write!(f, "WebSocket protocol error: {why}"),
            WsError::InvalidUtf8 => f.write_str("WebSocket: invalid UTF-8"),
            WsError::TooBig => f.write_str("WebSocket: message too big"),
            WsError::Handshake(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for WsError {}

impl From<HandshakeError> for WsError {
    fn from(e: HandshakeError) -> WsError {
        WsError::Handshake(e)
    }
}

/// Where an event's payload is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Src {
    /// `input[start..end]` of the step that reported it, unmasked in place.
    Input {
        /// First payload byte.
        start: usize,
        /// One past the last.
        end: usize,
    },
    /// The protocol's message buffer ([`Protocol::buffered`]).
    Buf,
}

/// What a step produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Event {
    /// A whole message (for text: to be validated with `str::from_utf8` if from
    /// `Scratch`; already validated piecewise if from `Buf`).
    Message(MessageKind, Src),
    /// A streamed piece: `input[..len]` of the step that reported it, unmasked in place.
    Chunk {
        kind: MessageKind,
        first: bool,
        last: bool,
        len: usize,
    },
    /// A ping; its payload is [`Protocol::control`].
    Ping,
    /// A pong; its payload is [`Protocol::control`].
    Pong,
    /// The peer's close frame (already validated); nothing more will be read.
    Close(u16),
}

/// Keep at most this much message buffer capacity between fragmented messages.
const RETAIN: usize = 64 * 1024;

/// The receive side of one connection.
#[derive(Debug)]
pub struct Protocol {
    role: Role,
    max: u64,
    stream: bool,
    // The data frame being read.
    in_frame: bool,
    left: u64,
    key: Option<[u8; 4]>,
    off: usize,
    frame_fin: bool,
    first_piece: bool,
    // The message being read.
    msg: Option<MessageKind>,
    msg_len: u64,
    utf8: Utf8Validator,
    buf: Vec<u8>,
    release: bool,
    ctrl: [u8; MAX_CONTROL],
    ctrl_len: u8,
    closed: bool,
}

impl Protocol {
    /// A receive side for `role` with message (and frame) limit `max`; `stream`: data is
    /// reported piece by piece instead of collected into whole messages.
    pub fn new(role: Role, max: usize, stream: bool) -> Protocol {
        Protocol {
            role,
            max: max as u64,
            stream,
            in_frame: false,
            left: 0,
            key: None,
            off: 0,
            frame_fin: false,
            first_piece: false,
            msg: None,
            msg_len: 0,
            utf8: Utf8Validator::new(),
            buf: Vec::new(),
            release: false,
            ctrl: [0; MAX_CONTROL],
            ctrl_len: 0,
            closed: false,
        }
    }

    /// The last control frame's payload.
    pub(crate) fn control(&self) -> &[u8] {
        &self.ctrl[..self.ctrl_len as usize]
    }

    /// The collected message ([`Src::Buf`]).
    pub(crate) fn buffered(&self) -> &[u8] {
        &self.buf
    }

    /// Whether the peer's close frame arrived (or the connection failed): nothing more is
    /// processed.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Marks the receive side finished (after an error).
    pub(crate) fn set_closed(&mut self) {
        self.closed = true;
    }

    /// Bytes held for a fragmented message in progress (capacity).
    pub fn buffered_capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Reads from `input`: `Ok(None)` if nothing can be done until more bytes arrive (or
    /// after the close), else the bytes used and what they produced. Payload bytes are
    /// unmasked in place in `input` (whole single-frame messages, streamed pieces: no
    /// copy) or into the protocol's own buffer (fragmented messages, frames split across
    /// reads: one copy). The caller reads an event's payload before it drops the bytes
    /// used.
    pub(crate) fn step(
        &mut self,
        input: &mut [u8],
    ) -> Result<Option<(usize, Option<Event>)>, WsError> {
        if self.closed {
            return Ok(None);
        }
        if self.release {
            self.release = false;
            self.buf.clear();
            if self.buf.capacity() > RETAIN {
                self.buf = Vec::new();
            }
        }
        if self.in_frame {
            if self.left > 0 && input.is_empty() {
                return Ok(None);
            }
            return self.payload(input).map(Some);
        }
        let (h, hl) = match decode_header(input) {
            Ok(Status::Complete(x)) => x,
            Ok(Status::Partial) => return Ok(None),
            Err(_) => return Err(WsError::Protocol("64-bit length with the top bit set")),
        };
        if h.rsv != 0 {
            return Err(WsError::Protocol("reserved bits set"));
        }
        if h.opcode.is_reserved() {
            return Err(WsError::Protocol("reserved opcode"));
        }
        match (self.role, h.mask.is_some()) {
            (Role::Server, false) => return Err(WsError::Protocol("unmasked client frame")),
            (Role::Client, true) => return Err(WsError::Protocol("masked server frame")),
            _ => {}
        }
        if h.opcode.is_control() {
            if !h.fin {
                return Err(WsError::Protocol("fragmented control frame"));
            }
            if h.len > MAX_CONTROL as u64 {
                return Err(WsError::Protocol("control frame over 125 bytes"));
            }
            let total = hl + h.len as usize;
            let Some(payload) = input.get(hl..total) else {
                return Ok(None);
            };
            let n = payload.len();
            self.ctrl[..n].copy_from_slice(payload);
            if let Some(k) = h.mask {
                apply_mask(&mut self.ctrl[..n], k, 0);
            }
            self.ctrl_len = n as u8;
            let ev = match h.opcode {
                Opcode::PING => Event::Ping,
                Opcode::PONG => Event::Pong,
                _ => {
                    let c = self.check_close()?;
                    self.closed = true;
                    Event::Close(c)
                }
            };
            return Ok(Some((total, Some(ev))));
        }
        let kind = match h.opcode {
            Opcode::CONTINUATION => match self.msg {
                Some(k) => k,
                None => return Err(WsError::Protocol("continuation without a message")),
            },
            op if self.msg.is_some() => {
                let _ = op;
                return Err(WsError::Protocol("new message inside a fragmented one"));
            }
            Opcode::TEXT => MessageKind::Text,
            _ => MessageKind::Binary,
        };
        let start = h.opcode != Opcode::CONTINUATION;
        if h.len > self.max || (!self.stream && !start && self.msg_len + h.len > self.max) {
            return Err(WsError::TooBig);
        }
        if start {
            let total = hl.saturating_add(h.len as usize);
            if h.fin && !self.stream && input.len() >= total {
                // The whole message is here: unmasked where it lies.
                if let Some(k) = h.mask {
                    apply_mask(&mut input[hl..total], k, 0);
                }
                let src = Src::Input {
                    start: hl,
                    end: total,
                };
                return Ok(Some((total, Some(Event::Message(kind, src)))));
            }
            self.msg = Some(kind);
            self.msg_len = 0;
            self.utf8.reset();
            self.buf.clear();
            self.first_piece = true;
        }
        self.in_frame = true;
        self.left = h.len;
        self.key = h.mask;
        self.off = 0;
        self.frame_fin = h.fin;
        self.msg_len += h.len;
        if !self.stream {
            // Room for the announced frame, but never more than RETAIN ahead of the bytes
            // that actually arrived: a 14-byte header must not make the server allocate
            // `max` bytes.
            let want = (self.msg_len as usize - self.buf.len()).min(RETAIN);
            self.buf.reserve(want);
        }
        Ok(Some((hl, None)))
    }

    /// Reads payload bytes of the current data frame.
    fn payload(&mut self, input: &mut [u8]) -> Result<(usize, Option<Event>), WsError> {
        let kind = self.msg.unwrap_or(MessageKind::Binary);
        let n = self.left.min(input.len() as u64) as usize;
        let piece = &mut input[..n];
        if self.stream {
            if let Some(k) = self.key {
                apply_mask(piece, k, self.off);
            }
            if kind == MessageKind::Text {
                self.utf8.feed(piece).map_err(|_| WsError::InvalidUtf8)?;
            }
        } else {
            let at = self.buf.len();
            extend_masked(&mut self.buf, piece, self.key, self.off);
            if kind == MessageKind::Text {
                self.utf8
                    .feed(&self.buf[at..])
                    .map_err(|_| WsError::InvalidUtf8)?;
            }
        }
        self.off += n;
        self.left -= n as u64;
        let done = self.left == 0;
        if done {
            self.in_frame = false;
        }
        let last = done && self.frame_fin;
        if last {
            if kind == MessageKind::Text {
                self.utf8.finish().map_err(|_| WsError::InvalidUtf8)?;
            }
            self.msg = None;
        }
        let ev = if self.stream {
            if n > 0 || last {
                let first = std::mem::replace(&mut self.first_piece, false);
                Some(Event::Chunk {
                    kind,
                    first,
                    last,
                    len: n,
                })
            } else {
                None
            }
        } else if last {
            self.release = true;
            Some(Event::Message(kind, Src::Buf))
        } else {
            None
        };
        Ok((n, ev))
    }

    /// Checks the close frame in `ctrl`; returns its code.
    fn check_close(&self) -> Result<u16, WsError> {
        match self.control() {
            [] => Ok(code::NO_STATUS),
            [_] => Err(WsError::Protocol("close frame with a 1-byte payload")),
            [a, b, reason @ ..] => {
                let c = u16::from_be_bytes([*a, *b]);
                if !code::is_valid(c) {
                    return Err(WsError::Protocol("invalid close code"));
                }
                std::str::from_utf8(reason).map_err(|_| WsError::InvalidUtf8)?;
                Ok(c)
            }
        }
    }

    /// The last close frame's content.
    pub(crate) fn close_frame(&self, c: u16) -> CloseFrame {
        let reason = self.control().get(2..).unwrap_or_default();
        CloseFrame {
            code: c,
            reason: String::from_utf8_lossy(reason).into_owned(),
        }
    }
}

/// Appends one frame (header and payload, masked with `mask` if given) to `out`.
pub fn encode_frame(
    out: &mut Vec<u8>,
    fin: bool,
    opcode: Opcode,
    mask: Option<[u8; 4]>,
    payload: &[u8],
) {
    let mut h = [0u8; super::frame::MAX_HEADER];
    let n = super::frame::encode_header(&mut h, fin, opcode, mask, payload.len() as u64);
    out.extend_from_slice(&h[..n]);
    extend_masked(out, payload, mask, 0);
}

/// A close frame's payload: the code, then as much of `reason` as fits in 123 bytes (cut
/// at a character boundary).
pub fn close_payload(c: u16, reason: &str, out: &mut [u8; MAX_CONTROL]) -> usize {
    out[..2].copy_from_slice(&c.to_be_bytes());
    let mut end = reason.len().min(MAX_CONTROL - 2);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    out[2..2 + end].copy_from_slice(&reason.as_bytes()[..end]);
    2 + end
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `input` (in pieces of `step` bytes) through a server-side protocol; returns
    /// the events as strings, ending with `error <code>` on a failure.
    fn run(input: &[u8], step: usize, stream: bool) -> Vec<String> {
        let mut p = Protocol::new(Role::Server, 1 << 20, stream);
        let mut pending: Vec<u8> = Vec::new();
        let mut out = Vec::new();
        for piece in input.chunks(step.max(1)) {
            pending.extend_from_slice(piece);
            loop {
                match p.step(&mut pending) {
                    Ok(None) => break,
                    Ok(Some((n, ev))) => {
                        let input = pending.drain(..n).collect::<Vec<u8>>();
                        match ev {
                            None => {}
                            Some(Event::Message(kind, src)) => {
                                let d = match src {
                                    Src::Input { start, end } => &input[start..end],
                                    Src::Buf => p.buffered(),
                                };
                                if kind == MessageKind::Text && std::str::from_utf8(d).is_err() {
                                    // The session's check of whole messages.
                                    out.push("error 1007".into());
                                    return out;
                                }
                                out.push(format!("msg {}", String::from_utf8_lossy(d)));
                            }
                            Some(Event::Chunk { last, len, .. }) => out.push(format!(
                                "chunk {} {last}",
                                String::from_utf8_lossy(&input[..len])
                            )),
                            Some(Event::Ping) => {
                                out.push(format!("ping {}", String::from_utf8_lossy(p.control())))
                            }
                            Some(Event::Pong) => out.push("pong".into()),
                            Some(Event::Close(c)) => out.push(format!("close {c}")),
                        }
                    }
                    Err(e) => {
                        out.push(format!("error {}", e.close_code()));
                        return out;
                    }
                }
            }
        }
        out
    }

    fn frame(fin: bool, op: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        encode_frame(
            &mut v,
            fin,
            Opcode(op),
            Some([0xA1, 0xB2, 0xC3, 0xD4]),
            payload,
        );
        v
    }

    /// `cases! { name: [frames..] => [events..]; }`, each fed whole, byte by byte and in
    /// 3-byte pieces.
    macro_rules! cases {
        ($($name:ident: [$($f:expr),*] => [$($want:expr),*];)*) => {$(
            #[test]
            fn $name() {
                let input: Vec<u8> = [$($f),*].concat();
                let want: Vec<String> = vec![$($want.to_string()),*];
                for step in [input.len(), 1, 3] {
                    assert_eq!(run(&input, step, false), want, "step {step}");
                }
            }
        )*};
    }

    cases! {
        one_text: [frame(true, 1, b"hello")] => ["msg hello"];
        empty_binary: [frame(true, 2, b"")] => ["msg "];
        fragmented: [frame(false, 1, b"he"), frame(false, 0, b""), frame(true, 0, b"llo")] => ["msg hello"];
        ping_inside: [frame(false, 1, b"he"), frame(true, 9, b"p"), frame(true, 0, b"llo")] => ["ping p", "msg hello"];
        pong: [frame(true, 10, b"x")] => ["pong"];
        close_normal: [frame(true, 8, &[3, 232]), frame(true, 1, b"ignored")] => ["close 1000"];
        close_empty: [frame(true, 8, b"")] => ["close 1005"];
        close_one_byte: [frame(true, 8, b"\x03")] => ["error 1002"];
        close_bad_code: [frame(true, 8, &[3, 236])] => ["error 1002"];
        close_bad_reason: [frame(true, 8, b"\x03\xe8\xff")] => ["error 1007"];
        rsv: [vec![0xC1, 0x80, 0, 0, 0, 0]] => ["error 1002"];
        reserved_opcode: [frame(true, 3, b"")] => ["error 1002"];
        reserved_control: [frame(true, 0xB, b"")] => ["error 1002"];
        continuation_first: [frame(true, 0, b"x")] => ["error 1002"];
        new_message_inside: [frame(false, 1, b"a"), frame(true, 1, b"b")] => ["error 1002"];
        fragmented_ping: [frame(false, 9, b"a")] => ["error 1002"];
        big_ping: [frame(true, 9, &[b'a'; 126])] => ["error 1002"];
        unmasked: [b"\x81\x00".to_vec()] => ["error 1002"];
        bad_utf8: [frame(true, 1, b"\xff")] => ["error 1007"];
        bad_utf8_fragment: [frame(false, 1, b"ok\xff")] => ["error 1007"];
        length_msb: [b"\x82\xff\x80\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00".to_vec()] => ["error 1002"];
        too_big: [b"\x82\xff\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00".to_vec()] => ["error 1009"];
    }

    #[test]
    fn announced_length_does_not_allocate_ahead() {
        let mut p = Protocol::new(Role::Server, 16 << 20, false);
        // A 10 MiB binary frame header (masked), and only 100 payload bytes.
        let mut input = vec![0x82, 0xFF];
        input.extend_from_slice(&(10u64 << 20).to_be_bytes());
        input.extend_from_slice(&[1, 2, 3, 4]);
        input.extend_from_slice(&[0; 100]);
        let (n, ev) = p.step(&mut input).unwrap().unwrap();
        assert_eq!((n, ev), (14, None));
        let (n, ev) = p.step(&mut input[14..]).unwrap().unwrap();
        assert_eq!((n, ev), (100, None));
        assert!(
            p.buffered_capacity() <= 2 * RETAIN,
            "{}",
            p.buffered_capacity()
        );
    }

    #[test]
    fn streamed_pieces() {
        let input = [frame(false, 2, b"abc"), frame(true, 0, b"de")].concat();
        assert_eq!(
            run(&input, input.len(), true),
            ["chunk abc false", "chunk de true"]
        );
        assert_eq!(
            run(&input, 8, true).last().map(String::as_str),
            Some("chunk e true")
        );
    }
}
