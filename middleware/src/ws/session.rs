//! One WebSocket connection after the handshake, in either role: the receive state
//! machine, the send side ([`Ws`]), and the glue that turns connection events into
//! [`WsHandler`] calls.

use wireloop::{Action, Conn, ConnId, Error, Handle};

use super::frame::{encode_header, Opcode, MAX_CONTROL, MAX_HEADER};
use super::protocol::{
    close_payload, code, encode_frame, Chunk, CloseFrame, Event, Message, MessageKind, Protocol,
    Role, Src, WsError,
};
use super::{Config, WsHandler};

/// Masking keys for the client role, drawn from the system's CSPRNG 16 at a time.
struct Keys {
    pool: [u8; 64],
    pos: usize,
}

impl Keys {
    fn new() -> Keys {
        Keys {
            pool: [0; 64],
            pos: 64,
        }
    }

    fn next(&mut self) -> [u8; 4] {
        if self.pos >= self.pool.len() {
            if getrandom::fill(&mut self.pool).is_err() {
                log::error!("ws: the system random generator failed; reusing old masking keys");
            }
            self.pos = 0;
        }
        let k = &self.pool[self.pos..self.pos + 4];
        self.pos += 4;
        [k[0], k[1], k[2], k[3]]
    }
}

/// The send side of a connection.
pub(crate) struct Link {
    role: Role,
    close_sent: bool,
    keys: Option<Box<Keys>>,
    /// Masked frames are assembled here (client role).
    tmp: Vec<u8>,
    protocol: Option<String>,
}

/// Per-connection WebSocket state.
pub(crate) struct Session<S> {
    pub(crate) proto: Protocol,
    pub(crate) link: Link,
    pub(crate) state: S,
    pub(crate) peer_close: Option<CloseFrame>,
    pub(crate) error: Option<WsError>,
    pub(crate) opened: bool,
}

impl<S> Session<S> {
    pub(crate) fn new(role: Role, cfg: &Config, state: S, protocol: Option<String>) -> Session<S> {
        Session {
            proto: Protocol::new(role, cfg.max_message, cfg.stream),
            link: Link {
                role,
                close_sent: false,
                keys: (role == Role::Client).then(|| Box::new(Keys::new())),
                tmp: Vec::new(),
                protocol,
            },
            state,
            peer_close: None,
            error: None,
            opened: false,
        }
    }

    pub(crate) fn set_protocol(&mut self, protocol: Option<String>) {
        self.link.protocol = protocol;
    }

    /// The error to report in `closed`: the connection's own, else this session's.
    pub(crate) fn closed_error(&mut self, err: Option<Error>) -> Option<Error> {
        err.or_else(|| self.error.take().map(Error::layer))
    }
}

/// A WebSocket connection during a [`WsHandler`] callback: send messages, ping, close,
/// watch the output queue, reach the loop. Valid for the duration of the callback.
///
/// Sends after [`close`](Ws::close) (or after the peer's close) are ignored and return
/// `false`. Every send is queued on the connection's output; when the queue passes the
/// loop's high-water mark the loop stops reading from this peer until it drains, and
/// [`WsHandler::writable`] is called then. A broadcaster checks
/// [`output_len`](Ws::output_len) to skip or drop a slow client instead of queueing more.
pub struct Ws<'a, 'c> {
    conn: &'a mut (dyn Wire + 'c),
    link: &'a mut Link,
}

/// What [`Ws`] needs of a connection, whatever the connection's state type (the HTTP/1.1
/// adapter's for a server, the client's own for a dialed one).
pub(crate) trait Wire {
    fn write(&mut self, data: &[u8]);
    fn output_len(&self) -> usize;
    fn output_high_water(&self) -> usize;
    fn id(&self) -> ConnId;
    fn handle(&self) -> &Handle;
    fn peer_addr(&self) -> std::io::Result<wireloop::NetAddr>;
    fn loop_index(&self) -> usize;
}

impl<T> Wire for Conn<'_, T> {
    fn write(&mut self, data: &[u8]) {
        Conn::write(self, data)
    }
    fn output_len(&self) -> usize {
        Conn::output_len(self)
    }
    fn output_high_water(&self) -> usize {
        Conn::output_high_water(self)
    }
    fn id(&self) -> ConnId {
        Conn::id(self)
    }
    fn handle(&self) -> &Handle {
        Conn::handle(self)
    }
    fn peer_addr(&self) -> std::io::Result<wireloop::NetAddr> {
        Conn::peer_addr(self)
    }
    fn loop_index(&self) -> usize {
        Conn::loop_index(self)
    }
}

