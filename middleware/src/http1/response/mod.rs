//! Writing responses: status line, headers, and a body that is fixed, sized-and-streamed,
//! chunked-and-streamed, or absent — framed by the writer, never by the application.
//!
//! The parts, from an application's calls to the bytes: `writer.rs` ([`Response`]: the
//! status, fields, framing and phases), `state.rs` (what is kept of a response between
//! calls), `field_check.rs` (the checks of the fields it is given), `wire.rs` (what a
//! response is encoded onto: HTTP/1.1 bytes or an HTTP/2 stream), `sink.rs` (where
//! HTTP/1.1 bytes go), `head_end.rs` (the fields that end a head, as bytes) and
//! `status.rs` (status lines, reason phrases, the adapter's own error responses).

mod field_check;
mod head_end;
mod sink;
mod state;
mod status;
mod wire;
mod writer;

pub(crate) use field_check::{valid_name, valid_value};
#[cfg(feature = "h2")]
pub(crate) use head_end::HeadEnd;
pub(crate) use state::RespState;
pub use status::reason;
pub(crate) use status::{put_continue, put_error};
#[cfg(feature = "h2")]
pub(crate) use wire::Wire;
pub use writer::{write_response, Response};
