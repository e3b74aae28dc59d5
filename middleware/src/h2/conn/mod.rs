//! The HTTP/2 connection state machine (RFC 9113 §5, §6.5, §6.8, §6.9, §8), sans-IO,
//! server and client roles ([`Role`]).
//!
//! A [`Connection`] sits between a byte transport and an application: the caller
//! feeds it what the peer sent and drains what it must send; the application is told
//! what happened through [`Event`]s and answers with `send_*` calls.
//!
//! # Contract
//!
//! - **Input**: [`Connection::recv`] takes the bytes read so far. It consumes the
//!   client preface, then whole frames, and returns how many bytes it consumed; a
//!   partial frame is left for the caller to keep and pass again with more bytes (the
//!   caller's buffer never needs more than `9 + max_frame_size` bytes beyond that).
//!   Events go to the `sink` as frames are processed; the application cannot call the
//!   connection from inside the sink, so it notes what it needs and acts after `recv`
//!   returns.
//! - **Output**: frames are appended to an internal buffer; the caller writes
//!   [`Connection::output`] to the transport and calls [`Connection::consume_output`]
//!   with what was written. The server preface (our SETTINGS) is queued by
//!   [`Connection::server`].
//! - **Backpressure**: while the output holds [`Config::max_output`] bytes or more,
//!   `recv` consumes nothing (stop reading the socket until the output drains), so a
//!   peer that does not read cannot make us queue answers without bound.
//!   [`Connection::send_data`] takes no more than the flow-control windows and the
//!   output room allow and says how much it took; [`Event::Writable`] tells when a
//!   window held it back and opened again. On the receiving side, request bodies are
//!   flow-controlled by the application: see [`Connection::release`].
//! - **Errors**: a stream error resets the stream (RST_STREAM queued, [`Event::Reset`]
//!   if the application knew the stream) and the connection goes on. A connection
//!   error queues GOAWAY with its code and the last stream processed, and `recv`
//!   returns [`ConnError`]: flush the output, then close.
//! - **Time**: `recv` takes the current time for its rate limits; the timers are the
//!   caller's: [`Connection::idle_since`] says since when no stream has been open,
//!   [`Connection::settings_pending_since`] since when our SETTINGS await their ACK.
//! - **Client role** ([`Connection::client`]): the same contract, with the preface
//!   (the preface string, SETTINGS with ENABLE_PUSH 0) queued at creation and no
//!   preface expected from the server, whose first frame must be SETTINGS. Requests
//!   open streams ([`Connection::send_request`], odd ids in order); bodies go out with
//!   [`Connection::send_data`] and [`Connection::send_trailers`] under the same
//!   flow-control and output limits; responses come as [`Event::Informational`] (1xx),
//!   [`Event::Response`], [`Event::Data`] (give them back with
//!   [`Connection::release`]) and [`Event::Trailers`] (gRPC's `grpc-status`). A
//!   malformed response (§8.3.2: `:status` the only pseudo-header, no
//!   connection-specific field, body length matching `content-length`, no 101) is a
//!   stream error PROTOCOL_ERROR ([`Event::Reset`] with `remote: false`). Requests the
//!   server did not process — above its GOAWAY's last stream id, or refused with
//!   REFUSED_STREAM — come back as [`Event::Unprocessed`]: safe to retry elsewhere.
//!   [`Connection::available_streams`] says how many more streams the server's
//!   SETTINGS_MAX_CONCURRENT_STREAMS allow (0 after GOAWAY): a pool opens another
//!   connection at 0. PUSH_PROMISE, and SETTINGS_ENABLE_PUSH 1, are connection errors
//!   PROTOCOL_ERROR; the rate limits below hold for a server peer too.
//! - **End**: [`Connection::shutdown`] starts a graceful shutdown (GOAWAY, in-flight
//!   streams finish, new ones are refused); [`Connection::is_done`] says when nothing
//!   is left to do but flush and close.
//!
//! # Limits against hostile peers
//!
//! Every peer-controlled quantity is bounded ([`Config`]): open streams
//! (SETTINGS_MAX_CONCURRENT_STREAMS, more refused with REFUSED_STREAM), closed streams
//! remembered, the header list (SETTINGS_MAX_HEADER_LIST_SIZE: a request over it is
//! answered 431, decoding stays in step), the compressed header block and the number
//! of its CONTINUATION frames (connection error ENHANCE_YOUR_CALM, before buffering more
//! than the limit), the output queued. Frames that cost work and carry none — SETTINGS,
//! PING, PRIORITY, empty DATA, WINDOW_UPDATE, and streams reset or refused (rapid reset,
//! CVE-2023-44487) — each draw on a token bucket ([`Rate`]); an empty bucket is a
//! connection error ENHANCE_YOUR_CALM. Memory is the stream table (one entry per open
//! stream), the header block and header list buffers (reused, bounded by the limits
//! above), the HPACK tables (bounded by the table size settings) and the output.
//!
//! # Not here
//!
//! Server push (never sent; PUSH_PROMISE from a client is a
//! PROTOCOL_ERROR), priorities (PRIORITY frames and fields are accepted and ignored,
//! RFC 9113 §5.3.2).