impl<'a, 'c> Ws<'a, 'c> {
    pub(crate) fn new(conn: &'a mut (dyn Wire + 'c), link: &'a mut Link) -> Ws<'a, 'c> {
        Ws { conn, link }
    }

    /// Sends a text message (one frame).
    pub fn send_text(&mut self, text: &str) -> bool {
        self.frame(true, Opcode::TEXT, text.as_bytes())
    }

    /// Sends a binary message (one frame).
    pub fn send_binary(&mut self, data: &[u8]) -> bool {
        self.frame(true, Opcode::BINARY, data)
    }

    /// Sends `msg` (one frame).
    pub fn send(&mut self, msg: Message<'_>) -> bool {
        match msg {
            Message::Text(t) => self.send_text(t),
            Message::Binary(b) => self.send_binary(b),
        }
    }

    /// Sends one frame of a fragmented message: `first` starts a message of `kind`, the
    /// others continue it, `last` ends it. Frames of one message must not be interleaved
    /// with other messages (control frames may be). For text, the concatenation must be
    /// UTF-8 (a piece may end inside a character).
    pub fn send_fragment(
        &mut self,
        kind: MessageKind,
        data: &[u8],
        first: bool,
        last: bool,
    ) -> bool {
        let op = match (first, kind) {
            (false, _) => Opcode::CONTINUATION,
            (true, MessageKind::Text) => Opcode::TEXT,
            (true, MessageKind::Binary) => Opcode::BINARY,
        };
        self.frame(last, op, data)
    }

    /// Sends a ping (at most 125 bytes; `false` if longer). The peer's pong reaches
    /// [`WsHandler::pong`].
    pub fn ping(&mut self, payload: &[u8]) -> bool {
        payload.len() <= MAX_CONTROL && self.frame(true, Opcode::PING, payload)
    }

    /// Starts the closing handshake with `code` (see [`code`](super::code)) and `reason`
    /// (cut to fit 123 bytes). A server closes the connection once the frame is written;
    /// a client waits for the server's close. `false` if a close was already sent.
    pub fn close(&mut self, code: u16, reason: &str) -> bool {
        if self.link.close_sent {
            return false;
        }
        let mut p = [0u8; MAX_CONTROL];
        let n = close_payload(code, reason, &mut p);
        self.frame(true, Opcode::CLOSE, &p[..n]);
        self.link.close_sent = true;
        true
    }

    /// Whether a close frame was sent (nothing more can be sent).
    pub fn is_closing(&self) -> bool {
        self.link.close_sent
    }

    /// Bytes queued on the connection and not yet taken by the socket.
    pub fn output_len(&self) -> usize {
        self.conn.output_len()
    }

    /// The loop's output high-water mark (above it the loop stops reading this peer).
    pub fn output_high_water(&self) -> usize {
        self.conn.output_high_water()
    }

    /// The connection's id (for [`Handle::wake`] from other threads, or
    /// [`Control::wake`](wireloop::Control::wake) / [`Control::output_len`](wireloop::Control::output_len) on this loop).
    pub fn id(&self) -> ConnId {
        self.conn.id()
    }

    /// The subprotocol agreed on in the handshake, if any.
    pub fn protocol(&self) -> Option<&str> {
        self.link.protocol.as_deref()
    }

    /// A handle for cross-thread work (wake other connections, shut down, ...).
    pub fn handle(&self) -> &Handle {
        self.conn.handle()
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> std::io::Result<wireloop::NetAddr> {
        self.conn.peer_addr()
    }

    /// Index of the loop serving this connection.
    pub fn loop_index(&self) -> usize {
        self.conn.loop_index()
    }

    fn frame(&mut self, fin: bool, op: Opcode, payload: &[u8]) -> bool {
        if self.link.close_sent {
            return false;
        }
        match &mut self.link.keys {
            None => {
                let mut h = [0u8; MAX_HEADER];
                let n = encode_header(&mut h, fin, op, None, payload.len() as u64);
                self.conn.write(&h[..n]);
                self.conn.write(payload);
            }
            Some(keys) => {
                let key = keys.next();
                let tmp = &mut self.link.tmp;
                tmp.clear();
                encode_frame(tmp, fin, op, Some(key), payload);
                self.conn.write(tmp);
                if tmp.capacity() > 64 * 1024 {
                    *tmp = Vec::new();
                }
            }
        }
        true
    }
}

