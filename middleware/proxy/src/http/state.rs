//! What each connection of an HTTP proxy's loop carries in its own state: a client's
//! exchange, or an upstream connection's. No table on the side: a connection's data lives
//! and dies with it, and a partner reaches it with `Control::state`.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use wireloop::ConnId;
use wireloop_middleware::http1::{Http1Conn, ResponseBody, ResponseReader};

use super::h2_upstream::H2Up;
use crate::header_list::HeaderList;
use crate::phases::{ResponseHeader, UpstreamRequest};
use crate::ClientId;

/// The state of each connection of an [`HttpProxy`](crate::HttpProxy)'s loop (the
/// handler's `State`): the HTTP/1.1 adapter's on client connections, around the proxy's
/// own.
pub type ProxyState<C> = Http1Conn<ProxyConn<C>>;

/// The proxy's part of a connection's state (opaque): a client's exchange, with the
/// policy's context `C`, or an upstream connection's.
pub struct ProxyConn<C>(pub(crate) Side<C>);

impl<C> Default for ProxyConn<C> {
    fn default() -> ProxyConn<C> {
        ProxyConn(Side::Gone)
    }
}

impl<C> std::fmt::Debug for ProxyConn<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.0 {
            Side::Gone => "ProxyConn::Gone",
            Side::Client(_) => "ProxyConn::Client",
            Side::Upstream(_) => "ProxyConn::Upstream",
            Side::H2Up(_) => "ProxyConn::H2Upstream",
            Side::Probe(_) => "ProxyConn::Probe",
        })
    }
}

/// Which side a connection is on.
pub(crate) enum Side<C> {
    /// Not set up yet, or lent out for a moment.
    Gone,
    Client(Box<Client<C>>),
    Upstream(Box<Up>),
    /// An HTTP/2 upstream connection, many exchanges at once.
    H2Up(Box<H2Up>),
    /// An active health check's connection.
    Probe(Box<Probe>),
}

impl<C> Side<C> {
    pub(crate) fn client(&mut self) -> Option<&mut Client<C>> {
        match self {
            Side::Client(c) => Some(c),
            _ => None,
        }
    }

    pub(crate) fn up(&mut self) -> Option<&mut Up> {
        match self {
            Side::Upstream(u) => Some(u),
            _ => None,
        }
    }
}

/// What the client's current response is waiting for or carrying.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Nothing yet.
    #[default]
    Pending,
    /// The upstream's head is staged.
    Head,
    /// Writing the body.
    Streaming,
    /// Answer with this error status (502, 504) if nothing was sent, else abort.
    Fail(u16),
    /// Done (finished, failed, answered by the policy, or upgraded).
    Done,
}

/// One inbound connection and its current exchange.
pub(crate) struct Client<C> {
    /// The exchange: its connection and, on HTTP/2, its stream.
    pub id: ClientId,
    pub ip: String,
    /// The client's address, for the per-IP limits; `counted`: its connection counts
    /// towards them.
    pub peer_ip: Option<IpAddr>,
    pub counted: bool,
    /// The client's address and the one it connected to, for a PROXY protocol header to
    /// the upstream (known only when some group sends one).
    pub addrs: Option<(SocketAddr, SocketAddr)>,
    pub tls: bool,
    /// The server name the client asked for in its TLS handshake.
    pub sni: Option<String>,
    /// The upstream connection serving the current request.
    pub up: Option<ConnId>,
    /// Group and peer of the current attempt; `routed` once one was chosen.
    pub group: usize,
    pub peer: usize,
    pub routed: bool,
    pub key: u64,
    /// Attempts made for the current request, and the peers tried (bit per peer).
    pub attempts: u32,
    pub tried: u64,
    /// Resends of the current request after a stale pooled connection.
    pub replays: u8,
    /// Request bytes staged while no upstream connection is there yet.
    pub req_stage: Vec<u8>,
    /// How much of `req_stage` is the request head (the rest is body).
    pub head_len: usize,
    /// The client sent `te: trailers` (passed on to an HTTP/2 upstream, as gRPC needs).
    pub te_trailers: bool,
    pub req_chunked: bool,
    pub req_done: bool,
    /// The route's request body limit, and how much of the body came so far.
    pub max_body: Option<u64>,
    pub body_seen: u64,
    /// The route that chose the group (for per-route metrics).
    pub route: Option<usize>,
    pub head_request: bool,
    /// The request asked for a protocol upgrade (only then is a 101 passed on).
    pub upgrade_req: bool,
    /// GET, HEAD or OPTIONS: safe to send again on a stale connection.
    pub idempotent: bool,
    // The response, as handed over by the upstream side.
    pub answer: Answer,
    pub resp: ResponseHeader,
    pub resp_body: ResponseBody,
    pub resp_cl: Option<u64>,
    /// The response's trailer fields (from an HTTP/2 upstream), sent after its body.
    pub trailers: HeaderList,
    /// Body bytes (or tunnel bytes) waiting to be written to the client.
    pub stage: Vec<u8>,
    /// The upstream's response is complete (all of it is in `stage` or written).
    pub complete: bool,
    /// The upstream failed after the response head arrived: what arrived is passed on,
    /// then the response is cut off.
    pub cut_off: bool,
    /// The upstream left input unread because `stage` was full.
    pub up_paused: bool,
    /// HTTP/2: the upstream connection's output is backed up, so the stream's request
    /// body is held against the client's flow-control window (`App::hold_input`).
    pub up_backed: bool,
    // Tunnel (after a 101).
    pub tunnel: bool,
    pub tunnel_eof: bool,
    // For the log.
    pub method: String,
    pub target: String,
    pub started: Instant,
    /// From the request going upstream to the response head, once it came.
    pub upstream_time: Option<Duration>,
    pub sent: u64,
    /// The status to log (0: none yet).
    pub status: u16,
    /// The policy's context for the current request, and its upstream rewrite.
    pub ctx: C,
    pub rewrite: UpstreamRequest,
}