mod client;
mod config;
mod error;
mod event;
mod flow;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
#[cfg(feature = "fuzzing")]
mod fuzzing_client;
mod headers;
mod limits;
mod recv;
mod send;
mod stream;
#[cfg(test)]
mod tests;

use std::time::Instant;

pub use config::Config;
pub use error::{ConnError, SendError};
pub use event::Event;
pub use headers::{Fields, Request, Response};
pub use limits::Rate;

use super::frame::{encode, ErrorCode, Settings, DEFAULT_WINDOW_SIZE, PREFACE};
use super::hpack::{Decoder, Encoder, DEFAULT_TABLE_SIZE};
use flow::RecvWindow;
use headers::HeaderBuf;
use limits::Budgets;
use stream::Streams;

/// The opaque data of the PING that follows the first GOAWAY of a graceful shutdown.
const DRAIN_PING: [u8; 8] = *b"wl-drain";

/// A header block being collected: HEADERS without END_HEADERS, then CONTINUATION.
#[derive(Clone, Copy, Debug)]
struct PendingBlock {
    stream_id: u32,
    end_stream: bool,
    self_dependency: bool,
    continuations: u32,
}

/// Where a graceful shutdown is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shutdown {
    /// Not shutting down.
    No,
    /// GOAWAY with 2^31-1 and a PING sent; the PING's ACK brings the final GOAWAY.
    Draining,
    /// The final GOAWAY was sent with this last stream id: later streams are refused.
    Final(u32),
}

/// Which end of the connection this is: it decides who opens streams (the client,
/// odd ids), which preface is sent and expected, and how header blocks are read
/// (requests by a server, responses by a client).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Accepts streams, reads requests, sends responses ([`Connection::server`]).
    Server,
    /// Opens streams, sends requests, reads responses ([`Connection::client`]).
    Client,
}

/// An HTTP/2 connection, server or client role (see the [module docs](self) for the
/// contract).
#[derive(Debug)]
pub struct Connection {
    role: Role,
    cfg: Config,
    preface_seen: bool,
    /// The peer's first SETTINGS frame arrived.
    settings_seen: bool,
    /// When our unacknowledged SETTINGS were sent.
    settings_sent: Option<Instant>,
    error: Option<ConnError>,
    out: Vec<u8>,
    out_pos: usize,
    streams: Streams,
    /// The peer's settings, in force.
    peer: Settings,
    /// Our SETTINGS_INITIAL_WINDOW_SIZE as acknowledged.
    local_window: u32,
    decoder: Decoder,
    encoder: Encoder,
    headers: HeaderBuf,
    block: Vec<u8>,
    pending_block: Option<PendingBlock>,
    /// The header block we encode.
    scratch: Vec<u8>,
    conn_recv: RecvWindow,
    conn_send: i64,
    budgets: Budgets,
    shutdown: Shutdown,
    peer_goaway: Option<u32>,
    now: Instant,
    idle_since: Option<Instant>,
}

