//! HTTP/2 in the HTTP/1.1 adapter: a connection that starts with the HTTP/2 preface
//! (prior knowledge, h2c) or whose TLS handshake chose ALPN `h2` is served by a
//! [`Connection`] (the sans-IO state machine of [`crate::h2::conn`]), and each of its
//! streams by the same [`App`] as an HTTP/1.1 exchange: the request arrives as a
//! [`Request`] (`:method`, `:path`, and `host` from `:authority`; [`Request::is_h2`]),
//! the answer is written to a [`Response`] whose wire is the stream
//! ([`wire::StreamOut`]).
//!
//! - **State**: every stream has its own application state (`App::State`, made by
//!   [`App::stream_state`] from the connection's when the stream opens, by default with
//!   `Default`; given to [`App::closed`] when it ends), so an application written for one
//!   exchange at a time serves many at once. The state made when the connection opened
//!   stays the connection's ([`Http1Conn::app_state`](super::Http1Conn::app_state)) and
//!   is given to [`App::closed`] last.
//! - **Bodies**: collected (up to `Config::max_body`, else 413) or streamed, as
//!   [`App::body_mode`] says; request data is released to the peer's flow control as it
//!   is delivered and taken (collected bodies are bounded by `max_body`; a streamed one
//!   is held back while the stream's response backs up or [`App::hold_input`] says so).
//! - **Backpressure**: a response's body waits in its stream until the windows take it;
//!   [`Response::has_room`] is false while a stream holds `output_high_water` bytes, and
//!   [`App::resume`] is offered again when the stream can send. The connection's frames
//!   move to the socket while its output is under the high-water mark; above it the
//!   connection stops reading (see the connection's `max_output`).
//! - **Ends**: a response aborted ([`Response::abort`]) resets its stream; a response
//!   complete before its request body resets the rest with NO_ERROR (RFC 9113 §8.1); a
//!   connection error sends GOAWAY and closes after flushing; a graceful shutdown sends
//!   GOAWAY, lets the streams in flight finish and closes.
//!
//! Copies: request headers are decoded once into the connection's buffer and borrowed;
//! response fields are copied into the stream's list, then HPACK-encoded; response body
//! bytes are copied into the stream, then into DATA frames, then into the socket's
//! output (three copies; HTTP/1.1 has one).

mod wire;

use std::time::Instant;

use httparse::Header;
use wireloop::{Action, Conn, ConnId, Error};

use crate::h2::conn::{Connection, Event, Request as H2Request};
use crate::h2::frame::ErrorCode;

use super::app::{App, BodyMode};
use super::date::HttpDate;
use super::parse::{bad_host, BodyLength, Request, MAX_HEADERS};
use super::response::{RespState, Response};
use super::Config;
use wire::StreamOut;

/// Header slots on the stack for a usual request (more fields take the full
/// [`MAX_HEADERS`]).
const SMALL_HEADERS: usize = 24;

/// One stream: the application's state for it and its response.
struct Stream<S> {
    id: u32,
    state: S,
    resp: RespState,
    out: StreamOut,
    mode: BodyMode,
    /// A collected body, and the request head saved to present it with (owned: the
    /// connection's header buffer is reused by the next request).
    body: Vec<u8>,
    head: Option<OwnedHead>,
    /// `App::request` ran.
    answered: bool,
    /// The request is complete (END_STREAM received).
    req_done: bool,
    /// The stream was reset (by either side): nothing more goes out.
    reset: bool,
    /// Request body bytes delivered and not yet given back to the peer's flow control:
    /// given back while the stream's response keeps up (under the high-water mark), so
    /// an application that cannot write its answer holds the client's window shut.
    unreleased: usize,
}

/// A request head kept while its body is collected.
struct OwnedHead {
    method: String,
    path: String,
    /// Names and values, one after the other, with their lengths.
    bytes: Vec<u8>,
    lens: Vec<(usize, usize)>,
    length: BodyLength,
}

/// The HTTP/2 side of a connection served by the adapter.
pub(crate) struct H2<S> {
    conn: Connection,
    streams: Vec<Stream<S>>,
    /// The application's state for the connection (made when it opened); each stream's
    /// is made from it by `App::stream_state`.
    state: S,
}

/// What an adapter callback tells the HTTP/2 side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum H2Event {
    /// Input arrived.
    Data,
    /// The connection can take output (written, drained, woken): responses continue.
    Resume,
    /// The peer ended its input.
    Eof,
}

