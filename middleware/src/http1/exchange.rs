//! One connection's HTTP/1.1 exchange, step by step: the request head, an inline or a
//! streamed or collected body, the application's answer, then the next request (or the
//! close, or the switch to an upgraded protocol). Sans-IO apart from the connection view
//! it reads from and writes to.

use std::time::{Duration, Instant};

use wireloop::{Action, Conn, ConnId};

use super::app::{App, BodyMode};
use super::chunked::{ChunkedDecoder, Decoded};
use super::date::HttpDate;
use super::parse::{header_slots, parse_request, BodyLength};
use super::response::{put_continue, put_error, RespState, Response};
use super::Config;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Waiting for a request head.
    Head,
    /// A small collected body is arriving; nothing consumed yet (zero-copy delivery).
    Inline,
    /// Reading a body (the head was consumed; if collected, it is in `head_buf`).
    Body,
    /// The request is read; waiting for the response to complete.
    Wait,
    /// Switched protocols: events go to `App::upgraded`.
    Upgraded,
    /// Closing: input is dropped.
    Dead,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Collect,
    Stream,
}

#[derive(Clone, Debug)]
enum Framing {
    Length(u64),
    Chunked(ChunkedDecoder),
}

/// What a connection is waiting for, for timeouts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Nothing (the application is answering, or upgraded).
    Nothing,
    /// Between requests, no byte of the next one yet.
    Idle,
    /// The rest of a request head.
    Head,
    /// More of a request body.
    Body,
}

/// The HTTP/1.1 state of one connection (until it upgrades).
pub(crate) struct Entry<S> {
    pub(crate) phase: Phase,
    mode: Mode,
    framing: Framing,
    head_len: usize,
    inline_total: usize,
    pub(crate) resp: RespState,
    /// `App::request` ran for the current request.
    pub(crate) answering: bool,
    head_buf: Vec<u8>,
    body_buf: Vec<u8>,
    pub(crate) peer_eof: bool,
    /// Pipelined requests wait for output to drain.
    pub(crate) blocked: bool,
    pub(crate) wait: Wait,
    /// The read timeout the reactor has (`None`: not set yet).
    armed: Option<Option<Duration>>,
    /// When the current head began to arrive: a head has `header_timeout` in all, however
    /// it trickles in (the reactor's read timeout only bounds the silence between bytes).
    head_since: Option<Instant>,
    pub(crate) served: u64,
    pub(crate) state: S,
}

/// What the loop over a connection's input does next.
enum Step {
    Continue,
    Stop,
    Close,
}

/// Everything the steps need from the adapter besides the entry.
pub(crate) struct Cx<'h, A> {
    pub(crate) app: &'h mut A,
    pub(crate) cfg: &'h Config,
    pub(crate) date: &'h HttpDate,
    /// The connection being served.
    pub(crate) id: ConnId,
    /// The server is shutting down gracefully: each response closes its connection.
    pub(crate) draining: bool,
}

fn timeout_of(cfg: &Config, wait: Wait, served: u64) -> Option<Duration> {
    match wait {
        Wait::Nothing => None,
        Wait::Idle if served == 0 => cfg.header_timeout,
        Wait::Idle => cfg.keep_alive_timeout,
        Wait::Head => cfg.header_timeout,
        Wait::Body => cfg.body_timeout,
    }
}

impl<S: Default> Entry<S> {
    /// A connection's state before its first request.
    pub(crate) fn new() -> Entry<S> {
        Entry {
            phase: Phase::Head,
            mode: Mode::Collect,
            framing: Framing::Length(0),
            head_len: 0,
            inline_total: 0,
            resp: RespState::default(),
            answering: false,
            head_buf: Vec::new(),
            body_buf: Vec::new(),
            peer_eof: false,
            blocked: false,
            wait: Wait::Nothing,
            armed: None,
            head_since: None,
            served: 0,
            state: S::default(),
        }
    }
}

/// The connection now waits for `wait`. Its read timeout becomes that wait's when the
/// input has been processed as far as it goes ([`sync_wait`]): pipelined requests pass
/// through several waits in one event and arm the reactor's timeout once.
pub(crate) fn set_wait<S>(e: &mut Entry<S>, wait: Wait) {
    e.wait = wait;
}

