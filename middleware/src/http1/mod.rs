//! HTTP/1.1 server (RFC 9112) as a wireloop [`Handler`](wireloop::Handler) adapter, on
//! httparse.
//!
//! [`Http1::server(app)`](Http1::server) turns an [`App`] — a request/response callback
//! with optional per-connection state — into a handler, so it runs on a plain listener or
//! stacks under [`translate`](fn@crate::translate) for TLS exactly like a byte handler:
//!
//! ```no_run
//! use wireloop::Server;
//! use wireloop_middleware::http1::{Http1, Request, Response};
//! use wireloop_middleware::{translate, CertKey, TlsServer};
//!
//! # fn main() -> Result<(), wireloop::Error> {
//! let tls = TlsServer::builder(CertKey::self_signed(&["localhost".into()])?).build()?;
//! let hello = |_req: &Request<'_>, res: &mut Response<'_>| {
//!     res.header("Content-Type", "text/plain").body(b"Hello World!\r\n");
//! };
//! Server::builder()
//!     .listen("tcp://0.0.0.0:8080")?   // plain
//!     .listen("tcp://0.0.0.0:8443")?   // TLS
//!     .serve(move |_| translate(Http1::server(hello), |c| c.addr_index == 1, tls.clone()))
//! # }
//! ```
//!
//! # What the adapter does
//!
//! - **Parsing**: heads are parsed in place (headers borrow the connection's input) — the
//!   common form in one pass, anything else by httparse, with the same checks;
//!   pipelined requests that arrived together are answered in order within one callback,
//!   so their responses leave in one write.
//! - **Bodies**: `Content-Length` or chunked (trailers checked and dropped), collected up
//!   to [`Config::max_body`] (413 beyond) or streamed to the application in pieces — the
//!   application picks per request ([`App::body_mode`]). `Expect: 100-continue` gets
//!   `100 Continue` before the body is read, unless the application rejects first.
//! - **Responses** ([`Response`]): fixed length, sized or chunked streaming with
//!   backpressure ([`Response::has_room`], [`App::resume`]), or none (HEAD, 1xx, 204,
//!   304). `Date` comes from a per-loop cache refreshed by the loop's tick.
//! - **Connections**: HTTP/1.0 closes unless `Connection: keep-alive`, HTTP/1.1 stays open
//!   unless `Connection: close` or the application closes ([`Response::close`]); the
//!   response carries the matching `Connection` header.
//! - **Errors**: 400 (malformed, smuggling attempts: CL+TE, differing CLs, bad chunk
//!   sizes, bare LF, obs-fold, TE not ending in chunked), 408 (head or body too slow),
//!   413, 414, 417, 431, 501 (unknown transfer coding), 505 — each answered, then the
//!   connection closes.
//! - **Upgrade**: [`Response::upgrade`] sends 101 and hands the raw connection to
//!   [`App::upgraded`] (a WebSocket layer builds on this).
//!
//! The sans-IO parts — [`parse_request`], [`ChunkedDecoder`], [`write_response`] — work
//! on byte slices alone.
//!
//! # Client side
//!
//! [`write_request_head`] (or [`RequestHeadWriter`] piece by piece, passing a parsed
//! request's fields on without checking them again), [`write_chunk`] and
//! [`write_last_chunk`] write requests; [`parse_response`] and [`ResponseReader`] read
//! responses (interim 1xx, 101, bodies by length, chunked or until the close, RFC 9112
//! keep-alive), with the same limits and smuggling defences as the server side; common
//! response heads are read in one strict pass, everything else by httparse. The `reverse-proxy` example drives them over
//! dialed connections.

mod app;
mod chunked;
mod client;
mod date;
mod exchange;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
#[cfg(feature = "h2")]
mod h2;
mod parse;
mod response;
mod server;

use std::time::Duration;

pub use app::{App, BodyMode, UpgradeEvent};
pub use chunked::{ChunkedDecoder, ChunkedError, Decoded, MAX_CHUNK_LINE, MAX_TRAILERS};
pub use client::{
    parse_response, write_chunk, write_last_chunk, write_request_head, BodyDecoder, ClientEvent,
    FieldName, InvalidRequest, RequestHeadWriter, ResponseBody, ResponseError, ResponseHead,
    ResponseReader,
};
pub use date::{format_imf_fixdate, HttpDate, IMF_FIXDATE_LEN};
pub use parse::{
    header_slots, parse_request, BodyLength, HeaderSlots, ParseError, Request, MAX_HEADERS,
};
pub use response::{reason, write_response, Response};
pub use server::{Http1, Http1Conn};