/// What the adapter lends a call.
pub(crate) struct Cx<'x, A> {
    pub(crate) app: &'x mut A,
    pub(crate) cfg: &'x Config,
    pub(crate) date: &'x HttpDate,
}

/// Whether `input` starts with the HTTP/2 client preface: `Some(true)` yes, `Some(false)`
/// not (HTTP/1.1), `None` too short to say.
pub(crate) fn preface(input: &[u8]) -> Option<bool> {
    use crate::h2::frame::{check_preface, Preface};
    match check_preface(input) {
        Preface::Complete => Some(true),
        Preface::Partial => None,
        Preface::Mismatch => Some(false),
    }
}

impl<S> H2<S> {
    /// The application's state for the connection.
    pub(crate) fn conn_state(&mut self) -> &mut S {
        &mut self.state
    }

    /// The application's state for stream `id`, while the stream is open.
    pub(crate) fn stream_state(&mut self, id: u32) -> Option<&mut S> {
        self.streams
            .iter_mut()
            .find(|s| s.id == id)
            .map(|s| &mut s.state)
    }
}

impl<S: Default> H2<S> {
    /// A connection in HTTP/2 from its start (nothing consumed yet).
    pub(crate) fn new(cfg: &Config, now: Instant, state: S) -> Box<H2<S>> {
        let mut c = cfg.http2.clone().unwrap_or_default();
        c.max_header_list_size = c.max_header_list_size.min(cfg.max_head as u32);
        Box::new(H2 {
            conn: Connection::server(c, now),
            streams: Vec::new(),
            state,
        })
    }

    /// Runs the HTTP/2 side after `ev`: input into the connection (events to the
    /// application), responses out, frames to the socket.
    pub(crate) fn drive<A, T>(
        &mut self,
        cx: &mut Cx<'_, A>,
        conn: &mut Conn<'_, T>,
        ev: H2Event,
    ) -> Action
    where
        A: App<State = S>,
    {
        let id = conn.id();
        let now = conn.now();
        let high = cx.cfg.output_high_water;
        let mut failed = false;
        if ev == H2Event::Data {
            let H2 {
                conn: h2,
                streams,
                state,
            } = self;
            let mut sink = |e: Event<'_>| on_event(cx, streams, state, id, e);
            match h2.recv(conn.input(), now, &mut sink) {
                Ok(n) => conn.consume(n),
                Err(e) => {
                    log::debug!("h2: connection {id}: {e}");
                    failed = true;
                }
            }
        }
        if !failed {
            self.respond(cx, id, ev == H2Event::Resume || ev == H2Event::Data);
        }
        // Frames to the socket while it keeps up; above the mark they wait in the
        // connection, which then stops reading.
        if conn.output_len() < high || failed {
            let out = self.conn.output();
            let n = out.len();
            if n > 0 {
                conn.write(out);
                self.conn.consume_output(n);
            }
        }
        if failed || self.conn.is_done() || (ev == H2Event::Eof && self.conn.open_streams() == 0) {
            return Action::Close;
        }
        // No stream open: the connection waits for the next one as an idle HTTP/1.1
        // connection waits for its next request.
        let idle = self.conn.open_streams() == 0 && self.streams.is_empty();
        let timeout = if idle {
            cx.cfg.keep_alive_timeout
        } else {
            None
        };
        conn.set_read_timeout(timeout);
        Action::None
    }

    /// Offers every unfinished response a chance to go on (`resume`), hands what they
    /// wrote to the connection, and ends the streams that are done.
    fn respond<A: App<State = S>>(&mut self, cx: &mut Cx<'_, A>, id: ConnId, resume: bool) {
        let high = cx.cfg.output_high_water;
        let H2 {
            conn: h2, streams, ..
        } = self;
        for s in streams.iter_mut() {
            if resume && s.answered && !s.reset && !s.resp.is_done() && s.out.queued_len() < high {
                let mut res = Response::new(&mut s.out, &mut s.resp, cx.date, Some(id), high);
                cx.app.resume(&mut res, &mut s.state);
            }
            if s.reset {
                continue;
            }
            if s.resp.is_done() && s.out.aborted() {
                let _ = h2.reset(s.id, ErrorCode::INTERNAL_ERROR);
                s.reset = true;
                continue;
            }
            if s.out.flush(h2, s.id).is_err() {
                s.reset = true;
            }
            if s.unreleased > 0 && s.out.queued_len() < high && !cx.app.hold_input(&mut s.state) {
                h2.release(s.id, s.unreleased);
                s.unreleased = 0;
            }
            if s.out.is_sent() && !s.req_done {
                // The answer is whole before the request: the rest is not wanted.
                let _ = h2.reset(s.id, ErrorCode::NO_ERROR);
                s.reset = true;
            }
        }
        let app = &mut *cx.app;
        streams.retain_mut(|s| {
            let over = s.reset || (s.req_done && s.out.is_sent());
            if over {
                app.closed(&mut s.state, None);
            }
            !over
        });
    }

