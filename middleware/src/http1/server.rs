//! The HTTP/1.1 server adapter: a [`Handler`] that parses requests from a connection's
//! input and hands them to an [`App`].

use std::time::{Duration, Instant};

use wireloop::{Action, Conn, ConnId, Control, Error, Handler};

use super::chunked::{ChunkedDecoder, Decoded};
use super::date::HttpDate;
use super::parse::{header_slots, parse_request, BodyLength, Request};
use super::response::{put_continue, put_error, RespState, Response};
use super::Config;

/// How the adapter delivers a request's body to the application.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BodyMode {
    /// Read the whole body first (up to [`Config::max_body`], else 413), then call
    /// [`App::request`] with it in [`Request::body`].
    #[default]
    Collect,
    /// Call [`App::request`] as soon as the head is in, then give the body in pieces to
    /// [`App::body`] as they arrive (without copying them), then call [`App::body_end`].
    /// No size limit: the application decides. Memory stays bounded when the application
    /// writes the pieces out (the loop stops reading while output is backed up).
    Stream,
}

/// What happened on an upgraded connection (see [`App::upgraded`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UpgradeEvent {
    /// The connection has just switched (the 101 is queued): the first event, delivered
    /// once, before any `Data`. A protocol that speaks first (a WebSocket server's
    /// greeting) writes here.
    Opened,
    /// Input arrived (or was left over after the upgrade request): read
    /// [`Conn::input`] and [`Conn::consume`] it.
    Data,
    /// The loop wrote this many bytes (a streaming producer can refill).
    Written(usize),
    /// Output that had backed up drained.
    Writable,
    /// The connection was woken ([`wireloop::Handle::wake`]).
    Woken,
    /// The peer closed its sending side.
    Eof,
    /// The peer closed its sending side (or reset) while backpressure holds back reading
    /// the connection (see [`wireloop::Handler::read_closed`]); `Eof` follows if reading
    /// resumes.
    ReadClosed,
}

/// An HTTP/1.1 application: answers requests. One value per loop (made by the server's
/// factory), called only on that loop's thread. Every method but [`request`](App::request)
/// has a default.
pub trait App: 'static {
    /// Per-connection application state, created with `Default` when a connection opens
    /// and dropped when it closes.
    type State: Default + 'static;

    /// A request head arrived; choose how its body is delivered. The default collects it.
    /// Not called again for the same request.
    fn body_mode(&mut self, req: &Request<'_>, state: &mut Self::State) -> BodyMode {
        let _ = (req, state);
        BodyMode::Collect
    }

    /// Answers a request: write the response to `res` now (the common case), or start it
    /// and continue in [`body`](App::body) / [`body_end`](App::body_end) /
    /// [`resume`](App::resume). With [`BodyMode::Collect`] the whole body is in
    /// `req.body()`; with [`BodyMode::Stream`] the body follows. A streamed request may be
    /// answered before its body is read (a rejection): with `Expect: 100-continue` the
    /// client then is not asked for the body and the connection closes after the answer.
    fn request(&mut self, req: &Request<'_>, res: &mut Response<'_>, state: &mut Self::State);

    /// A piece of a streamed request body (never empty), in order.
    fn body(&mut self, data: &[u8], res: &mut Response<'_>, state: &mut Self::State) {
        let _ = (data, res, state);
    }

    /// The streamed request body is complete (also called, right after `request`, for a
    /// streamed request without a body). Trailer fields are dropped.
    fn body_end(&mut self, res: &mut Response<'_>, state: &mut Self::State) {
        let _ = (res, state);
    }

    /// The current response is not complete and the connection can take more output
    /// (after the loop wrote some, after a backlog drained, or after the connection was
    /// woken): write more of a streamed body, or the answer once it is ready. Check
    /// [`Response::has_room`] to stop before the output backs up.
    fn resume(&mut self, res: &mut Response<'_>, state: &mut Self::State) {
        let _ = (res, state);
    }

    /// The client closed its sending side while the current response is still being
    /// produced (`request` ran and the response is not complete): its end of input was
    /// read, or it hung up while backpressure held back reading. Most clients do this only
    /// when they give up (a timeout, a closed tab), so a proxy aborts its upstream
    /// exchange here ([`Response::abort`]; nginx logs such a request as 499). The default
    /// carries on: the response completes and the connection closes after it (a client
    /// that half-closed after its request still gets its answer).
    fn client_eof(&mut self, res: &mut Response<'_>, state: &mut Self::State) {
        let _ = (res, state);
    }

    /// The connection switched protocols ([`Response::upgrade`]): from now on every event
    /// goes here with the raw connection (input, output, close, ...). The default closes.
    fn upgraded(
        &mut self,
        conn: &mut Conn<'_, ()>,
        event: UpgradeEvent,
        state: &mut Self::State,
    ) -> Action {
        let _ = (conn, event, state);
        Action::Close
    }

    /// The connection closed (`err` says why if it failed).
    fn closed(&mut self, state: &mut Self::State, err: Option<Error>) {
        let _ = (state, err);
    }
}