impl Connection {
    /// A server connection, its preface (our SETTINGS, and a WINDOW_UPDATE raising the
    /// connection window to [`Config::connection_window_size`]) already queued. `now`
    /// starts the rate limits and the idle time.
    pub fn server(config: Config, now: Instant) -> Connection {
        Connection::new(Role::Server, config, now)
    }

    /// A client connection, its preface (the connection preface string, our SETTINGS
    /// with ENABLE_PUSH 0, and a WINDOW_UPDATE raising the connection window to
    /// [`Config::connection_window_size`]) already queued: write it before anything else,
    /// then open streams with [`send_request`](Connection::send_request) (at once: there
    /// is no need to wait for the server's SETTINGS). `now` starts the rate limits and
    /// the idle time.
    pub fn client(config: Config, now: Instant) -> Connection {
        Connection::new(Role::Client, config, now)
    }

    fn new(role: Role, config: Config, now: Instant) -> Connection {
        let cfg = config.checked();
        let mut out = Vec::with_capacity(128);
        if role == Role::Client {
            out.extend_from_slice(PREFACE);
        }
        encode::settings(&mut out, cfg.settings());
        let raise = cfg.connection_window_size - DEFAULT_WINDOW_SIZE;
        if raise > 0 {
            encode::window_update(&mut out, 0, raise);
        }
        Connection {
            role,
            // A server expects the client's preface string; a client none.
            preface_seen: role == Role::Client,
            settings_seen: false,
            settings_sent: Some(now),
            error: None,
            out,
            out_pos: 0,
            streams: Streams::new(cfg.closed_streams_remembered as usize),
            peer: Settings::default(),
            local_window: DEFAULT_WINDOW_SIZE,
            decoder: Decoder::new(DEFAULT_TABLE_SIZE),
            encoder: Encoder::new(),
            headers: HeaderBuf::default(),
            block: Vec::new(),
            pending_block: None,
            scratch: Vec::new(),
            conn_recv: RecvWindow::new(cfg.connection_window_size, cfg.connection_window_size),
            conn_send: i64::from(DEFAULT_WINDOW_SIZE),
            budgets: Budgets::new(&cfg, now),
            shutdown: Shutdown::No,
            peer_goaway: None,
            now,
            idle_since: Some(now),
            cfg,
        }
    }

    /// The bytes to send, in order. Write them to the transport and call
    /// [`consume_output`](Connection::consume_output) with how many were written.
    pub fn output(&self) -> &[u8] {
        self.out.get(self.out_pos..).unwrap_or_default()
    }

