//! HTTP/2 upstream connections (a group with [`UpstreamProtocol::H2`]): many client
//! exchanges at once on each connection, one stream each, up to the peer's
//! SETTINGS_MAX_CONCURRENT_STREAMS; more connections (up to the pool size) only when
//! those are full.
//!
//! A request's head is made as for HTTP/1.1 (the same hop-by-hop removal, forwarding
//! fields and policy rewrites, `request_head`), then turned into HTTP/2 fields when its
//! stream opens; its body goes out as the windows allow. The response's head, body and
//! end are handed to the client's state as an HTTP/1.1 upstream's are, and its bytes are
//! given back to the peer's flow control as the client takes them: a slow client holds
//! its own stream's window shut, not the connection.
//!
//! The connection's input is copied out before it is decoded (one more copy than the
//! HTTP/1.1 path), so the clients' states can be reached while its events are handled.

use std::time::Instant;

use wireloop::{Conn, Control};
use wireloop_middleware::h2::conn::{Config as H2Config, Connection, SendError};
use wireloop_middleware::h2::hpack::Field;
use wireloop_middleware::http1::{header_slots, parse_request, Config};

use super::headers::hop_by_hop;
use super::state::{Client, ProxyState};
use crate::ClientId;

mod io;
mod pool;

/// Most response bytes staged for a client before its stream's window stays shut.
const STAGE_CAP: usize = 256 * 1024;

/// Most requests queued on a connection that has not connected yet (the peer's stream
/// limit is not known before its SETTINGS).
const MAX_QUEUED: usize = 100;

/// One client exchange on an HTTP/2 upstream connection.
pub(crate) struct H2Stream {
    /// Its stream (0: not opened yet: the connection is connecting, or at the peer's
    /// stream limit).
    pub id: u32,
    pub client: ClientId,
    /// The request head made for HTTP/1.1, turned into HTTP/2 fields when the stream
    /// opens.
    pub head: Vec<u8>,
    /// Request body bytes the windows have not taken yet.
    pub body: Vec<u8>,
    pub req_done: bool,
    /// The client sent `te: trailers` (gRPC).
    pub te_trailers: bool,
    /// END_STREAM went out.
    pub sent_end: bool,
    /// The response head came.
    pub answered: bool,
    /// Deadline for the response head, and when the request went out.
    pub deadline: Option<Instant>,
    pub sent_at: Option<Instant>,
    /// Response bytes passed to the client and not yet given back to the stream's
    /// window (the client's stage was full).
    pub held: usize,
    /// Finished (answered whole, failed, reset or abandoned): removed after the callback.
    pub done: bool,
    /// Body bytes went out (the request can no longer be sent again elsewhere).
    pub body_started: bool,
}

/// One HTTP/2 connection to a peer.
pub(crate) struct H2Up {
    pub group: usize,
    pub peer: usize,
    pub h2: Connection,
    pub streams: Vec<H2Stream>,
    pub connected: bool,
    /// The peer's SETTINGS came: until then one stream is opened, not more (its
    /// concurrent-stream limit is not known; a server may refuse the rest, or worse).
    pub settled: bool,
    /// No new streams: the peer sent GOAWAY, the connection failed or closes.
    pub broken: bool,
    /// Its `closed` ran.
    pub closed: bool,
    pub idle_since: Option<Instant>,
    /// Input not decoded yet (a frame split across reads).
    pub input: Vec<u8>,
}

/// The upstream connection's settings: the library's, with a connection window as large
/// as 256 streams' windows, so that streams whose clients read slowly (each holding at
/// most its own stream window of response bytes) do not shut the connection's window on
/// the others.
fn upstream_config() -> H2Config {
    let d = H2Config::default();
    H2Config {
        connection_window_size: d.initial_window_size.saturating_mul(256),
        ..d
    }
}

impl H2Up {
    fn new(group: usize, peer: usize, now: Instant) -> H2Up {
        H2Up {
            group,
            peer,
            h2: Connection::client(upstream_config(), now),
            streams: Vec::new(),
            connected: false,
            settled: false,
            broken: false,
            closed: false,
            idle_since: None,
            input: Vec::new(),
        }
    }

