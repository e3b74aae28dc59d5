//! Driving an HTTP/2 upstream connection: its frames decoded and their events handed to
//! the clients, held response bytes given back to the windows, streams opened and
//! request bodies sent.

use wireloop::{Action, Control};
use wireloop_middleware::h2::conn::{Event, SendError};
use wireloop_middleware::h2::frame::ErrorCode;
use wireloop_middleware::http1::ResponseBody;

use super::super::headers::hop_by_hop;
use super::super::state::{Answer, ProxyState};
use super::super::{push_op, Engine, Op};
use super::{client_of, requeue, send_head, H2Stream, H2Up, UpConn, STAGE_CAP};
use crate::phases::ProxyHttp;

impl<P: ProxyHttp> Engine<P> {
    /// An HTTP/2 connection connected: its preface and the queued requests go out.
    pub(crate) fn h2_opened(&mut self, conn: UpConn<'_, '_, P::Ctx>, up: &mut H2Up) {
        up.connected = true;
        let _ = conn.set_nodelay(true);
        self.pump(conn, up);
    }

    /// Input, output room or a wake-up on an HTTP/2 connection: frames decoded and their
    /// events handed to the clients, held response bytes given back, finished streams
    /// removed, requests and bodies sent.
    pub(crate) fn h2_io(&mut self, conn: UpConn<'_, '_, P::Ctx>, up: &mut H2Up) -> Action {
        let id = conn.id();
        if !conn.input().is_empty() {
            up.input.extend_from_slice(conn.input());
            let n = conn.input().len();
            conn.consume(n);
        }
        let mut failed = false;
        if !up.input.is_empty() {
            let now = self.now;
            let H2Up {
                h2,
                streams,
                input,
                broken,
                settled,
                group,
                peer,
                ..
            } = up;
            let mut ctl = conn.control();
            let mut sink = |e: Event<'_>| {
                if let Event::Settings(_) = e {
                    *settled = true;
                }
                self.on_event(&mut ctl, streams, broken, (*group, *peer), e)
            };
            match h2.recv(input, now, &mut sink) {
                Ok(n) => {
                    input.drain(..n);
                }
                Err(e) => {
                    log::warn!("upstream {}: {e}", self.groups[*group].peers()[*peer].url);
                    failed = true;
                }
            }
        }
        if failed {
            up.broken = true;
        }
        if up.broken {
            // Requests not sent yet go to another connection (before the rest fail).
            self.requeue_unsent(&mut conn.control(), up);
        }
        if failed {
            self.fail_streams(up, 502);
        }
        self.settle(conn, up);
        self.pump(conn, up);
        if failed || (up.broken && !up.busy()) {
            return Action::Close;
        }
        let _ = id;
        Action::None
    }

    /// One event of an HTTP/2 upstream connection, for the client of its stream.
    fn on_event(
        &mut self,
        ctl: &mut Control<'_, ProxyState<P::Ctx>>,
        streams: &mut [H2Stream],
        broken: &mut bool,
        (g, p): (usize, usize),
        e: Event<'_>,
    ) {
        let stream = match e {
            Event::Response { stream, .. }
            | Event::Data { stream, .. }
            | Event::Trailers { stream, .. }
            | Event::Reset { stream, .. }
            | Event::Unprocessed { stream } => stream,
            Event::GoAway { .. } => {
                *broken = true;
                return;
            }
            _ => return,
        };
        let Some(s) = streams.iter_mut().find(|s| s.id == stream && !s.done) else {
            return;
        };
        let Some(c) = client_of(ctl, s.client) else {
            // Its client left: nobody reads the rest.
            s.done = true;
            return;
        };
        match e {
            Event::Response {
                response,
                end_stream,
                ..
            } => {
                s.answered = true;
                s.deadline = None;
                s.head = Vec::new();
                c.status = response.status;
                c.resp.headers.clear();
                for f in response.fields.iter() {
                    let Ok(name) = std::str::from_utf8(f.name) else {
                        continue;
                    };
                    if !hop_by_hop(name) && name != "content-length" {
                        c.resp.headers.append_parsed(name, f.value);
                    }
                }
                c.resp.headers.append_parsed("via", b"2 wireloop");
                // HPACK's fields: the HTTP/1.1 writer checks them.
                c.resp.headers.mark_unparsed();
                c.resp_cl = response.content_length;
                // No body after a HEAD request, a 204 or a 304, whatever `content-length`
                // says (it describes the representation); its END_STREAM may come apart.
                let no_body = c.head_request || response.status == 204 || response.status == 304;
                c.resp_body = match (end_stream || no_body, response.content_length) {
                    (true, _) => ResponseBody::None,
                    (false, Some(n)) => ResponseBody::Length(n),
                    (false, None) => ResponseBody::Chunked,
                };
                if let Some(t) = s.sent_at.take() {
                    let rtt = self.now.saturating_duration_since(t);
                    self.groups[g].observe(p, rtt, self.now);
                    c.upstream_time = Some(rtt);
                }
                self.groups[g].record_success(p);
                c.answer = Answer::Head;
                if end_stream {
                    c.complete = true;
                    s.done = true;
                }
            }
            Event::Data {
                data, end_stream, ..
            } => {
                c.stage.extend_from_slice(data);
                s.held += data.len();
                if end_stream {
                    c.complete = true;
                    s.done = true;
                }
            }
            Event::Trailers { fields, .. } => {
                // Passed on after the body (gRPC's status is here).
                c.trailers.clear();
                for f in fields.iter() {
                    if let Ok(name) = std::str::from_utf8(f.name) {
                        c.trailers.append_parsed(name, f.value);
                    }
                }
                c.complete = true;
                s.done = true;
            }
            Event::Unprocessed { .. } if requeue(c, s) => {
                // Not processed (RFC 9113 §8.7): safe to send again, elsewhere.
                push_op(&mut self.ops, Op::Assign(s.client));
                return;
            }
            _ => {
                // Reset by the peer, or not processed and not to be sent again: the
                // client gets a 502 (or is cut off if its response started).
                s.done = true;
                push_op(&mut self.ops, Op::FailClient(s.client, 502));
                return;
            }
        }
        push_op(&mut self.later, Op::Wake(s.client.conn));
    }

    /// Gives held response bytes back to the windows of streams whose clients took them,
    /// removes finished streams, and hands freed room to waiting clients.
    pub(super) fn settle(&mut self, conn: UpConn<'_, '_, P::Ctx>, up: &mut H2Up) {
        let id = conn.id();
        let (g, p) = (up.group, up.peer);
        let mut ctl = conn.control();
        for s in up.streams.iter_mut() {
            if s.held == 0 || s.id == 0 {
                continue;
            }
            let room = client_of(&mut ctl, s.client).is_some_and(|c| {
                if c.stage.len() < STAGE_CAP {
                    return true;
                }
                c.up_paused = true;
                false
            });
            if room || s.done {
                up.h2.release(s.id, s.held);
                s.held = 0;
            }
        }
        let mut ended = 0;
        let h2 = &mut up.h2;
        up.streams.retain(|s| {
            if !s.done {
                return true;
            }
            if s.id != 0 {
                // Finished here while still open in the connection (answered before its
                // request body was all sent, its client gone, a send failed): reset, so
                // that it stops counting against the peer's stream limit and its held
                // bytes go back to the connection window. A stream both sides ended is
                // closed already: nothing is sent then.
                let _ = h2.reset(s.id, ErrorCode::CANCEL);
            }
            if let Some(c) = client_of(&mut ctl, s.client) {
                if c.up == Some(id) {
                    c.up = None;
                }
            }
            ended += 1;
            false
        });
        if ended > 0 {
            let load = self.groups[g].load_mut(p);
            load.busy = load.busy.saturating_sub(ended);
        }
        if up.streams.is_empty() {
            up.idle_since.get_or_insert(self.now);
            conn.set_read_timeout(None);
        }
        // Room freed: as many clients waiting at the connection limit as it takes come
        // here (each is assigned after this callback, so none is left waiting for an
        // event that may never come).
        let room = if self.draining { 0 } else { up.room() };
        for _ in 0..room {
            let Some(w) = self.groups[g].pool(p).waiting.pop_front() else {
                break;
            };
            let load = self.groups[g].load_mut(p);
            load.busy = load.busy.saturating_sub(1);
            push_op(&mut self.ops, Op::Assign(w));
        }
    }

    /// Opens the queued streams the peer has room for, sends request bodies as the
    /// windows allow, and writes the frames.
    fn pump(&mut self, conn: UpConn<'_, '_, P::Ctx>, up: &mut H2Up) {
        if !up.connected {
            return;
        }
        let scheme: &[u8] = if self.groups[up.group].peers()[up.peer].https {
            b"https"
        } else {
            b"http"
        };
        let mut names = std::mem::take(&mut self.scratch_names);
        for s in up.streams.iter_mut().filter(|s| !s.done) {
            if s.id == 0 {
                // Before the peer's SETTINGS, one stream at a time.
                if !up.h2.can_open() || (!up.settled && up.h2.open_streams() > 0) {
                    break;
                }
                let end = s.req_done && s.body.is_empty();
                let opened = send_head(
                    &mut up.h2,
                    &s.head,
                    scheme,
                    s.te_trailers,
                    end,
                    &self.s.http,
                    &mut names,
                );
                match opened {
                    Ok(id) => {
                        s.id = id;
                        s.sent_end = end;
                        s.sent_at = Some(self.now);
                        s.deadline = Some(self.now + self.s.first_byte_timeout);
                    }
                    Err(SendError::StreamLimit) => break,
                    Err(e) => {
                        log::warn!(
                            "client {}: request not sent upstream over HTTP/2: {e:?}",
                            s.client
                        );
                        s.done = true;
                        push_op(&mut self.ops, Op::FailClient(s.client, 502));
                        continue;
                    }
                }
            }
            if !s.sent_end && (!s.body.is_empty() || s.req_done) {
                match up.h2.send_data(s.id, &s.body, s.req_done) {
                    Ok(n) => {
                        s.body_started |= n > 0;
                        s.body.drain(..n);
                        s.sent_end = s.req_done && s.body.is_empty();
                    }
                    Err(_) => {
                        // The stream is gone on the upstream's side: the client is answered.
                        s.done = true;
                        push_op(&mut self.ops, Op::FailClient(s.client, 502));
                    }
                }
            }
        }
        self.scratch_names = names;
        let out = up.h2.output();
        if !out.is_empty() {
            let n = out.len();
            conn.write(out);
            up.h2.consume_output(n);
        }
        // A response body that stops coming ends with the read timeout (the connection
        // closes, its exchanges are cut off), as on HTTP/1.1: armed only while every
        // open stream is past its head (the heads have their own deadline, which a
        // shorter read timeout must not cut) and none is held back by its client.
        let mut live = up.streams.iter().filter(|s| !s.done).peekable();
        let mid_body = live.peek().is_some() && live.all(|s| s.answered && s.held == 0);
        conn.set_read_timeout(mid_body.then_some(self.s.read_timeout));
    }
}