/// A closure answering every request (collected bodies, no per-connection state).
impl<F> App for F
where
    F: FnMut(&Request<'_>, &mut Response<'_>) + 'static,
{
    type State = ();

    fn request(&mut self, req: &Request<'_>, res: &mut Response<'_>, _state: &mut ()) {
        self(req, res)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
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
enum Wait {
    /// Nothing (the application is answering, or upgraded).
    Nothing,
    /// Between requests, no byte of the next one yet.
    Idle,
    /// The rest of a request head.
    Head,
    /// More of a request body.
    Body,
}

struct Entry<S> {
    id: ConnId,
    phase: Phase,
    mode: Mode,
    framing: Framing,
    head_len: usize,
    inline_total: usize,
    resp: RespState,
    /// `App::request` ran for the current request.
    answering: bool,
    head_buf: Vec<u8>,
    body_buf: Vec<u8>,
    peer_eof: bool,
    /// Pipelined requests wait for output to drain.
    blocked: bool,
    wait: Wait,
    since: u64,
    expired: bool,
    served: u64,
    /// `App::upgraded` got `UpgradeEvent::Opened`.
    upgrade_opened: bool,
    state: S,
}

/// What the loop over a connection's input does next.
enum Step {
    Continue,
    Stop,
    Close,
}

/// Everything the steps need from the adapter besides the entry.
struct Cx<'h, A> {
    app: &'h mut A,
    cfg: &'h Config,
    date: &'h HttpDate,
    now: u64,
}

/// The HTTP/1.1 server adapter: a [`Handler`] serving an [`App`]. Stacks under
/// [`translate`](fn@crate::translate) like any byte handler, so the same value serves plain
/// and TLS listeners.
pub struct Http1<A: App> {
    app: A,
    cfg: Config,
    conns: Vec<Option<Entry<A::State>>>,
    date: HttpDate,
    date_frozen: bool,
    base: Instant,
    now: u64,
}

impl<A: App> Http1<A> {
    /// An adapter serving `app` with the default [`Config`].
    pub fn server(app: A) -> Http1<A> {
        Http1::with_config(app, Config::default())
    }

    /// An adapter serving `app` with `cfg`.
    pub fn with_config(app: A, cfg: Config) -> Http1<A> {
        Http1 {
            app,
            cfg,
            conns: Vec::new(),
            date: HttpDate::now(),
            date_frozen: false,
            base: Instant::now(),
            now: 0,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Changes the configuration (before serving).
    pub fn config_mut(&mut self) -> &mut Config {
        &mut self.cfg
    }

    /// The application.
    pub fn app(&self) -> &A {
        &self.app
    }

    /// The application, mutably.
    pub fn app_mut(&mut self) -> &mut A {
        &mut self.app
    }

    /// Fixes the `Date` header at `unix_secs` for good (reproducible output in tests and
    /// fuzzing).
    pub fn freeze_date(&mut self, unix_secs: u64) {
        self.date = HttpDate::at(unix_secs);
        self.date_frozen = true;
    }

    /// Connections this adapter currently tracks on its loop.
    pub fn connections(&self) -> usize {
        self.conns.iter().filter(|e| e.is_some()).count()
    }

    /// How often `tick` runs: a quarter of the shortest timeout, within 10 ms..1 s.
    fn tick_period(&self) -> Duration {
        [
            self.cfg.header_timeout,
            self.cfg.body_timeout,
            self.cfg.keep_alive_timeout,
        ]
        .into_iter()
        .flatten()
        .map(|t| t / 4)
        .min()
        .unwrap_or(Duration::from_secs(1))
        .clamp(Duration::from_millis(10), Duration::from_secs(1))
    }

    /// Milliseconds of the loop's clock (`Control::now`, manual under the test driver)
    /// since this adapter was made.
    fn now_ms(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.base).as_millis() as u64
    }

    /// The entry of `id` and the rest of the adapter.
    fn parts(&mut self, id: ConnId) -> Option<(Cx<'_, A>, &mut Entry<A::State>)> {
        let e = self
            .conns
            .get_mut(id.slot())
            .and_then(Option::as_mut)
            .filter(|e| e.id == id)?;
        Some((
            Cx {
                app: &mut self.app,
                cfg: &self.cfg,
                date: &self.date,
                now: self.now,
            },
            e,
        ))
    }
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

impl<S> Entry<S> {
    fn set_wait(&mut self, wait: Wait, now: u64) {
        if self.wait != wait {
            self.wait = wait;
            self.since = now;
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
            Some($e.id),
            $cx.cfg.output_high_water,
        )
    };
}

/// Processes the connection's input as far as it goes. `resume`: offer the application
/// to continue an open response first.
fn drive<A: App>(
    cx: &mut Cx<'_, A>,
    e: &mut Entry<A::State>,
    conn: &mut Conn<'_, ()>,
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
            Phase::Upgraded => {
                if !e.upgrade_opened {
                    e.upgrade_opened = true;
                    let a = cx.app.upgraded(conn, UpgradeEvent::Opened, &mut e.state);
                    if a != Action::None {
                        return a;
                    }
                }
                if conn.input().is_empty() {
                    return Action::None;
                }
                return cx.app.upgraded(conn, UpgradeEvent::Data, &mut e.state);
            }
            Phase::Head => head_step(cx, e, conn),
            Phase::Inline => inline_step(cx, e, conn),
            Phase::Body => body_step(cx, e, conn),
            Phase::Wait if e.resp.is_done() => finish_request(cx, e),
            Phase::Wait => Step::Stop,
        };
        match step {
            Step::Continue => {}
            Step::Stop => return Action::None,
            Step::Close => {
                e.phase = Phase::Dead;
                e.wait = Wait::Nothing;
                let n = conn.input().len();
                conn.consume(n);
                return Action::Close;
            }
        }
    }
}

/// The request is read and answered: on to the next one (or close, or upgrade).
fn finish_request<A: App>(cx: &mut Cx<'_, A>, e: &mut Entry<A::State>) -> Step {
    e.answering = false;
    if e.body_buf.capacity() > 16 * 1024 {
        e.body_buf = Vec::new();
    } else {
        e.body_buf.clear();
    }
    e.head_buf.clear();
    if e.resp.upgrade {
        e.phase = Phase::Upgraded;
        e.wait = Wait::Nothing;
        e.head_buf = Vec::new();
        e.body_buf = Vec::new();
        return Step::Continue;
    }
    if e.resp.close {
        return Step::Close;
    }
    e.phase = Phase::Head;
    e.set_wait(Wait::Idle, cx.now);
    Step::Continue
}

fn head_step<A: App>(cx: &mut Cx<'_, A>, e: &mut Entry<A::State>, conn: &mut Conn<'_, ()>) -> Step {
    if conn.input().is_empty() {
        if e.peer_eof {
            return Step::Close;
        }
        e.set_wait(Wait::Idle, cx.now);
        return Step::Stop;
    }
    if conn.output_len() >= cx.cfg.output_high_water {
        // Pipelined requests wait until the answers so far drain (post_write/writable).
        e.blocked = true;
        return Step::Stop;
    }
    e.blocked = false;
    let (input, mut out) = conn.split();
    let mut slots = header_slots();
    let (head_len, req) = match parse_request(input, &mut slots, cx.cfg) {
        Ok(Some(r)) => r,
        Ok(None) => {
            if e.peer_eof {
                return Step::Close;
            }
            e.set_wait(Wait::Head, cx.now);
            return Step::Stop;
        }
        Err(err) => {
            log::debug!("http1: connection {}: {err}", e.id);
            put_error(&mut out, err.status(), cx.date);
            return Step::Close;
        }
    };
    e.resp = RespState::for_request(&req);
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
                    e.set_wait(Wait::Body, cx.now);
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
    if e.phase == Phase::Body {
        e.wait = Wait::Body;
        e.since = cx.now;
    } else {
        e.wait = Wait::Nothing;
    }
    Step::Continue
}

fn inline_step<A: App>(
    cx: &mut Cx<'_, A>,
    e: &mut Entry<A::State>,
    conn: &mut Conn<'_, ()>,
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
    e.wait = Wait::Nothing;
    Step::Continue
}

fn body_step<A: App>(cx: &mut Cx<'_, A>, e: &mut Entry<A::State>, conn: &mut Conn<'_, ()>) -> Step {
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
                    log::debug!("http1: connection {}: {err}", e.id);
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
    if pos > 0 {
        e.since = cx.now;
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
                Some(e.id),
                cx.cfg.output_high_water,
            ),
            &mut e.state,
        );
    }
    e.phase = Phase::Wait;
    e.wait = Wait::Nothing;
    Step::Continue
}