    /// How many more requests may be queued on it now: the peer's concurrent-stream
    /// limit less the streams open and queued (before its SETTINGS, whose limit is not
    /// known yet, up to 100 queued).
    pub(crate) fn room(&self) -> usize {
        if self.broken || self.closed {
            return 0;
        }
        let queued = self.streams.iter().filter(|s| s.id == 0).count();
        if self.settled {
            self.h2.available_streams().saturating_sub(queued)
        } else {
            MAX_QUEUED.saturating_sub(self.streams.len())
        }
    }

    /// Whether another request may be queued on it now.
    pub(crate) fn has_room(&self) -> bool {
        self.room() > 0
    }

    /// Whether it serves any exchange.
    pub(crate) fn busy(&self) -> bool {
        self.streams.iter().any(|s| !s.done)
    }
}

type UpConn<'c, 'a, C> = &'c mut Conn<'a, ProxyState<C>>;

/// Client exchange `cid`'s state, through the loop.
fn client_of<'s, C>(
    ctl: &'s mut Control<'_, ProxyState<C>>,
    cid: ClientId,
) -> Option<&'s mut Client<C>> {
    ctl.state(cid.conn)?
        .stream_state(cid.stream)
        .and_then(|p| p.0.client())
}

/// Opens a stream on `h2` for `head` (an HTTP/1.1 request head the proxy made, whose
/// hop-by-hop fields are gone; `te_trailers`: the client asked for trailers): its fields
/// turned into HTTP/2's, names lowercased into the reused `names`.
fn send_head(
    h2: &mut Connection,
    head: &[u8],
    scheme: &[u8],
    te_trailers: bool,
    end_stream: bool,
    cfg: &Config,
    names: &mut Vec<u8>,
) -> Result<u32, SendError> {
    let mut slots = header_slots();
    let Ok(Some((_, req))) = parse_request(head, &mut slots, cfg) else {
        return Err(SendError::Invalid);
    };
    names.clear();
    let mut kept = Vec::with_capacity(16);
    let mut authority: &[u8] = b"";
    for (name, value) in req.headers() {
        if name.eq_ignore_ascii_case("host") {
            authority = value;
            continue;
        }
        if hop_by_hop(name) {
            continue;
        }
        let at = names.len();
        names.extend(name.bytes().map(|b| b.to_ascii_lowercase()));
        kept.push((at, names.len(), value));
    }
    let mut fields = Vec::with_capacity(kept.len() + 5);
    fields.push(Field::new(b":method", req.method().as_bytes()));
    fields.push(Field::new(b":scheme", scheme));
    fields.push(Field::new(b":authority", authority));
    fields.push(Field::new(b":path", req.target().as_bytes()));
    for (a, b, value) in kept {
        fields.push(Field::new(names.get(a..b).unwrap_or_default(), value));
    }
    if te_trailers {
        // The one `te` HTTP/2 allows, which gRPC needs end to end.
        fields.push(Field::new(b"te", b"trailers"));
    }
    h2.send_request(&fields, end_stream)
}

/// Most times one request is moved to another connection because the one it was on
/// could not take it (GOAWAY, REFUSED_STREAM, closed before it went out).
const MAX_REQUEUES: u8 = 2;

/// Gives stream `s`'s request back to client `c` to be sent on another connection, if
/// none of its body went out and it was not moved too often: `true` if so (the stream
/// is done here; assign the client again).
fn requeue<C>(c: &mut Client<C>, s: &mut H2Stream) -> bool {
    if s.body_started || c.replays >= MAX_REQUEUES || s.head.is_empty() {
        return false;
    }
    c.replays += 1;
    c.head_len = s.head.len();
    c.req_stage.clear();
    c.req_stage.append(&mut s.head);
    c.req_stage.append(&mut s.body);
    c.req_done = s.req_done;
    c.up = None;
    s.done = true;
    true
}

/// The stream record for client `c`'s request (its staged head and body moved out).
fn stream_for<C>(c: &mut Client<C>) -> H2Stream {
    let body = c.req_stage.split_off(c.head_len.min(c.req_stage.len()));
    let head = std::mem::take(&mut c.req_stage);
    H2Stream {
        id: 0,
        client: c.id,
        head,
        body,
        req_done: c.req_done,
        te_trailers: c.te_trailers,
        sent_end: false,
        answered: false,
        deadline: None,
        sent_at: None,
        held: 0,
        done: false,
        body_started: false,
    }
}