/// Limits and timeouts of the adapter. Every field has a default suited to a public
/// server; change them with struct update syntax:
///
/// ```
/// use std::time::Duration;
/// use wireloop_middleware::http1::Config;
///
/// let cfg = Config { max_body: 64 << 20, header_timeout: Some(Duration::from_secs(5)), ..Config::default() };
/// # let _ = cfg;
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Largest request head (request line and header fields) in bytes; 431 beyond.
    /// Default 16 KiB.
    pub max_head: usize,
    /// Most header field lines (at most [`MAX_HEADERS`]); 431 beyond. Default 64.
    pub max_headers: usize,
    /// Longest request target in bytes; 414 beyond. Default 8 KiB.
    pub max_target: usize,
    /// Largest collected body ([`BodyMode::Collect`]); 413 beyond. Default 1 MiB.
    pub max_body: usize,
    /// Longest wait for a whole request head, from its first byte (or from the connection
    /// opening, for the first request); then 408 and close. Default 10 s.
    pub header_timeout: Option<Duration>,
    /// Longest wait without progress on a request body; then 408 (if no response started)
    /// and close. Default 10 s.
    pub body_timeout: Option<Duration>,
    /// How long a connection may stay idle between requests; then it is closed quietly.
    /// Default 60 s.
    pub keep_alive_timeout: Option<Duration>,
    /// On a graceful shutdown (or a reload's drain), how long a connection idle between
    /// requests is kept for one more request, answered with `Connection: close`, before
    /// it is closed quietly. Closing it at once would lose a request already on its way
    /// (the client would see its connection close without an answer). `None`: closed at
    /// once. Default 1 s.
    pub drain_idle_timeout: Option<Duration>,
    /// Queued output at or above which pipelined requests wait and
    /// [`Response::has_room`] turns false. Default 1 MiB (the loop's default high-water
    /// mark, so the loop also stops reading).
    pub output_high_water: usize,
    /// Queued output at or below which [`App::resume`] is offered to continue an open
    /// response. Default 256 KiB.
    pub output_low_water: usize,
    /// A collected body with `Content-Length` whose request (head and body) fits in this
    /// many bytes is handed to the application straight from the input buffer, without a
    /// copy. Default 64 KiB.
    pub inline_body: usize,
    /// HTTP/2 on the same connections (cargo feature `h2`): a connection that starts
    /// with the HTTP/2 preface (prior knowledge) or whose TLS handshake chose ALPN `h2`
    /// is served over HTTP/2 with these settings and limits, each stream by the same
    /// application; `None`: HTTP/1.1 only (the preface is then a bad request). Default
    /// on, with [`crate::h2::conn::Config`]'s defaults (its header list limit at most
    /// `max_head`).
    #[cfg(feature = "h2")]
    pub http2: Option<crate::h2::conn::Config>,
}

impl Config {
    /// This configuration with HTTP/2 off: connections speak HTTP/1.1 only (for an
    /// application that keeps per-connection state across requests, which an HTTP/2
    /// connection has per stream). Without the `h2` feature it changes nothing.
    pub fn http1_only(self) -> Config {
        #[cfg(feature = "h2")]
        {
            let mut c = self;
            c.http2 = None;
            c
        }
        #[cfg(not(feature = "h2"))]
        self
    }
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_head: 16 * 1024,
            max_headers: 64,
            max_target: 8 * 1024,
            max_body: 1024 * 1024,
            header_timeout: Some(Duration::from_secs(10)),
            body_timeout: Some(Duration::from_secs(10)),
            keep_alive_timeout: Some(Duration::from_secs(60)),
            drain_idle_timeout: Some(Duration::from_secs(1)),
            output_high_water: 1024 * 1024,
            output_low_water: 256 * 1024,
            inline_body: 64 * 1024,
            #[cfg(feature = "h2")]
            http2: Some(crate::h2::conn::Config::default()),
        }
    }
}