/// The client ended its input: tell the application if a response is still in progress.
fn client_eof<A: App>(cx: &mut Cx<'_, A>, e: &mut Entry<A::State>, conn: &mut Conn<'_, ()>) {
    if e.answering && !e.resp.is_done() {
        let (_, mut out) = conn.split();
        cx.app.client_eof(&mut response!(cx, e, out), &mut e.state);
    }
}

/// A timeout fired for this connection (found by `tick`, delivered through `woken`).
fn expire<A: App>(cx: &mut Cx<'_, A>, e: &mut Entry<A::State>, conn: &mut Conn<'_, ()>) -> Action {
    e.expired = false;
    let Some(limit) = timeout_of(cx.cfg, e.wait, e.served) else {
        return Action::None;
    };
    if cx.now.saturating_sub(e.since) < limit.as_millis() as u64 {
        return Action::None;
    }
    let send_408 = match e.wait {
        Wait::Head => true,
        Wait::Body => !e.resp.is_started(),
        _ => false,
    };
    log::debug!("http1: connection {}: timeout waiting ({:?})", e.id, e.wait);
    if send_408 {
        let (_, mut out) = conn.split();
        put_error(&mut out, 408, cx.date);
    }
    e.phase = Phase::Dead;
    e.wait = Wait::Nothing;
    let n = conn.input().len();
    conn.consume(n);
    Action::Close
}