    /// A graceful shutdown: GOAWAY, the streams in flight finish. `true`: keep the
    /// connection until they have.
    pub(crate) fn draining(&mut self) -> bool {
        self.conn.shutdown();
        !self.conn.is_done()
    }

    /// The connection closed: every stream's state ends, then the connection's.
    pub(crate) fn closed<A: App<State = S>>(&mut self, app: &mut A, err: Option<Error>) {
        for mut s in self.streams.drain(..) {
            let e = err.as_ref().map(|e| Error::layer(e.to_string()));
            app.closed(&mut s.state, e);
        }
        app.closed(&mut self.state, err);
    }
}

/// One event of the connection, for the application.
fn on_event<A: App>(
    cx: &mut Cx<'_, A>,
    streams: &mut Vec<Stream<A::State>>,
    conn_state: &mut A::State,
    id: ConnId,
    e: Event<'_>,
) {
    match e {
        Event::Request {
            stream,
            request,
            end_stream,
        } => {
            let mut s = Stream {
                id: stream,
                state: cx.app.stream_state(conn_state, stream),
                resp: RespState::default(),
                out: StreamOut::default(),
                mode: BodyMode::Collect,
                body: Vec::new(),
                head: None,
                answered: false,
                req_done: end_stream,
                reset: false,
                unreleased: 0,
            };
            let length = match (end_stream, request.content_length) {
                (true, _) => BodyLength::None,
                (false, Some(n)) => BodyLength::Length(n),
                (false, None) => BodyLength::Chunked,
            };
            // Slots for the fields (and `host`): a few on the stack for the usual
            // request, the full MAX_HEADERS only when needed (4 KiB to initialize).
            let mut small = [httparse::EMPTY_HEADER; SMALL_HEADERS];
            let mut big;
            let slots: &mut [Header<'_>] = if request.fields.len() < SMALL_HEADERS {
                &mut small
            } else {
                big = [httparse::EMPTY_HEADER; MAX_HEADERS];
                &mut big
            };
            let Some((method, path, n)) = headers(&request, slots) else {
                bad_request(cx, &mut s, id, 400);
                streams.push(s);
                return;
            };
            let req = Request::from_h2(method, path, &slots[..n], length);
            s.mode = cx.app.body_mode(&req, &mut s.state);
            s.resp = RespState::for_request(&req);
            if s.mode == BodyMode::Collect && !end_stream {
                if request
                    .content_length
                    .is_some_and(|n| n > cx.cfg.max_body as u64)
                {
                    bad_request(cx, &mut s, id, 413);
                } else {
                    s.head = Some(OwnedHead::of(method, path, &slots[..n], length));
                }
            } else {
                answer(cx, &mut s, id, &req);
            }
            streams.push(s);
        }
        Event::Data {
            stream,
            data,
            end_stream,
        } => {
            let Some(s) = streams.iter_mut().find(|s| s.id == stream) else {
                return;
            };
            s.req_done |= end_stream;
            s.unreleased += data.len();
            if s.reset || s.resp.is_done() && s.head.is_none() && !s.answered {
                return;
            }
            match s.mode {
                BodyMode::Stream if s.answered => {
                    let high = cx.cfg.output_high_water;
                    let mut res = Response::new(&mut s.out, &mut s.resp, cx.date, Some(id), high);
                    if !data.is_empty() {
                        cx.app.body(data, &mut res, &mut s.state);
                    }
                    if end_stream {
                        cx.app.body_end(&mut res, &mut s.state);
                    }
                }
                _ if s.head.is_some() => {
                    if s.body.len() + data.len() > cx.cfg.max_body {
                        s.head = None;
                        s.body = Vec::new();
                        bad_request(cx, s, id, 413);
                        return;
                    }
                    s.body.extend_from_slice(data);
                    if end_stream {
                        if let Some(h) = s.head.take() {
                            let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
                            let n = h.headers(&mut slots);
                            let body = std::mem::take(&mut s.body);
                            let req = Request::from_h2(&h.method, &h.path, &slots[..n], h.length)
                                .with_body(&body);
                            answer(cx, s, id, &req);
                        }
                    }
                }
                _ => {}
            }
        }
        Event::Trailers { stream, .. } => {
            // Trailer fields are dropped, as HTTP/1.1's are; the body ends here.
            let Some(s) = streams.iter_mut().find(|s| s.id == stream) else {
                return;
            };
            s.req_done = true;
            if s.mode == BodyMode::Stream && s.answered {
                let high = cx.cfg.output_high_water;
                let mut res = Response::new(&mut s.out, &mut s.resp, cx.date, Some(id), high);
                cx.app.body_end(&mut res, &mut s.state);
            } else if let Some(h) = s.head.take() {
                let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
                let n = h.headers(&mut slots);
                let body = std::mem::take(&mut s.body);
                let req =
                    Request::from_h2(&h.method, &h.path, &slots[..n], h.length).with_body(&body);
                answer(cx, s, id, &req);
            }
        }
        Event::Reset { stream, .. } => {
            if let Some(s) = streams.iter_mut().find(|s| s.id == stream) {
                s.reset = true;
            }
        }
        _ => {}
    }
}