/// Gives the connection the read timeout of what it waits for now (the reactor closes it
/// when no byte arrives in time; `closing` then answers 408 where one is due).
pub(crate) fn sync_wait<S, T>(cfg: &Config, e: &mut Entry<S>, conn: &mut Conn<'_, T>) {
    let timeout = timeout_of(cfg, e.wait, e.served);
    if e.armed != Some(timeout) {
        e.armed = Some(timeout);
        conn.set_read_timeout(timeout);
    }
}

/// Cuts the current wait's read timeout to at most `limit`, from now (a drain's grace
/// for an idle connection).
pub(crate) fn shorten_wait<S, T>(e: &mut Entry<S>, limit: Duration, conn: &mut Conn<'_, T>) {
    let timeout = match e.armed {
        Some(Some(t)) => t.min(limit),
        _ => limit,
    };
    e.armed = Some(Some(timeout));
    conn.set_read_timeout(Some(timeout));
}

impl<S> Entry<S> {
    /// Whether a timeout now is answered with 408: a head is arriving, or a body whose
    /// response has not started.
    pub(crate) fn owes_408(&self) -> bool {
        match self.wait {
            Wait::Head => true,
            Wait::Body => !self.resp.is_started(),
            _ => false,
        }
    }
}

/// The current response, writing to `out`.
macro_rules! response {
    ($cx:expr, $e:expr, $out:expr) => {
        Response::new(
            &mut $out,
            &mut $e.resp,
            $cx.date,
            Some($cx.id),
            $cx.cfg.output_high_water,
        )
    };
}

/// Processes the connection's input as far as it goes, then sets the read timeout for
/// what it waits for. `resume`: offer the application to continue an open response first.
pub(crate) fn drive<A: App, T>(
    cx: &mut Cx<'_, A>,
    e: &mut Entry<A::State>,
    conn: &mut Conn<'_, T>,
    resume: bool,
) -> Action {
    let action = steps(cx, e, conn, resume);
    sync_wait(cx.cfg, e, conn);
    action
}

fn steps<A: App, T>(
    cx: &mut Cx<'_, A>,
    e: &mut Entry<A::State>,
    conn: &mut Conn<'_, T>,
    resume: bool,
) -> Action {
    if resume
        && e.answering
        && !e.resp.is_done()
        && matches!(e.phase, Phase::Body | Phase::Wait)
        && conn.output_len() <= cx.cfg.output_low_water
    {
        let (_, mut out) = conn.split();
        cx.app.resume(&mut response!(cx, e, out), &mut e.state);
    }
    loop {
        let step = match e.phase {
            Phase::Dead => Step::Close,
            // The adapter switches the connection to the upgraded protocol.
            Phase::Upgraded => return Action::None,
            Phase::Head => head_step(cx, e, conn),
            Phase::Inline => inline_step(cx, e, conn),
            Phase::Body => body_step(cx, e, conn),
            Phase::Wait if e.resp.is_done() => finish_request(e),
            Phase::Wait => Step::Stop,
        };
        match step {
            Step::Continue => {}
            Step::Stop => return Action::None,
            Step::Close => {
                e.phase = Phase::Dead;
                set_wait(e, Wait::Nothing);
                let n = conn.input().len();
                conn.consume(n);
                return Action::Close;
            }
        }
    }
}

/// The request is read and answered: on to the next one (or close, or upgrade).
fn finish_request<S>(e: &mut Entry<S>) -> Step {
    e.answering = false;
    if e.body_buf.capacity() > 16 * 1024 {
        e.body_buf = Vec::new();
    } else {
        e.body_buf.clear();
    }
    e.head_buf.clear();
    if e.resp.upgrade {
        e.phase = Phase::Upgraded;
        set_wait(e, Wait::Nothing);
        return Step::Continue;
    }
    if e.resp.close {
        return Step::Close;
    }
    e.phase = Phase::Head;
    set_wait(e, Wait::Idle);
    Step::Continue
}

