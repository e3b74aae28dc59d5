//! WebSocket (RFC 6455) for wireloop: a server wrapper over the HTTP/1.1 adapter and a
//! client layer for dialed connections, both driving the same [`WsHandler`].
//!
//! # Server
//!
//! [`WebSocket::new(app, handler)`](WebSocket::new) is an [`http1::App`](crate::http1::App):
//! ordinary requests go to `app`, requests with `Upgrade: websocket` are offered to
//! [`WsHandler::accept`] (which routes, picks a subprotocol, or rejects), checked, answered
//! with `101 Switching Protocols`, and from then on the connection's frames drive the
//! handler. It stacks like every other handler — plain, or under
//! [`translate`](crate::translate()) with [`TlsServer`](crate::TlsServer) for `wss://`:
//!
//! ```no_run
//! use wireloop::Server;
//! use wireloop_middleware::http1::{Http1, Request, Response};
//! use wireloop_middleware::ws::{Message, WebSocket, Ws, WsHandler};
//!
//! struct Echo;
//! impl WsHandler for Echo {
//!     type State = ();
//!     fn message(&mut self, ws: &mut Ws<'_, '_>, msg: Message<'_>, _: &mut ()) {
//!         ws.send(msg);
//!     }
//! }
//!
//! # fn main() -> Result<(), wireloop::Error> {
//! let page = |_: &Request<'_>, res: &mut Response<'_>| { res.status(404).body(b""); };
//! Server::builder()
//!     .listen("tcp://0.0.0.0:8080")?
//!     .serve(move |_| Http1::server(WebSocket::new(page, Echo)))
//! # }
//! ```
//!
//! # Client
//!
//! [`WsClient::new(handler, ClientConfig { .. })`](WsClient::new) is a byte
//! [`Handler`](wireloop::Handler) for dialed connections: it writes the upgrade request
//! when the connection opens, checks the `101` (status, `Upgrade`, `Connection`,
//! `Sec-WebSocket-Accept`, subprotocol), masks every frame it sends with a fresh random
//! key, and drives the same handler. Under `translate(.., TlsClient)` it speaks `wss://`.
//! A failed handshake reaches [`WsHandler::closed`] as an error wrapping
//! [`WsError::Handshake`].
//!
//! # What the protocol layer enforces
//!
//! Masking by role (an unmasked client frame, or a masked server frame, is a protocol
//! error), reserved bits (no extensions are negotiated), reserved opcodes, fragmentation
//! rules (continuation without a start, a new message inside a fragmented one), control
//! frames (at most 125 bytes, never fragmented, allowed between fragments), UTF-8 of text
//! messages — checked piece by piece as bytes arrive, so an invalid sequence fails the
//! connection at once — and of close reasons, close codes, 64-bit lengths with the top
//! bit set, and [`Config::max_message`]. A failure sends a close frame with the matching
//! code (1002, 1007, 1009), flushes it and closes the connection; the handler's `closed`
//! gets the [`WsError`]. Pings are answered with pongs automatically; a close frame is
//! echoed and the connection closed; nothing after a close is processed.
//!
//! # Memory
//!
//! A message that arrives whole in one read is unmasked into one buffer shared by all
//! connections of the loop and handed to [`WsHandler::message`] from there — no
//! allocation per message. A message split across reads or frames is collected in the
//! connection's own buffer (at most [`Config::max_message`]; capacity beyond 64 KiB is
//! released afterwards), or, with [`Config::stream`], handed over piece by piece to
//! [`WsHandler::chunk`] without being collected. Output is the connection's queue, with
//! the loop's backpressure ([`Ws::output_len`], [`WsHandler::writable`]).

mod client;
pub mod frame;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod handshake;
pub mod protocol;
mod server;
mod session;
pub mod utf8;

pub use client::{ClientConfig, WsClient, WsClientConn};
pub use handshake::HandshakeError;
pub use protocol::{code, Chunk, CloseFrame, Message, MessageKind, Role, WsError};
pub use server::{WebSocket, WsState};
pub use session::Ws;

use crate::http1::Request;