/// Calls the application for the request of stream `s`.
fn answer<A: App>(cx: &mut Cx<'_, A>, s: &mut Stream<A::State>, id: ConnId, req: &Request<'_>) {
    let high = cx.cfg.output_high_water;
    s.answered = true;
    let mut res = Response::new(&mut s.out, &mut s.resp, cx.date, Some(id), high);
    cx.app.request(req, &mut res, &mut s.state);
    if s.mode == BodyMode::Stream && s.req_done {
        cx.app.body_end(&mut res, &mut s.state);
    }
}

/// Answers stream `s` with an error status, without the application.
fn bad_request<A: App>(cx: &mut Cx<'_, A>, s: &mut Stream<A::State>, id: ConnId, status: u16) {
    let mut res = Response::new(&mut s.out, &mut s.resp, cx.date, Some(id), usize::MAX);
    res.status(status)
        .header("content-type", "text/plain")
        .body(super::response::reason(status).as_bytes());
}

/// The method, path and header fields of `r` in `slots` (`host` first, from
/// `:authority`, unless a `host` field came); `None` if they are not text or the
/// authority or `host` holds a byte a `Host` must not.
fn headers<'a>(r: &H2Request<'a>, slots: &mut [Header<'a>]) -> Option<(&'a str, &'a str, usize)> {
    let method = crate::text::utf8(r.method)?;
    let path = match r.path {
        Some(p) => crate::text::utf8(p)?,
        None => crate::text::utf8(r.authority?)?,
    };
    // The authority and `Host` checked as HTTP/1.1's `Host` is (`FieldScan`): no byte that
    // would let two readers see two different hosts.
    if r.authority.is_some_and(bad_host) || r.fields.get(b"host").is_some_and(bad_host) {
        return None;
    }
    let mut n = 0;
    if let (Some(a), None, Some(slot)) = (r.authority, r.fields.get(b"host"), slots.first_mut()) {
        *slot = Header {
            name: "host",
            value: a,
        };
        n = 1;
    }
    for f in r.fields.iter() {
        let slot = slots.get_mut(n)?;
        *slot = Header {
            name: crate::text::utf8(f.name)?,
            value: f.value,
        };
        n += 1;
    }
    Some((method, path, n))
}

impl OwnedHead {
    fn of(method: &str, path: &str, headers: &[Header<'_>], length: BodyLength) -> OwnedHead {
        let mut bytes = Vec::new();
        let mut lens = Vec::with_capacity(headers.len());
        for h in headers {
            bytes.extend_from_slice(h.name.as_bytes());
            bytes.extend_from_slice(h.value);
            lens.push((h.name.len(), h.value.len()));
        }
        OwnedHead {
            method: method.to_string(),
            path: path.to_string(),
            bytes,
            lens,
            length,
        }
    }

    fn headers<'a>(&'a self, slots: &mut [Header<'a>; MAX_HEADERS]) -> usize {
        let mut at = 0;
        let mut n = 0;
        for (&(k, v), slot) in self.lens.iter().zip(slots.iter_mut()) {
            let name = self.bytes.get(at..at + k).unwrap_or_default();
            *slot = Header {
                name: crate::text::utf8(name).unwrap_or_default(),
                value: self.bytes.get(at + k..at + k + v).unwrap_or_default(),
            };
            at += k + v;
            n += 1;
        }
        n
    }
}