impl<A: App> Handler for Http1<A> {
    type State = ();

    fn serving(&mut self, ctl: &mut Control<'_, ()>) -> Action {
        self.now = self.now_ms(ctl.now());
        if !self.date_frozen {
            self.date.refresh();
        }
        Action::None
    }

    fn tick(&mut self, ctl: &mut Control<'_, ()>) -> (Option<Duration>, Action) {
        self.now = self.now_ms(ctl.now());
        if !self.date_frozen {
            self.date.refresh();
        }
        let now = self.now;
        for e in self.conns.iter_mut().flatten() {
            if e.expired {
                continue;
            }
            if let Some(limit) = timeout_of(&self.cfg, e.wait, e.served) {
                if now.saturating_sub(e.since) >= limit.as_millis() as u64 {
                    e.expired = true;
                    ctl.wake(e.id);
                }
            }
        }
        (Some(self.tick_period()), Action::None)
    }

    fn opened(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        let id = conn.id();
        let slot = id.slot();
        if self.conns.len() <= slot {
            self.conns.resize_with(slot + 1, || None);
        }
        self.conns[slot] = Some(Entry {
            id,
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
            wait: Wait::Idle,
            since: self.now,
            expired: false,
            served: 0,
            upgrade_opened: false,
            state: A::State::default(),
        });
        Action::None
    }

    fn data(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        let Some((mut cx, e)) = self.parts(conn.id()) else {
            return Action::Close;
        };
        drive(&mut cx, e, conn, false)
    }

    fn eof(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        let Some((mut cx, e)) = self.parts(conn.id()) else {
            return Action::Close;
        };
        e.peer_eof = true;
        match e.phase {
            Phase::Upgraded => cx.app.upgraded(conn, UpgradeEvent::Eof, &mut e.state),
            // An incomplete request will not complete.
            Phase::Inline | Phase::Body => Action::Close,
            _ => {
                client_eof(&mut cx, e, conn);
                drive(&mut cx, e, conn, false)
            }
        }
    }

    fn read_closed(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        let Some((mut cx, e)) = self.parts(conn.id()) else {
            return Action::Close;
        };
        if e.phase == Phase::Upgraded {
            return cx
                .app
                .upgraded(conn, UpgradeEvent::ReadClosed, &mut e.state);
        }
        client_eof(&mut cx, e, conn);
        drive(&mut cx, e, conn, false)
    }