/// Limits and delivery mode of a WebSocket connection (either role).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Largest message, and largest frame, in bytes; the connection is closed with 1009
    /// beyond. Default 16 MiB. (With [`stream`](Config::stream) only frames are limited.)
    pub max_message: usize,
    /// Deliver data as it arrives, through [`WsHandler::chunk`], instead of whole messages
    /// through [`WsHandler::message`]: for messages too large to hold. Default `false`.
    pub stream: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_message: 16 << 20,
            stream: false,
        }
    }
}

/// The answer to a WebSocket upgrade request ([`WsHandler::accept`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Accept {
    /// Serve it as a WebSocket, with this subprotocol (one the client offered, see
    /// [`handshake::offered_protocols`]) or none.
    WebSocket {
        /// The chosen subprotocol, sent back in `Sec-WebSocket-Protocol`.
        protocol: Option<String>,
    },
    /// Refuse it with this HTTP status (say 403 or 404).
    Reject(u16),
    /// Not a WebSocket route: the wrapped HTTP application answers the request.
    Http,
}

impl Accept {
    /// `Accept::WebSocket` without a subprotocol.
    pub fn websocket() -> Accept {
        Accept::WebSocket { protocol: None }
    }
}

/// A WebSocket application: one value per loop (like every wireloop handler), called only
/// on that loop's thread, with per-connection [`State`](WsHandler::State). Every method
/// but [`message`](WsHandler::message) has a default.
///
/// Order of calls for one connection: `accept` (server only) → `open` →
/// (`message` | `chunk` | `pong` | `woken` | `writable`)* → `closed`. On a server,
/// `closed` comes exactly once for every connection that was upgraded (a request that
/// `accept` refused, or whose handshake was malformed, never becomes one); on a client,
/// exactly once for every connection, even when the dial or the handshake failed.
pub trait WsHandler: 'static {
    /// Per-connection state, created with `Default` for each upgrade request.
    type State: Default + 'static;

    /// (Server) a request asks for a WebSocket: accept it (choosing a subprotocol from
    /// [`handshake::offered_protocols`]), reject it, or leave it to the HTTP application.
    /// The default accepts every request, without subprotocol. Malformed handshakes are
    /// answered (400, or 426 for a version other than 13) after this, without `open`.
    fn accept(&mut self, req: &Request<'_>, state: &mut Self::State) -> Accept {
        let _ = (req, state);
        Accept::websocket()
    }

    /// The connection is open (the `101` was sent, or received by a client).
    fn open(&mut self, ws: &mut Ws<'_, '_>, state: &mut Self::State) {
        let _ = (ws, state);
    }

    /// A whole message arrived. It borrows a buffer that is reused for the next one.
    fn message(&mut self, ws: &mut Ws<'_, '_>, msg: Message<'_>, state: &mut Self::State);

    /// A piece of a message ([`Config::stream`] only, instead of `message`).
    fn chunk(&mut self, ws: &mut Ws<'_, '_>, chunk: Chunk<'_>, state: &mut Self::State) {
        let _ = (ws, chunk, state);
    }

    /// A pong arrived (the answer to [`Ws::ping`], or unsolicited). Pings are answered
    /// without the handler.
    fn pong(&mut self, ws: &mut Ws<'_, '_>, payload: &[u8], state: &mut Self::State) {
        let _ = (ws, payload, state);
    }

    /// The connection was woken ([`wireloop::Handle::wake`] or `Control::wake`): send
    /// what another connection or thread prepared.
    fn woken(&mut self, ws: &mut Ws<'_, '_>, state: &mut Self::State) {
        let _ = (ws, state);
    }

    /// Output that had backed up past the high-water mark drained: a producer can resume.
    fn writable(&mut self, ws: &mut Ws<'_, '_>, state: &mut Self::State) {
        let _ = (ws, state);
    }

    /// The connection is gone. `close` is the peer's close frame (`None` if the connection
    /// ended without one); `err` says what failed ([`wireloop::Error::layer_error`]
    /// downcasts to [`WsError`] for protocol errors and handshake failures).
    fn closed(
        &mut self,
        state: &mut Self::State,
        close: Option<CloseFrame>,
        err: Option<wireloop::Error>,
    ) {
        let _ = (state, close, err);
    }
}
