//! The HTTP/2 frame layer (RFC 9113 §4, §6), sans-IO and zero-copy.
//!
//! - [`decode`] reads one frame from the start of a byte buffer, httparse style:
//!   [`Status::Complete`] with the [`Frame`] (its payload borrowed from the buffer) and
//!   the bytes it took, or [`Status::Partial`] with the length the buffer must reach.
//!   Every per-frame rule of RFC 9113 §4 and §6 is checked; a refused frame gives a
//!   [`FrameError`] saying the [`ErrorCode`] and whether it is a connection error
//!   (GOAWAY, close) or a stream error (RST_STREAM on [`FrameError::stream_id`], skip
//!   [`FrameError::frame_len`] bytes, go on). No input makes it panic or ask for more
//!   than `9 + max_frame_size` bytes.
//! - [`encode`] appends frames to a `Vec<u8>`: one function per frame type, a header
//!   block split into HEADERS + CONTINUATION, and bare headers ([`encode::head`],
//!   [`encode::data_head`]) for payloads written in place.
//! - [`Settings`] holds an endpoint's settings and applies received [`Setting`]s.
//! - [`PREFACE`] and [`check_preface`] for the client connection preface.
//!
//! Stream identifiers are plain `u32`s, always 31-bit (the reserved bit is dropped on
//! receipt and never sent). Header block fragments are opaque bytes for HPACK.
//!
//! What the frame layer cannot see is the connection state machine's: stream states
//! and identifiers (STREAM_CLOSED, idle streams), header block sequencing (only
//! CONTINUATION on the same stream may follow a HEADERS or PUSH_PROMISE without
//! END_HEADERS, so an otherwise ignored [`Frame::Unknown`] there is a PROTOCOL_ERROR,
//! §6.10), flow-control windows, SETTINGS that need a role (ENABLE_PUSH = 1 from a
//! server), and acting on [`Frame::stream_error`] after HPACK has seen the fragment.

mod decode;
pub mod encode;
mod error;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod head;
mod kind;
mod preface;
mod settings;
mod types;

pub use decode::{decode, Status};
pub use error::{ErrorCode, FrameError, Reason};
pub use head::{Head, DEFAULT_MAX_FRAME_SIZE, HEAD_LEN, MAX_FRAME_SIZE_LIMIT, STREAM_ID_MASK};
pub use kind::{flags, Kind};
pub use preface::{check_preface, Preface, PREFACE};
pub use settings::{Params, ParamsIter, Setting, Settings, DEFAULT_WINDOW_SIZE, MAX_WINDOW_SIZE};
pub use types::{Frame, Priority};

#[cfg(test)]
mod rules_tests;
#[cfg(test)]
mod tests;