fn head_step<A: App, T>(
    cx: &mut Cx<'_, A>,
    e: &mut Entry<A::State>,
    conn: &mut Conn<'_, T>,
) -> Step {
    if conn.input().is_empty() {
        if e.peer_eof {
            return Step::Close;
        }
        set_wait(e, Wait::Idle);
        return Step::Stop;
    }
    if conn.output_len() >= cx.cfg.output_high_water {
        // Pipelined requests wait until the answers so far drain (post_write/writable).
        e.blocked = true;
        return Step::Stop;
    }
    e.blocked = false;
    if e.wait != Wait::Head {
        // The next head began: its own timeout from now.
        set_wait(e, Wait::Head);
        e.head_since = Some(conn.turn_time());
    }
    let (input, mut out) = conn.split();
    let mut slots = header_slots();
    let (head_len, req) = match parse_request(input, &mut slots, cx.cfg) {
        Ok(Some(r)) => r,
        Ok(None) => {
            if e.peer_eof {
                return Step::Close;
            }
            let late = match (cx.cfg.header_timeout, e.head_since) {
                (Some(limit), Some(since)) => conn.now().saturating_duration_since(since) > limit,
                _ => false,
            };
            if late {
                // A head trickling in byte by byte (slowloris) gets no more time than one
                // that arrives and then stalls.
                log::debug!("http1: connection {}: head not complete in time", cx.id);
                let (_, mut out) = conn.split();
                put_error(&mut out, 408, cx.date);
                return Step::Close;
            }
            return Step::Stop;
        }
        Err(err) => {
            log::debug!("http1: connection {}: {err}", cx.id);
            put_error(&mut out, err.status(), cx.date);
            return Step::Close;
        }
    };
    e.resp = RespState::for_request(&req);
    if cx.draining {
        e.resp.close = true;
    }
    e.served += 1;
    e.head_len = head_len;
    let mode = cx.app.body_mode(&req, &mut e.state);
    let consumed;
    match mode {
        BodyMode::Collect => match req.body_length() {
            BodyLength::None | BodyLength::Length(0) => {
                e.answering = true;
                cx.app
                    .request(&req, &mut response!(cx, e, out), &mut e.state);
                consumed = head_len;
                e.phase = Phase::Wait;
            }
            BodyLength::Length(n) if n > cx.cfg.max_body as u64 => {
                put_error(&mut out, 413, cx.date);
                return Step::Close;
            }
            BodyLength::Length(n) if head_len + n as usize <= cx.cfg.inline_body => {
                if e.resp.expect_pending {
                    put_continue(&mut out);
                    e.resp.expect_pending = false;
                }
                let total = head_len + n as usize;
                if input.len() >= total {
                    let req = req.with_body(&input[head_len..total]);
                    e.answering = true;
                    cx.app
                        .request(&req, &mut response!(cx, e, out), &mut e.state);
                    consumed = total;
                    e.phase = Phase::Wait;
                } else {
                    e.inline_total = total;
                    e.phase = Phase::Inline;
                    // The head stays in the input until the body is there too.
                    set_wait(e, Wait::Body);
                    return Step::Stop;
                }
            }
            length => {
                if e.resp.expect_pending {
                    put_continue(&mut out);
                    e.resp.expect_pending = false;
                }
                e.head_buf.clear();
                e.head_buf.extend_from_slice(&input[..head_len]);
                e.body_buf.clear();
                e.framing = match length {
                    BodyLength::Length(n) => Framing::Length(n),
                    _ => Framing::Chunked(ChunkedDecoder::new()),
                };
                e.mode = Mode::Collect;
                e.phase = Phase::Body;
                consumed = head_len;
            }
        },
        BodyMode::Stream => {
            let req = req.streaming();
            e.answering = true;
            cx.app
                .request(&req, &mut response!(cx, e, out), &mut e.state);
            if req.has_body() {
                if e.resp.expect_pending && !e.resp.is_started() {
                    put_continue(&mut out);
                    e.resp.expect_pending = false;
                }
                e.framing = match req.body_length() {
                    BodyLength::Length(n) => Framing::Length(n),
                    _ => Framing::Chunked(ChunkedDecoder::new()),
                };
                e.mode = Mode::Stream;
                e.phase = Phase::Body;
            } else {
                cx.app.body_end(&mut response!(cx, e, out), &mut e.state);
                e.phase = Phase::Wait;
            }
            consumed = head_len;
        }
    }
    conn.consume(consumed);
    let wait = if e.phase == Phase::Body {
        Wait::Body
    } else {
        Wait::Nothing
    };
    set_wait(e, wait);
    Step::Continue
}