    fn writable(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        let Some((mut cx, e)) = self.parts(conn.id()) else {
            return Action::None;
        };
        if e.phase == Phase::Upgraded {
            return cx.app.upgraded(conn, UpgradeEvent::Writable, &mut e.state);
        }
        drive(&mut cx, e, conn, true)
    }

    fn post_write(&mut self, conn: &mut Conn<'_, ()>, written: usize) {
        let Some((mut cx, e)) = self.parts(conn.id()) else {
            return;
        };
        let action = match e.phase {
            Phase::Upgraded => cx
                .app
                .upgraded(conn, UpgradeEvent::Written(written), &mut e.state),
            _ if e.blocked || (e.answering && !e.resp.is_done()) => drive(&mut cx, e, conn, true),
            _ => Action::None,
        };
        match action {
            Action::Close => conn.close(),
            Action::Shutdown => conn.handle().shutdown(),
            _ => {}
        }
    }

    fn woken(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        let Some((mut cx, e)) = self.parts(conn.id()) else {
            return Action::None;
        };
        if e.expired {
            let a = expire(&mut cx, e, conn);
            if a != Action::None {
                return a;
            }
        }
        if e.phase == Phase::Upgraded {
            return cx.app.upgraded(conn, UpgradeEvent::Woken, &mut e.state);
        }
        drive(&mut cx, e, conn, true)
    }

