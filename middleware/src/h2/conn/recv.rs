//! The receiving half: [`Connection::recv`] and what each frame does (RFC 9113 §5.1,
//! §6, §8.1).

use std::time::Instant;

use super::super::frame::{
    check_preface, decode, encode, ErrorCode, Frame, FrameError, Head, Kind, Params, Preface,
    Reason, Setting, Status, PREFACE,
};
use super::super::hpack::DecodeError;
use super::error::What;
use super::flow::{grow, RecvWindow};
use super::headers::{check_request, check_trailers};
use super::stream::{Closed, Stream};
use super::{ConnError, Connection, Event, PendingBlock, Role, Shutdown, DRAIN_PING};

/// The sink, type-erased so that the frame handlers are compiled once.
pub(super) type Sink<'s> = dyn FnMut(Event<'_>) + 's;

/// A connection error PROTOCOL_ERROR for a broken rule.
pub(super) fn protocol(why: &'static str) -> ConnError {
    ConnError::rule(ErrorCode::PROTOCOL_ERROR, why)
}

impl Connection {
    /// Processes what the peer sent: the client preface first, then whole frames, until
    /// the input ends with a partial frame or the output reaches
    /// [`Config::max_output`](super::Config::max_output). Returns how many bytes were
    /// consumed; keep the rest and pass it again, with more, next time.
    ///
    /// Events go to `sink` in the order of the frames. On a connection error, GOAWAY
    /// is queued and the error returned (then and at every later call): flush the
    /// output and close. `now` feeds the rate limits and [`idle_since`].
    ///
    /// [`idle_since`]: Connection::idle_since
    pub fn recv<F>(&mut self, input: &[u8], now: Instant, sink: &mut F) -> Result<usize, ConnError>
    where
        F: FnMut(Event<'_>),
    {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        self.now = now;
        let mut pos = 0;
        if !self.preface_seen {
            match check_preface(input) {
                Preface::Complete => {
                    pos = PREFACE.len();
                    self.preface_seen = true;
                }
                Preface::Partial => return Ok(0),
                Preface::Mismatch => {
                    let e = ConnError::new(ErrorCode::PROTOCOL_ERROR, What::Preface);
                    return Err(self.fail(e));
                }
            }
        }
        match self.frames(input, &mut pos, sink) {
            Ok(()) => Ok(pos),
            Err(e) => Err(self.fail(e)),
        }
    }

    fn frames(
        &mut self,
        input: &[u8],
        pos: &mut usize,
        sink: &mut Sink<'_>,
    ) -> Result<(), ConnError> {
        while self.pending_output() < self.cfg.max_output {
            let buf = input.get(*pos..).unwrap_or_default();
            if let Some(head) = Head::parse(buf) {
                self.check_sequence(&head)?;
            }
            match decode(buf, self.cfg.max_frame_size) {
                Ok(Status::Complete((frame, n))) => {
                    *pos += n;
                    self.frame(frame, sink)?;
                }
                Ok(Status::Partial(_)) => return Ok(()),
                Err(e) if e.is_connection_error() => {
                    return Err(ConnError::new(e.code(), What::Frame(e)))
                }
                Err(e) => {
                    *pos += e.frame_len();
                    self.frame_stream_error(e, sink)?;
                }
            }
            self.reap();
        }
        Ok(())
    }

    /// The rules on which frame may come next, from its header alone: SETTINGS first
    /// (§3.4), and nothing but CONTINUATION on the same stream inside a header block
    /// (§6.10).
    fn check_sequence(&self, head: &Head) -> Result<(), ConnError> {
        if !self.settings_seen && head.kind != Kind::SETTINGS {
            return Err(protocol("first frame is not SETTINGS"));
        }
        match &self.pending_block {
            Some(p) if head.kind != Kind::CONTINUATION || head.stream_id != p.stream_id => {
                Err(protocol("header block interrupted"))
            }
            None if head.kind == Kind::CONTINUATION => {
                Err(protocol("CONTINUATION outside a header block"))
            }
            _ => Ok(()),
        }
    }

    fn frame(&mut self, frame: Frame<'_>, sink: &mut Sink<'_>) -> Result<(), ConnError> {
        match frame {
            Frame::Data {
                stream_id,
                end_stream,
                data,
                ..
            } => self.on_data(stream_id, end_stream, data, frame.flow_len(), sink),
            Frame::Headers {
                stream_id,
                end_stream,
                end_headers,
                fragment,
                ..
            } => {
                let self_dependency = frame.stream_error().is_some();
                if end_headers {
                    return self.on_block(stream_id, end_stream, self_dependency, fragment, sink);
                }
                self.block.clear();
                self.append_block(fragment)?;
                self.pending_block = Some(PendingBlock {
                    stream_id,
                    end_stream,
                    self_dependency,
                    continuations: 0,
                });
                Ok(())
            }
            Frame::Continuation {
                end_headers,
                fragment,
                ..
            } => self.on_continuation(end_headers, fragment, sink),
            Frame::Priority { .. } => self.spend(Kind::PRIORITY),
            Frame::RstStream { stream_id, code } => self.on_rst(stream_id, code, sink),
            Frame::Settings { ack, params } => self.on_settings(ack, params, sink),
            Frame::PushPromise { .. } => Err(protocol(match self.role {
                Role::Server => "PUSH_PROMISE sent to a server",
                Role::Client => "PUSH_PROMISE with push disabled",
            })),
            Frame::Ping { ack: true, data } => {
                if data == DRAIN_PING && self.shutdown == Shutdown::Draining {
                    let last = self.streams.last_peer_id;
                    encode::goaway(&mut self.out, last, ErrorCode::NO_ERROR, b"");
                    self.shutdown = Shutdown::Final(last);
                }
                Ok(())
            }
            Frame::Ping { ack: false, data } => {
                self.spend(Kind::PING)?;
                encode::ping_ack(&mut self.out, data);
                Ok(())
            }
            Frame::GoAway {
                last_stream_id,
                code,
                debug,
            } => {
                self.peer_goaway = Some(last_stream_id);
                sink(Event::GoAway {
                    last_stream_id,
                    code,
                    debug,
                });
                if self.role == Role::Client {
                    self.unprocessed_above(last_stream_id, sink);
                }
                Ok(())
            }
            Frame::WindowUpdate {
                stream_id,
                increment,
            } => self.on_window_update(stream_id, increment, sink),
            Frame::Unknown { .. } => Ok(()),
        }
    }

    /// Takes a token from the budget of a kind of frame.
    fn spend(&mut self, kind: Kind) -> Result<(), ConnError> {
        let b = &mut self.budgets;
        let (budget, what) = match kind {
            Kind::SETTINGS => (&mut b.settings, "SETTINGS flood"),
            Kind::PING => (&mut b.ping, "PING flood"),
            Kind::PRIORITY => (&mut b.priority, "PRIORITY flood"),
            Kind::DATA => (&mut b.empty_data, "empty DATA flood"),
            Kind::WINDOW_UPDATE => (&mut b.window_update, "WINDOW_UPDATE flood"),
            _ => (&mut b.reset, "too many streams reset or refused"),
        };
        if budget.take(self.now) {
            Ok(())
        } else {
            Err(ConnError::flood(what))
        }
    }

    /// Whether a stream id is the peer's to open: odd ids are the client's.
    pub(super) fn is_peers(&self, id: u32) -> bool {
        (id % 2 == 1) == (self.role == Role::Server)
    }

    /// Whether a stream is idle: above every id its side has used. (A server opens no
    /// stream, so even ids are all idle to it; a client's peer opens none, push being
    /// disabled.)
    pub(super) fn is_idle(&self, id: u32) -> bool {
        self.streams.is_idle(id, self.is_peers(id))
    }

    /// Sends a stream error: RST_STREAM, the stream forgotten, the application told if
    /// it knew the stream. Counts against the reset budget.
    pub(super) fn stream_error(
        &mut self,
        id: u32,
        code: ErrorCode,
        sink: &mut Sink<'_>,
    ) -> Result<(), ConnError> {
        self.spend(Kind::RST_STREAM)?;
        if self.reset_stream(id, code) {
            sink(Event::Reset {
                stream: id,
                code,
                remote: false,
            });
        }
        Ok(())
    }

    /// A stream error the frame layer found (PRIORITY's length or self-dependency, a
    /// zero WINDOW_UPDATE increment).
    fn frame_stream_error(&mut self, e: FrameError, sink: &mut Sink<'_>) -> Result<(), ConnError> {
        let id = e.stream_id().unwrap_or_default();
        if e.reason() == Reason::ZeroIncrement && self.is_idle(id) {
            return Err(protocol("WINDOW_UPDATE on an idle stream"));
        }
        self.stream_error(id, e.code(), sink)
    }

    fn append_block(&mut self, fragment: &[u8]) -> Result<(), ConnError> {
        if self.block.len() + fragment.len() > self.cfg.max_header_block_size as usize {
            return Err(ConnError::flood("header block over the limit"));
        }
        self.block.extend_from_slice(fragment);
        Ok(())
    }

    fn on_continuation(
        &mut self,
        end: bool,
        fragment: &[u8],
        sink: &mut Sink<'_>,
    ) -> Result<(), ConnError> {
        let Some(mut p) = self.pending_block else {
            return Err(protocol("CONTINUATION outside a header block"));
        };
        p.continuations += 1;
        if p.continuations > self.cfg.max_continuation_frames {
            return Err(ConnError::flood("too many CONTINUATION frames"));
        }
        self.append_block(fragment)?;
        if !end {
            self.pending_block = Some(p);
            return Ok(());
        }
        self.pending_block = None;
        let block = std::mem::take(&mut self.block);
        let r = self.on_block(p.stream_id, p.end_stream, p.self_dependency, &block, sink);
        self.block = block;
        if self.block.capacity() > 2 * self.cfg.max_header_list_size as usize {
            self.block = Vec::new();
        }
        r
    }

    /// A whole header block: decoded first whatever happens next, to keep HPACK in step.
    fn on_block(
        &mut self,
        id: u32,
        end_stream: bool,
        self_dependency: bool,
        block: &[u8],
        sink: &mut Sink<'_>,
    ) -> Result<(), ConnError> {
        self.headers.clear();
        let headers = &mut self.headers;
        let limit = self.cfg.max_header_list_size as usize;
        let too_large = match self
            .decoder
            .decode(block, limit, |n, v, s| headers.push(n, v, s))
        {
            Ok(()) => false,
            Err(DecodeError::HeaderListTooLarge) => true,
            Err(_) => {
                return Err(ConnError::new(
                    ErrorCode::COMPRESSION_ERROR,
                    What::Compression,
                ))
            }
        };
        let r = if let Some(s) = self.streams.get(id) {
            let (recv_open, head) = (s.recv_open, s.head_received);
            if !recv_open {
                self.stream_error(id, ErrorCode::STREAM_CLOSED, sink)
            } else if too_large {
                self.stream_error(id, ErrorCode::ENHANCE_YOUR_CALM, sink)
            } else if self.role == Role::Client && !head {
                self.on_response(id, end_stream, self_dependency, sink)
            } else {
                self.on_trailers(id, end_stream, self_dependency, sink)
            }
        } else if self.is_idle(id) {
            if !self.is_peers(id) || self.role == Role::Client {
                return Err(protocol(match self.role {
                    Role::Server => "HEADERS on an even stream id",
                    Role::Client => "HEADERS on a stream the client did not open",
                }));
            }
            self.open_stream(id, end_stream, self_dependency, too_large, sink)
        } else {
            match self.streams.closed(id) {
                Some(Closed::LocalReset) => Ok(()),
                Some(Closed::RemoteReset) => self.stream_error(id, ErrorCode::STREAM_CLOSED, sink),
                Some(Closed::Ended) => Err(ConnError::rule(
                    ErrorCode::STREAM_CLOSED,
                    "HEADERS on a closed stream",
                )),
                None => Err(protocol(
                    "HEADERS on a stream id lower than one used before",
                )),
            }
        };
        self.headers.trim(4 * limit.min(64 << 10));
        r
    }

    /// A trailer section on an open stream whose peer side is open, within the limit.
    fn on_trailers(
        &mut self,
        id: u32,
        end_stream: bool,
        self_dependency: bool,
        sink: &mut Sink<'_>,
    ) -> Result<(), ConnError> {
        let ok = end_stream && !self_dependency && check_trailers(&self.headers).is_ok();
        let Some(s) = self.streams.get_mut(id) else {
            return Ok(());
        };
        if !ok || s.content_length.is_some_and(|n| n != s.received) {
            return self.stream_error(id, ErrorCode::PROTOCOL_ERROR, sink);
        }
        s.recv_open = false;
        sink(Event::Trailers {
            stream: id,
            fields: self.headers.fields(),
        });
        Ok(())
    }

    fn open_stream(
        &mut self,
        id: u32,
        end_stream: bool,
        self_dependency: bool,
        too_large: bool,
        sink: &mut Sink<'_>,
    ) -> Result<(), ConnError> {
        self.streams.last_peer_id = id;
        self.budgets.priority.refund(1);
        self.budgets.window_update.refund(1);
        let refuse = match self.shutdown {
            Shutdown::Final(last) => id > last,
            _ => false,
        } || self.streams.len() >= self.cfg.max_concurrent_streams as usize;
        if self_dependency || refuse {
            let code = if refuse {
                ErrorCode::REFUSED_STREAM
            } else {
                ErrorCode::PROTOCOL_ERROR
            };
            self.streams.remember(id, Closed::LocalReset);
            return self.stream_error(id, code, sink);
        }
        if too_large {
            // 431 (RFC 6585), then ask the peer to stop sending the body (§8.1).
            self.spend(Kind::RST_STREAM)?;
            self.scratch.clear();
            self.encoder
                .encode([(&b":status"[..], &b"431"[..])], &mut self.scratch);
            let max = self.peer.max_frame_size;
            encode::headers(&mut self.out, id, true, &self.scratch, max);
            if end_stream {
                self.streams.remember(id, Closed::Ended);
            } else {
                encode::rst_stream(&mut self.out, id, ErrorCode::NO_ERROR);
                self.streams.remember(id, Closed::LocalReset);
            }
            return Ok(());
        }
        let info = match check_request(&self.headers, self.cfg.enable_connect_protocol) {
            Ok(info) if !(end_stream && info.content_length.is_some_and(|n| n > 0)) => info,
            _ => {
                self.streams.remember(id, Closed::LocalReset);
                return self.stream_error(id, ErrorCode::PROTOCOL_ERROR, sink);
            }
        };
        self.streams.insert(Stream {
            id,
            recv_open: !end_stream,
            send_open: true,
            headers_sent: false,
            head_received: false,
            head_request: false,
            send_window: i64::from(self.peer.initial_window_size),
            recv: RecvWindow::new(self.local_window, self.local_window),
            content_length: info.content_length,
            received: 0,
            blocked: false,
        });
        self.idle_since = None;
        sink(Event::Request {
            stream: id,
            request: info.request(&self.headers),
            end_stream,
        });
        Ok(())
    }

    fn on_data(
        &mut self,
        id: u32,
        end_stream: bool,
        data: &[u8],
        flow: u32,
        sink: &mut Sink<'_>,
    ) -> Result<(), ConnError> {
        if self.is_idle(id) {
            return Err(protocol("DATA on an idle stream"));
        }
        if !self.conn_recv.take(flow) {
            return Err(ConnError::rule(
                ErrorCode::FLOW_CONTROL_ERROR,
                "DATA over the connection window",
            ));
        }
        let len = data.len() as u32; // at most the frame size
        if len == 0 && !end_stream {
            self.spend(Kind::DATA)?;
        }
        let Some(s) = self.streams.get_mut(id) else {
            self.release_connection(0, flow);
            return match self.streams.closed(id) {
                Some(Closed::LocalReset) => Ok(()),
                Some(Closed::Ended) => Err(ConnError::rule(
                    ErrorCode::STREAM_CLOSED,
                    "DATA on a closed stream",
                )),
                _ => self.stream_error(id, ErrorCode::STREAM_CLOSED, sink),
            };
        };
        let code = if !s.recv_open {
            Some(ErrorCode::STREAM_CLOSED)
        } else if self.role == Role::Client && !s.head_received {
            // DATA before the response's header section (§8.1).
            Some(ErrorCode::PROTOCOL_ERROR)
        } else if !s.recv.take(flow) {
            Some(ErrorCode::FLOW_CONTROL_ERROR)
        } else {
            s.received += u64::from(len);
            let over = s
                .content_length
                .is_some_and(|n| s.received > n || (end_stream && s.received != n));
            over.then_some(ErrorCode::PROTOCOL_ERROR)
        };
        if let Some(code) = code {
            self.release_connection(0, flow);
            return self.stream_error(id, code, sink);
        }
        // Padding is given back at once; the data when the application releases it.
        let pad = flow - len;
        s.recv.deliver(len);
        let update = if pad > 0 {
            s.recv.release(0, pad)
        } else {
            None
        };
        if end_stream {
            s.recv_open = false;
        } else if let Some(inc) = update {
            encode::window_update(&mut self.out, id, inc);
        }
        self.conn_recv.deliver(len);
        if pad > 0 {
            self.release_connection(0, pad);
        }
        if len > 0 || end_stream {
            sink(Event::Data {
                stream: id,
                data,
                end_stream,
            });
        }
        Ok(())
    }

    fn on_rst(&mut self, id: u32, code: ErrorCode, sink: &mut Sink<'_>) -> Result<(), ConnError> {
        if self.is_idle(id) {
            return Err(protocol("RST_STREAM on an idle stream"));
        }
        self.spend(Kind::RST_STREAM)?;
        if let Some(s) = self.streams.remove(id, Closed::RemoteReset) {
            self.release_connection(s.recv.unreleased, 0);
            if self.role == Role::Client && code == ErrorCode::REFUSED_STREAM {
                // RFC 9113 §8.7: the server did not process the request.
                sink(Event::Unprocessed { stream: id });
            } else {
                sink(Event::Reset {
                    stream: id,
                    code,
                    remote: true,
                });
            }
        }
        Ok(())
    }

    fn on_settings(
        &mut self,
        ack: bool,
        params: Params<'_>,
        sink: &mut Sink<'_>,
    ) -> Result<(), ConnError> {
        if ack {
            if !self.settings_seen {
                return Err(protocol("first SETTINGS is an ACK"));
            }
            if self.settings_sent.take().is_some() {
                // Our settings are in force from here (§6.5.3).
                self.decoder
                    .set_max_table_size(self.cfg.header_table_size as usize);
                let size = self.cfg.initial_window_size;
                self.local_window = size;
                for s in self.streams.iter_mut() {
                    s.recv.resize(size);
                }
            }
            return Ok(());
        }
        if self.settings_seen {
            self.spend(Kind::SETTINGS)?;
        }
        self.settings_seen = true;
        let old = self.peer.initial_window_size;
        for p in params {
            if let Setting::HeaderTableSize(n) = p {
                self.encoder.set_max_table_size(n as usize);
            }
            if p == Setting::EnablePush(true) && self.role == Role::Client {
                return Err(protocol("SETTINGS_ENABLE_PUSH 1 from a server"));
            }
            self.peer.set(p);
        }
        let delta = i64::from(self.peer.initial_window_size) - i64::from(old);
        if delta != 0 {
            for s in self.streams.iter_mut() {
                s.send_window = grow(s.send_window, delta).ok_or(ConnError::rule(
                    ErrorCode::FLOW_CONTROL_ERROR,
                    "SETTINGS_INITIAL_WINDOW_SIZE overflows a window",
                ))?;
            }
        }
        encode::settings_ack(&mut self.out);
        sink(Event::Settings(self.peer));
        if delta > 0 {
            self.notify_writable(sink);
        }
        Ok(())
    }

    fn on_window_update(
        &mut self,
        id: u32,
        inc: u32,
        sink: &mut Sink<'_>,
    ) -> Result<(), ConnError> {
        self.spend(Kind::WINDOW_UPDATE)?;
        if id == 0 {
            self.conn_send = grow(self.conn_send, i64::from(inc)).ok_or(ConnError::rule(
                ErrorCode::FLOW_CONTROL_ERROR,
                "connection window over 2^31-1",
            ))?;
        } else if self.is_idle(id) {
            return Err(protocol("WINDOW_UPDATE on an idle stream"));
        } else if let Some(s) = self.streams.get_mut(id) {
            match grow(s.send_window, i64::from(inc)) {
                Some(w) => s.send_window = w,
                None => return self.stream_error(id, ErrorCode::FLOW_CONTROL_ERROR, sink),
            }
        }
        self.notify_writable(sink);
        Ok(())
    }

    /// Tells the application of blocked streams that can send again.
    fn notify_writable(&mut self, sink: &mut Sink<'_>) {
        if self.conn_send <= 0 {
            return;
        }
        for s in self.streams.iter_mut() {
            if s.blocked && s.send_open && s.send_window > 0 {
                s.blocked = false;
                sink(Event::Writable { stream: s.id });
            }
        }
    }
}