fn inline_step<A: App, T>(
    cx: &mut Cx<'_, A>,
    e: &mut Entry<A::State>,
    conn: &mut Conn<'_, T>,
) -> Step {
    let total = e.inline_total;
    if conn.input().len() < total {
        return if e.peer_eof { Step::Close } else { Step::Stop };
    }
    let (input, mut out) = conn.split();
    let mut slots = header_slots();
    let Ok(Some((_, req))) = parse_request(&input[..e.head_len], &mut slots, cx.cfg) else {
        // The same bytes parsed a moment ago.
        put_error(&mut out, 500, cx.date);
        return Step::Close;
    };
    let req = req.with_body(&input[e.head_len..total]);
    e.answering = true;
    cx.app
        .request(&req, &mut response!(cx, e, out), &mut e.state);
    conn.consume(total);
    e.phase = Phase::Wait;
    set_wait(e, Wait::Nothing);
    Step::Continue
}

fn body_step<A: App, T>(
    cx: &mut Cx<'_, A>,
    e: &mut Entry<A::State>,
    conn: &mut Conn<'_, T>,
) -> Step {
    if e.resp.is_done() && e.resp.close {
        // Answered early and closing: the rest of the body does not matter.
        return Step::Close;
    }
    let (input, mut out) = conn.split();
    let mut pos = 0;
    let mut complete = false;
    let mut error = None;
    while !complete {
        let piece: &[u8] = match &mut e.framing {
            Framing::Length(left) => {
                let n = (*left).min((input.len() - pos) as u64) as usize;
                let p = &input[pos..pos + n];
                pos += n;
                *left -= n as u64;
                complete = *left == 0;
                if n == 0 && !complete {
                    break;
                }
                p
            }
            Framing::Chunked(dec) => match dec.decode(&input[pos..]) {
                Ok((n, Decoded::Data(d))) => {
                    pos += n;
                    d
                }
                Ok((n, Decoded::Done)) => {
                    pos += n;
                    complete = true;
                    &[]
                }
                Ok((n, Decoded::NeedMore)) => {
                    pos += n;
                    break;
                }
                Err(err) => {
                    log::debug!("http1: connection {}: {err}", cx.id);
                    error = Some(400);
                    break;
                }
            },
        };
        if piece.is_empty() {
            continue;
        }
        match e.mode {
            Mode::Collect => {
                if e.body_buf.len() + piece.len() > cx.cfg.max_body {
                    error = Some(413);
                    break;
                }
                e.body_buf.extend_from_slice(piece);
            }
            Mode::Stream => {
                cx.app.body(piece, &mut response!(cx, e, out), &mut e.state);
                if e.resp.is_done() && e.resp.close {
                    return Step::Close;
                }
            }
        }
    }
    if let Some(status) = error {
        if !e.resp.is_started() {
            put_error(&mut out, status, cx.date);
        }
        return Step::Close;
    }
    if complete && e.mode == Mode::Stream {
        cx.app.body_end(&mut response!(cx, e, out), &mut e.state);
    }
    conn.consume(pos);
    if !complete {
        return if e.peer_eof { Step::Close } else { Step::Stop };
    }
    if e.mode == Mode::Collect {
        let (_, mut out) = conn.split();
        let mut slots = header_slots();
        let Ok(Some((_, req))) = parse_request(&e.head_buf, &mut slots, cx.cfg) else {
            put_error(&mut out, 500, cx.date);
            return Step::Close;
        };
        let req = req.with_body(&e.body_buf);
        e.answering = true;
        cx.app.request(
            &req,
            &mut Response::new(
                &mut out,
                &mut e.resp,
                cx.date,
                Some(cx.id),
                cx.cfg.output_high_water,
            ),
            &mut e.state,
        );
    }
    e.phase = Phase::Wait;
    set_wait(e, Wait::Nothing);
    Step::Continue
}

/// The client ended its input: tell the application if a response is still in progress.
pub(crate) fn client_eof<A: App, T>(
    cx: &mut Cx<'_, A>,
    e: &mut Entry<A::State>,
    conn: &mut Conn<'_, T>,
) {
    if e.answering && !e.resp.is_done() {
        let (_, mut out) = conn.split();
        cx.app.client_eof(&mut response!(cx, e, out), &mut e.state);
    }
}