    fn closed(&mut self, conn: &mut Conn<'_, ()>, err: Option<Error>) {
        let id = conn.id();
        let Some(slot) = self.conns.get_mut(id.slot()) else {
            return;
        };
        if let Some(mut e) = slot.take_if(|e| e.id == id) {
            self.app.closed(&mut e.state, err);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fuzzing::{before_error, driver, run, small_config};
    use super::*;

    const HELLO: &str = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Length: 14\r\n\r\nHello World!\r\n";

    fn text(b: &[u8]) -> String {
        String::from_utf8_lossy(b).into_owned()
    }

    /// The output for `input` in one read, checked equal for every cut into two reads
    /// and for one byte per read.
    fn every_split(input: &[u8]) -> String {
        let whole = run(Config::default(), [input]);
        for cut in 0..=input.len() {
            let out = run(Config::default(), [&input[..cut], &input[cut..]]);
            assert_eq!(text(&out), text(&whole), "cut at {cut}");
        }
        let bytes = run(Config::default(), input.chunks(1));
        assert_eq!(text(&bytes), text(&whole), "one byte per read");
        text(&whole)
    }

    #[test]
    fn pipelined_requests_at_every_split() {
        let req = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /x HTTP/1.1\r\nHost: a\r\n\r\nHEAD / HTTP/1.1\r\nHost: a\r\n\r\n";
        let out = every_split(req);
        let head_only = &HELLO[..HELLO.len() - 14];
        assert_eq!(out, format!("{HELLO}{HELLO}{head_only}"));
    }

    #[test]
    fn pipelined_responses_batched_in_one_callback() {
        let mut d = driver(Config::default());
        let c = d.open(0);
        let one = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        let req: Vec<u8> = one.iter().copied().cycle().take(one.len() * 16).collect();
        assert!(d.feed(c, &req));
        assert_eq!(text(&d.take_output(c)), HELLO.repeat(16));
        assert_eq!(d.handler().app().requests, 16);
        assert!(d.is_open(c));
    }

    #[test]
    fn collected_chunked_body_at_every_split() {
        let req = b"POST /collect HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
        let out = every_split(req);
        assert!(out.starts_with("HTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\nContent-Length: 11\r\n\r\nhello world"), "{out}");
        assert!(out.ends_with(HELLO));
    }

    #[test]
    fn collected_sized_body_at_every_split() {
        let req = b"POST /collect HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\nHost: a\r\n\r\n";
        let out = every_split(req);
        assert!(
            out.ends_with(&format!("Content-Length: 5\r\n\r\nhello{HELLO}")),
            "{out}"
        );
    }

    #[test]
    fn large_collected_body_is_copied_not_inlined() {
        let body = vec![b'z'; 100_000];
        let mut req = format!(
            "POST /collect HTTP/1.1\r\nHost: a\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(&body);
        for step in [1000, 65_536, req.len()] {
            let out = run(Config::default(), req.chunks(step));
            assert!(out.ends_with(&body), "step {step}");
        }
    }

    #[test]
    fn streamed_echo_at_every_split() {
        let req = b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nabcdPOST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nxy\r\n0\r\n\r\n";
        let out = every_split(req);
        assert!(out.contains("Content-Length: 4\r\n\r\nabcd"), "{out}");
        assert!(
            out.ends_with("Transfer-Encoding: chunked\r\n\r\n1\r\nx\r\n1\r\ny\r\n0\r\n\r\n"),
            "{out}"
        );
    }

    /// `errors! { name: input => status; }`: answered with `status`, then closed.
    macro_rules! errors {
        ($($name:ident: $input:expr => $status:expr;)*) => {$(
            #[test]
            fn $name() {
                let mut d = driver(small_config());
                let c = d.open(0);
                d.feed(c, $input);
                let out = text(&d.take_output(c));
                let want = format!("HTTP/1.1 {} ", $status);
                let at = out.find(&want).unwrap_or_else(|| panic!("no {} in {out:?}", $status));
                assert!(out[at..].contains("Connection: close\r\n"), "{out}");
                assert!(!d.is_open(c), "still open after {}", $status);
                let (_, err) = before_error(out.as_bytes());
                assert!(err);
            }
        )*};
    }

    errors! {
        err_malformed: b"GET / HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n" => 400;
        err_bare_lf: b"GET / HTTP/1.1\nHost: a\n\n" => 400;
        err_obs_fold: b"GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n\t2\r\n\r\n" => 400;
        err_cl_te: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" => 400;
        err_two_cl: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab" => 400;
        err_chunk_size: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n" => 400;
        err_chunk_overflow: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n" => 400;
        err_chunk_bare_lf: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\na\r\n0\r\n\r\n" => 400;
        err_te_not_chunked: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n" => 400;
        err_te_unknown: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: br, chunked\r\n\r\n" => 501;
        err_too_many_headers: b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\nE: 1\r\nF: 1\r\nG: 1\r\nH: 1\r\n\r\n" => 431;
        err_head_too_large: &[b"GET / HTTP/1.1\r\nHost: a\r\nX: ".as_slice(), &[b'a'; 700]].concat() => 431;
        err_uri_too_long: &[b"GET /".as_slice(), &[b'a'; 300], b" HTTP/1.1\r\nHost: a\r\n\r\n"].concat() => 414;
        err_body_too_large_cl: b"POST /collect HTTP/1.1\r\nHost: a\r\nContent-Length: 301\r\n\r\n" => 413;
        err_body_too_large_chunked: &[b"POST /collect HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n100\r\n".as_slice(), &[b'a'; 256], b"\r\n100\r\n", &[b'a'; 256]].concat() => 413;
        err_version: b"GET / HTTP/2.0\r\nHost: a\r\n\r\n" => 505;
        err_expect: b"GET / HTTP/1.1\r\nHost: a\r\nExpect: magic\r\n\r\n" => 417;
        err_no_host: b"GET / HTTP/1.1\r\n\r\n" => 400;
        err_after_good: b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n" => 400;
    }

    #[test]
    fn error_after_good_request_answers_the_good_one_first() {
        let out = run(
            Config::default(),
            [b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/9.9\r\n\r\n".as_slice()],
        );
        let out = text(&out);
        assert!(out.starts_with(HELLO));
        assert!(out[HELLO.len()..].starts_with("HTTP/1.1 505 "), "{out}");
    }

    #[test]
    fn smuggled_request_in_body_is_not_served() {
        // CL.TE and TE.CL: rejected before any body byte is trusted.
        for req in [
            &b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n"[..],
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\x0bchunked\r\n\r\n0\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\nContent-Length: 40\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2 \r\nxx\r\n0\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nxx\r\n0\r\n\r\n",
        ] {
            let mut d = driver(Config::default());
            let c = d.open(0);
            d.feed(c, req);
            let out = text(&d.take_output(c));
            assert!(out.starts_with("HTTP/1.1 400 ") || out.starts_with("HTTP/1.1 501 "), "{out}");
            assert_eq!(out.matches("HTTP/1.1 ").count(), 1, "{out}");
            assert!(!d.is_open(c));
            assert_eq!(d.handler().app().requests, 0);
        }
    }

    #[test]
    fn expect_continue_collect() {
        let mut d = driver(Config::default());
        let c = d.open(0);
        d.feed(c, b"POST /collect HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n");
        assert_eq!(text(&d.take_output(c)), "HTTP/1.1 100 Continue\r\n\r\n");
        d.feed(c, b"abc");
        let out = text(&d.take_output(c));
        assert!(
            out.starts_with("HTTP/1.1 200 OK\r\n") && out.ends_with("\r\n\r\nabc"),
            "{out}"
        );
        assert!(d.is_open(c));
    }

    #[test]
    fn expect_continue_streamed_accept() {
        let mut d = driver(Config::default());
        let c = d.open(0);
        d.feed(
            c,
            b"POST /echo HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
        );
        let out = text(&d.take_output(c));
        assert!(
            out.starts_with("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n"),
            "{out}"
        );
        d.feed(c, b"hi");
        assert_eq!(text(&d.take_output(c)), "hi");
        assert!(d.is_open(c));
    }

    #[test]
    fn expect_continue_rejected_first() {
        let mut d = driver(Config::default());
        let c = d.open(0);
        d.feed(c, b"POST /reject HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
        let out = text(&d.take_output(c));
        assert!(out.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{out}");
        assert!(!out.contains("100 Continue"));
        assert!(out.contains("Connection: close\r\n"));
        assert!(!d.is_open(c));
    }

    #[test]
    fn rejected_without_expect_reads_the_body_and_keeps_alive() {
        let out = every_split(b"POST /reject HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\nHost: a\r\n\r\n");
        assert!(out.starts_with("HTTP/1.1 403 Forbidden\r\n"));
        assert!(out.ends_with(HELLO));
    }

    #[test]
    fn expect_continue_too_large_gets_413_without_100() {
        let mut d = driver(small_config());
        let c = d.open(0);
        d.feed(c, b"POST /collect HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 1000\r\n\r\n");
        let out = text(&d.take_output(c));
        assert!(out.starts_with("HTTP/1.1 413 "), "{out}");
        assert!(!d.is_open(c));
    }

    #[test]
    fn keep_alive_rules() {
        // (request, stays open, Connection header expected in the response)
        let cases: &[(&[u8], bool, Option<&str>)] = &[
            (b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", true, None),
            (
                b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
                false,
                Some("close"),
            ),
            (b"GET / HTTP/1.0\r\n\r\n", false, Some("close")),
            (
                b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
                true,
                Some("keep-alive"),
            ),
            (
                b"GET /close HTTP/1.1\r\nHost: a\r\n\r\n",
                false,
                Some("close"),
            ),
            // No length known for a streamed HTTP/1.0 answer: the close delimits it.
            (
                b"POST /echo HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
                false,
                Some("close"),
            ),
        ];
        for &(req, open, header) in cases {
            let mut d = driver(Config::default());
            let c = d.open(0);
            d.feed(c, req);
            let out = text(&d.take_output(c));
            assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
            assert_eq!(d.is_open(c), open, "{}", text(req));
            match header {
                Some(h) => assert!(out.contains(&format!("\r\nConnection: {h}\r\n")), "{out}"),
                None => assert!(!out.contains("Connection:"), "{out}"),
            }
        }
    }

    #[test]
    fn http10_chunked_response_is_delimited_by_close() {
        let mut d = driver(Config::default());
        let c = d.open(0);
        d.feed(
            c,
            b"POST /echo HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nab",
        );
        let out = text(&d.take_output(c));
        assert!(
            out.ends_with("Content-Length: 2\r\nConnection: keep-alive\r\n\r\nab"),
            "{out}"
        );
        assert!(d.is_open(c));
    }

    #[test]
    fn head_request_has_no_body() {
        let out = text(&run(
            Config::default(),
            [b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n".as_slice()],
        ));
        assert!(out.ends_with("Content-Length: 14\r\n\r\n"), "{out}");
    }

    #[test]
    fn upgrade_hands_over_raw_bytes() {
        let mut d = driver(Config::default());
        let c = d.open(0);
        d.feed(
            c,
            b"GET /upgrade HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nraw1",
        );
        let out = text(&d.take_output(c));
        assert!(
            out.starts_with("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\n"),
            "{out}"
        );
        assert!(out.ends_with("Connection: Upgrade\r\n\r\nraw1"), "{out}");
        d.feed(c, b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(text(&d.take_output(c)), "GET / HTTP/1.1\r\n\r\n");
        d.eof(c);
        assert!(!d.is_open(c));
    }

    #[test]
    fn partial_request_then_eof_closes_without_answer() {
        let mut d = driver(Config::default());
        let c = d.open(0);
        d.feed(c, b"GET / HTTP/1.1\r\nHo");
        assert!(d.take_output(c).is_empty());
        d.eof(c);
        assert!(d.take_output(c).is_empty());
        assert!(!d.is_open(c));
    }

    #[test]
    fn requests_then_eof_are_answered_then_closed() {
        let mut d = driver(Config::default());
        let c = d.open(0);
        d.feed(c, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        d.eof(c);
        assert_eq!(text(&d.take_output(c)), HELLO);
        assert!(!d.is_open(c));
    }

    #[test]
    fn client_eof_mid_response_reaches_the_app() {
        /// Starts a chunked response and continues only when woken; aborts if the client
        /// ends its input first when `abort` is set.
        struct Slow {
            abort: bool,
            eofs: usize,
        }
        impl App for Slow {
            type State = ();
            fn request(&mut self, _req: &Request<'_>, res: &mut Response<'_>, _: &mut ()) {
                res.start_chunked();
                res.write(b"first");
            }
            fn resume(&mut self, res: &mut Response<'_>, _: &mut ()) {
                res.write(b"last");
                res.finish();
            }
            fn client_eof(&mut self, res: &mut Response<'_>, _: &mut ()) {
                self.eofs += 1;
                if self.abort {
                    res.abort();
                }
            }
        }
        for abort in [false, true] {
            let mut h = Http1::server(Slow { abort, eofs: 0 });
            h.freeze_date(0);
            let mut d = wireloop::testing::Driver::new(h);
            let c = d.open(0);
            d.feed(c, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
            let head = text(&d.take_output(c));
            assert!(head.ends_with("5\r\nfirst\r\n"), "{head}");
            d.eof(c);
            assert_eq!(d.handler().app().eofs, 1);
            if abort {
                assert!(!d.is_open(c), "an aborted response closes the connection");
                assert_eq!(d.take_output(c), b"");
            } else {
                // A half-close: the response still completes, then the connection closes.
                assert!(d.is_open(c));
                d.wake(c);
                let rest = text(&d.take_output(c));
                assert_eq!(rest, "4\r\nlast\r\n0\r\n\r\n");
                assert!(!d.is_open(c), "closed after the response");
            }
        }
    }

    #[test]
    fn aborted_response_closes_without_completing_the_body() {
        let mut h = Http1::server(|req: &Request<'_>, res: &mut Response<'_>| {
            if req.path() == "/sized" {
                res.start_sized(10);
            } else {
                res.start_chunked();
            }
            res.write(b"part");
            res.abort();
        });
        h.freeze_date(0);
        let mut d = wireloop::testing::Driver::new(h);
        for (path, tail) in [
            ("/sized", "Content-Length: 10\r\n\r\npart"),
            ("/chunked", "chunked\r\n\r\n4\r\npart\r\n"),
        ] {
            let c = d.open(0);
            d.feed(
                c,
                format!("GET {path} HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n")
                    .as_bytes(),
            );
            let out = text(&d.take_output(c));
            assert!(out.ends_with(tail), "{out}");
            assert_eq!(out.matches("HTTP/1.1").count(), 1, "{out}");
            assert!(!d.is_open(c));
        }
    }

    #[test]
    fn closure_app() {
        let mut h = Http1::server(|req: &Request<'_>, res: &mut Response<'_>| {
            res.status(201).body(req.method().as_bytes());
        });
        h.freeze_date(0);
        let mut d = wireloop::testing::Driver::new(h);
        let c = d.open(0);
        d.feed(c, b"PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(
            text(&d.take_output(c)),
            "HTTP/1.1 201 Created\r\nDate: Thu, 01 Jan 1970 00:00:00 GMT\r\nContent-Length: 3\r\n\r\nPUT"
        );
    }

    #[test]
    fn fuzz_bodies_hold_on_samples() {
        for s in [
            &b"\x05GET / HTTP/1.1\r\nHost: a\r\n\r\nPOST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"[..],
            b"\x00GET / HTTP/1.1\nHost: a\r\n\r\n",
            b"\x10\x00\x01\x02",
            b"",
        ] {
            super::super::fuzzing::request(s);
            super::super::fuzzing::chunked(s);
        }
    }
}