    /// Drops the first `n` bytes of [`output`](Connection::output) (sent).
    pub fn consume_output(&mut self, n: usize) {
        self.out_pos = (self.out_pos + n).min(self.out.len());
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
            if self.out.capacity() > 2 * self.cfg.max_output {
                self.out = Vec::new();
            }
        } else if self.out_pos >= 64 << 10 && self.out_pos * 2 >= self.out.len() {
            self.out.drain(..self.out_pos);
            self.out_pos = 0;
        }
    }

    /// How many bytes wait in the output.
    fn pending_output(&self) -> usize {
        self.out.len() - self.out_pos
    }

    /// Whether nothing is left to do but flush the output and close: a connection
    /// error, or our final GOAWAY sent ([`shutdown`](Connection::shutdown) or
    /// [`go_away`](Connection::go_away)) and no stream open.
    ///
    /// The peer's GOAWAY does not end the connection by itself (the peer closes it when
    /// it is done, and may still send PING or SETTINGS until then);
    /// [`peer_went_away`](Connection::peer_went_away) says whether one came.
    pub fn is_done(&self) -> bool {
        self.error.is_some()
            || (self.streams.len() == 0 && matches!(self.shutdown, Shutdown::Final(_)))
    }

    /// The last stream id of the peer's GOAWAY, if it sent one (it opens no more
    /// streams).
    pub fn peer_went_away(&self) -> Option<u32> {
        self.peer_goaway
    }

    /// Since when no stream has been open (the connection's start at first), or `None`
    /// while streams are open: the caller's idle timeout runs from there. Times are
    /// the `now` of the last [`recv`](Connection::recv) call.
    pub fn idle_since(&self) -> Option<Instant> {
        self.idle_since
    }

    /// Since when our SETTINGS have awaited the peer's ACK, or `None` once acknowledged:
    /// the caller may close with SETTINGS_TIMEOUT (§6.5.3) after a while.
    pub fn settings_pending_since(&self) -> Option<Instant> {
        self.settings_sent
    }

    /// The peer's settings in force.
    pub fn peer_settings(&self) -> &Settings {
        &self.peer
    }

    /// The configuration in force (clamped, see [`Config::checked`]).
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// How many streams are open.
    pub fn open_streams(&self) -> usize {
        self.streams.len()
    }

    /// This connection's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The highest stream id the peer has opened (0 for a client: servers open none,
    /// push being disabled).
    pub fn last_stream_id(&self) -> u32 {
        self.streams.last_peer_id
    }

    /// The connection error the connection ended with, if any.
    pub fn error(&self) -> Option<&ConnError> {
        self.error.as_ref()
    }

    /// The header buffer's capacity in bytes (for the fuzz target's memory checks).
    #[cfg(feature = "fuzzing")]
    fn headers_capacity(&self) -> usize {
        self.headers.capacity()
    }

    /// Ends the connection on a connection error: GOAWAY queued, the error kept.
    fn fail(&mut self, e: ConnError) -> ConnError {
        if let Some(first) = &self.error {
            return first.clone();
        }
        let last = match self.shutdown {
            Shutdown::Final(last) => last.min(self.streams.last_peer_id),
            _ => self.streams.last_peer_id,
        };
        let debug = e.to_string();
        let debug = debug.as_bytes();
        encode::goaway(
            &mut self.out,
            last,
            e.code(),
            debug.get(..128).unwrap_or(debug),
        );
        self.shutdown = Shutdown::Final(last);
        self.error = Some(e.clone());
        e
    }

    /// Queues a connection-level WINDOW_UPDATE if the released bytes call for one.
    fn release_connection(&mut self, delivered: u64, extra: u32) {
        if let Some(inc) = self.conn_recv.release(delivered, extra) {
            encode::window_update(&mut self.out, 0, inc);
        }
    }

    /// Takes out the streams both sides have closed, giving their unreleased bytes back
    /// to the connection window.
    fn reap(&mut self) {
        let unreleased = self.streams.reap();
        self.reaped(unreleased);
    }

    /// After streams were taken out: what they had not released goes back to the
    /// connection window; with none left, the connection is idle.
    fn reaped(&mut self, unreleased: u64) {
        if unreleased > 0 {
            self.release_connection(unreleased, 0);
        }
        if self.streams.len() == 0 && self.idle_since.is_none() {
            self.idle_since = Some(self.now);
        }
    }

    /// Sends RST_STREAM and forgets the stream; `true` if it was open (the application
    /// knew it).
    fn reset_stream(&mut self, id: u32, code: ErrorCode) -> bool {
        encode::rst_stream(&mut self.out, id, code);
        match self.streams.remove(id, stream::Closed::LocalReset) {
            Some(s) => {
                self.release_connection(s.recv.unreleased, 0);
                self.reap();
                true
            }
            None => false,
        }
    }
}