/// What the connection does after a handler callback.
fn after<S>(s: &Session<S>) -> Action {
    if s.link.close_sent && (s.link.role == Role::Server || s.proto.is_closed()) {
        Action::Close
    } else {
        Action::None
    }
}

/// Fails the connection: close frame with the error's code, then close.
pub(crate) fn fail<S, T>(s: &mut Session<S>, conn: &mut Conn<'_, T>, e: WsError) -> Action {
    log::debug!("ws: connection {}: {e}", conn.id());
    let c = e.close_code();
    Ws::new(conn, &mut s.link).close(c, "");
    s.proto.set_closed();
    s.error = Some(e);
    let n = conn.input().len();
    conn.consume(n);
    Action::Close
}

/// The connection is open: `open`.
pub(crate) fn open<W: WsHandler, T>(
    h: &mut W,
    s: &mut Session<W::State>,
    conn: &mut Conn<'_, T>,
) -> Action {
    s.opened = true;
    h.open(&mut Ws::new(conn, &mut s.link), &mut s.state);
    after(s)
}

/// `woken` or `writable`.
pub(crate) fn poke<W: WsHandler, T>(
    h: &mut W,
    s: &mut Session<W::State>,
    conn: &mut Conn<'_, T>,
    woken: bool,
) -> Action {
    if s.proto.is_closed() || s.link.close_sent {
        return after(s);
    }
    let mut ws = Ws::new(conn, &mut s.link);
    if woken {
        h.woken(&mut ws, &mut s.state);
    } else {
        h.writable(&mut ws, &mut s.state);
    }
    after(s)
}

/// Input arrived: run the frames through the protocol and the handler. Payloads that lie
/// whole in the input reach the handler from there, unmasked in place.
pub(crate) fn data<W: WsHandler, T>(
    h: &mut W,
    s: &mut Session<W::State>,
    conn: &mut Conn<'_, T>,
) -> Action {
    loop {
        if s.proto.is_closed() {
            let n = conn.input().len();
            conn.consume(n);
            return after(s);
        }
        let (n, ev) = match s.proto.step(conn.input_mut()) {
            Ok(None) => return after(s),
            Ok(Some(x)) => x,
            Err(e) => return fail(s, conn, e),
        };
        let Some(ev) = ev else {
            conn.consume(n);
            continue;
        };
        match ev {
            Event::Message(kind, src) => {
                let Session {
                    proto, link, state, ..
                } = s;
                let r = conn.with_input(|input, conn| {
                    let data: &[u8] = match src {
                        Src::Input { start, end } => &input[start..end],
                        Src::Buf => proto.buffered(),
                    };
                    let msg = match kind {
                        MessageKind::Binary => Message::Binary(data),
                        MessageKind::Text => match std::str::from_utf8(data) {
                            Ok(t) => Message::Text(t),
                            Err(_) => return Err(WsError::InvalidUtf8),
                        },
                    };
                    if !link.close_sent {
                        h.message(&mut Ws::new(conn, link), msg, state);
                    }
                    Ok(())
                });
                conn.consume(n);
                if let Err(e) = r {
                    return fail(s, conn, e);
                }
            }
            Event::Chunk {
                kind,
                first,
                last,
                len,
            } => {
                if !s.link.close_sent {
                    let Session { link, state, .. } = s;
                    conn.with_input(|input, conn| {
                        let chunk = Chunk {
                            kind,
                            data: &input[..len],
                            first,
                            last,
                        };
                        h.chunk(&mut Ws::new(conn, link), chunk, state);
                    });
                }
                conn.consume(n);
            }
            Event::Ping => {
                conn.consume(n);
                Ws::new(conn, &mut s.link).frame(true, Opcode::PONG, s.proto.control());
            }
            Event::Pong => {
                conn.consume(n);
                if !s.link.close_sent {
                    h.pong(
                        &mut Ws::new(conn, &mut s.link),
                        s.proto.control(),
                        &mut s.state,
                    );
                }
            }
            Event::Close(c) => {
                s.peer_close = Some(s.proto.close_frame(c));
                let mut ws = Ws::new(conn, &mut s.link);
                if !ws.is_closing() {
                    if c == code::NO_STATUS {
                        ws.frame(true, Opcode::CLOSE, &[]);
                        ws.link.close_sent = true;
                    } else {
                        ws.close(c, "");
                    }
                }
                let n = conn.input().len();
                conn.consume(n);
                return Action::Close;
            }
        }
        if s.link.close_sent && s.link.role == Role::Server {
            let n = conn.input().len();
            conn.consume(n);
            return Action::Close;
        }
    }
}
