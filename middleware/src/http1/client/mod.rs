//! The HTTP/1.1 client side, sans-IO: writing requests ([`write_request_head`],
//! [`write_chunk`], [`write_last_chunk`]) and reading responses ([`parse_response`] for a
//! head, [`ResponseReader`] for a whole exchange: interim responses, the head, then the
//! body by `Content-Length`, chunked or until the close).
//!
//! The framing rules are RFC 9112 §6.3 as a client applies them: no body after a `HEAD`
//! request or in a 1xx, 204 or 304 response; `Transfer-Encoding: chunked`; else
//! `Content-Length`; else the body runs until the server closes. The smuggling defences
//! are the server parser's: `Content-Length` with `Transfer-Encoding`, differing or
//! malformed lengths, bad chunk sizes, bare LF or CR, obsolete line folding — each is a
//! [`ResponseError`], after which the connection must not be reused.
//!
//! ```
//! use wireloop_middleware::http1::{header_slots, write_request_head, BodyLength, ClientEvent,
//!     Config, ResponseReader};
//!
//! let mut wire = Vec::new();
//! write_request_head(&mut wire, "GET", "/", [("Host", &b"example.com"[..])], BodyLength::None).unwrap();
//! assert_eq!(wire, b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n");
//!
//! let input = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";
//! let mut reader = ResponseReader::new(false);
//! let cfg = Config::default();
//! let mut slots = header_slots();
//! let (used, ev) = reader.read(input, &mut slots, &cfg).unwrap();
//! let ClientEvent::Head(head) = ev else { panic!() };
//! assert_eq!(head.status(), 200);
//! let mut slots = header_slots();
//! let (_, ev) = reader.read(&input[used..], &mut slots, &cfg).unwrap();
//! assert!(matches!(ev, ClientEvent::Data(b"hi")));
//! ```
//!
//! The parts, in the order of an exchange: `request_writer.rs` (a request head and the
//! pieces of a chunked body), `response_parse.rs` (a response head: the strict one-pass
//! parser and httparse), `response_framing.rs` (how its fields frame the body),
//! `response_head.rs` (the parsed head), `body_decoder.rs` (the body by its framing),
//! `response_reader.rs` (a whole response as events) and `response_error.rs`.

mod body_decoder;
mod request_writer;
mod response_error;
mod response_framing;
mod response_head;
mod response_parse;
mod response_reader;

pub use body_decoder::BodyDecoder;
pub use request_writer::{
    write_chunk, write_last_chunk, write_request_head, FieldName, InvalidRequest, RequestHeadWriter,
};
pub use response_error::ResponseError;
pub use response_head::{ResponseBody, ResponseHead};
pub use response_parse::parse_response;
#[cfg(any(test, feature = "fuzzing"))]
pub(super) use response_parse::{parse_general, parse_strict};
pub use response_reader::{ClientEvent, ResponseReader};