impl<C: Default> Client<C> {
    pub(crate) fn new(id: ClientId, ip: String, tls: bool, now: Instant) -> Client<C> {
        Client {
            id,
            ip,
            peer_ip: None,
            counted: false,
            addrs: None,
            tls,
            sni: None,
            up: None,
            group: 0,
            peer: 0,
            routed: false,
            key: 0,
            attempts: 0,
            tried: 0,
            replays: 0,
            req_stage: Vec::new(),
            head_len: 0,
            te_trailers: false,
            req_chunked: false,
            req_done: false,
            max_body: None,
            body_seen: 0,
            route: None,
            head_request: false,
            upgrade_req: false,
            idempotent: false,
            answer: Answer::Done,
            resp: ResponseHeader::default(),
            resp_body: ResponseBody::None,
            resp_cl: None,
            trailers: HeaderList::default(),
            stage: Vec::new(),
            complete: false,
            cut_off: false,
            up_paused: false,
            up_backed: false,
            tunnel: false,
            tunnel_eof: false,
            method: String::new(),
            target: String::new(),
            started: now,
            upstream_time: None,
            sent: 0,
            status: 0,
            ctx: C::default(),
            rewrite: UpstreamRequest::default(),
        }
    }
}

impl<C: Default> Client<C> {
    /// The state of stream `stream` of this (HTTP/2) connection's client: who the client
    /// is, from the connection's; its exchange its own. It does not count towards the
    /// per-IP connection limit (its connection does).
    pub(crate) fn for_stream(&self, stream: u32, now: Instant) -> Client<C> {
        let mut c = Client::new(
            ClientId {
                conn: self.id.conn,
                stream,
            },
            self.ip.clone(),
            self.tls,
            now,
        );
        c.peer_ip = self.peer_ip;
        c.addrs = self.addrs;
        c.sni = self.sni.clone();
        c
    }
}

/// One dialed upstream connection.
pub(crate) struct Up {
    pub group: usize,
    pub peer: usize,
    /// The client exchange it serves now.
    pub client: Option<ClientId>,
    /// Request bytes to write (through the connection's own layer) when woken.
    pub out: Vec<u8>,
    pub connected: bool,
    pub reader: ResponseReader,
    /// The current request is completely staged.
    pub req_done: bool,
    /// Deadline for the response head.
    pub deadline: Option<Instant>,
    /// When the current request went out (for the peer's latency estimate).
    pub sent_at: Option<Instant>,
    pub idle_since: Option<Instant>,
    pub tunnel: bool,
    /// Not to be reused: closing, or answered before the request was sent whole.
    pub broken: bool,
    /// Its `closed` ran: nothing is to be done to the connection any more.
    pub closed: bool,
    /// Exchanges completed on this connection.
    pub served: u32,
    /// Any response byte arrived for the current request.
    pub answered: bool,
    /// A copy of the current request when it may be sent again on another connection
    /// (idempotent, no body) should this reused connection turn out to be stale.
    pub replay: Vec<u8>,
}

impl Up {
    pub(crate) fn new(group: usize, peer: usize, client: ClientId) -> Up {
        Up {
            group,
            peer,
            client: Some(client),
            out: Vec::new(),
            connected: false,
            reader: ResponseReader::new(false),
            req_done: false,
            deadline: None,
            sent_at: None,
            idle_since: None,
            tunnel: false,
            broken: false,
            closed: false,
            served: 0,
            answered: false,
            replay: Vec::new(),
        }
    }
}

/// One active health check's connection.
pub(crate) struct Probe {
    pub group: usize,
    pub peer: usize,
    /// The request to send once connected (empty: a TCP check).
    pub request: Vec<u8>,
    /// The statuses that pass an HTTP check.
    pub expect: (u16, u16),
    /// Its result was reported: nothing more is to be done.
    pub done: bool,
}
