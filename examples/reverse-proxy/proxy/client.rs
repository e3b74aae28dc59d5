//! The inbound side: client connections' state on open and close, and the HTTP/1.1
//! [`App`] that turns requests into staged upstream requests and passes staged responses
//! (or tunnel bytes after a 101) back.

use std::time::Instant;

use wireloop::{Action, Conn, ConnId};
use wireloop_middleware::http1::{
    write_chunk, write_last_chunk, App, BodyMode, Request, Response, ResponseBody, UpgradeEvent,
};

use super::access_log::access_log;
use super::{push_op, slot_get, slot_put, Answer, Client, Op, PState, Proxy};

/// Most request bytes staged for an upstream that is still connecting.
const CONNECTING_CAP: usize = 4 << 20;

impl Proxy {
    /// A client connection opened (before the HTTP adapter sees it).
    pub fn client_opened(&mut self, conn: &mut Conn<'_, PState>) {
        let id = conn.id();
        let ip = conn
            .peer_addr()
            .ok()
            .and_then(|a| a.inet())
            .map(|a| a.ip().to_string())
            .unwrap_or_else(|| "unix".into());
        let proto = if Some(conn.addr_index()) == self.tls_index {
            "https"
        } else {
            "http"
        };
        slot_put(
            &mut self.clients,
            id,
            Client {
                id,
                ip,
                proto,
                up: None,
                upstream: 0,
                retries: 0,
                req_stage: Vec::new(),
                req_chunked: false,
                req_done: false,
                head_request: false,
                upgrade_req: false,
                answer: Answer::Done,
                status: 0,
                resp_head: Vec::new(),
                resp_body: ResponseBody::None,
                resp_cl: None,
                stage: Vec::new(),
                complete: false,
                cut_off: false,
                up_paused: false,
                tunnel: false,
                tunnel_eof: false,
                method: String::new(),
                target: String::new(),
                started: Instant::now(),
                sent: 0,
            },
        );
    }

    /// A client connection closed: its upstream connection, if in the middle of an
    /// exchange, is closed too (it cannot be reused).
    pub fn client_closed(&mut self, conn: &mut Conn<'_, PState>) {
        let id = conn.id();
        let Some(c) = self
            .clients
            .get_mut(id.slot())
            .and_then(|c| c.take_if(|c| c.id == id))
        else {
            return;
        };
        if matches!(c.answer, Answer::Pending | Answer::Head | Answer::Streaming) {
            self.access_log(&c, if c.status == 0 { 499 } else { c.status });
        }
        for h in &mut self.health {
            h.waiting.retain(|w| *w != id);
        }
        if let Some(up) = c.up {
            if let Some(u) = slot_get(&mut self.ups, up, |u| u.id) {
                u.client = None;
                u.broken = true;
                push_op(&mut self.ops, Op::Close(up));
            }
        }
    }

    /// After any client-side callback: tunnel bytes from the upstream go straight out.
    pub fn flush_tunnel(&mut self, conn: &mut Conn<'_, PState>) {
        let Some(c) = slot_get(&mut self.clients, conn.id(), |c| c.id) else {
            return;
        };
        if c.tunnel && c.answer == Answer::Done && !c.stage.is_empty() {
            conn.write(&c.stage);
            c.stage.clear();
            if c.up_paused {
                c.up_paused = false;
                if let Some(up) = c.up {
                    push_op(&mut self.ops, Op::Wake(up));
                }
            }
        }
    }

    /// Stages request body bytes for client `id`'s upstream.
    pub(super) fn send_up(&mut self, id: ConnId, data: &[u8], last: bool) {
        let Some(c) = slot_get(&mut self.clients, id, |c| c.id) else {
            return;
        };
        let chunked = c.req_chunked;
        let target = match c.up.and_then(|u| slot_get(&mut self.ups, u, |u| u.id)) {
            Some(up) if up.client == Some(id) => {
                up.deadline = Some(Instant::now() + self.s.upstream_timeout);
                if last {
                    up.req_done = true;
                    c.req_done = true;
                }
                if !up.connected && up.out.len() > CONNECTING_CAP {
                    log::warn!("request body backed up while connecting; giving up");
                    up.broken = true;
                    let up_id = up.id;
                    self.fail_client(id, 502);
                    self.release(up_id, false);
                    return;
                }
                let up_id = up.id;
                push_op(&mut self.ops, Op::Wake(up_id));
                &mut slot_get(&mut self.ups, up_id, |u| u.id).expect("up").out
            }
            // No connection yet (dial queued or waiting for the pool), or the exchange
            // already ended (an early answer): stage or drop.
            _ => {
                if c.answer != Answer::Pending {
                    // The rest of the body is not forwarded.
                    if last {
                        c.req_done = true;
                    }
                    return;
                }
                if c.req_stage.len() > CONNECTING_CAP {
                    return;
                }
                if last {
                    c.req_done = true;
                }
                &mut c.req_stage
            }
        };
        if chunked {
            write_chunk(target, data);
            if last {
                write_last_chunk(target);
            }
        } else {
            target.extend_from_slice(data);
        }
    }
}

impl App for Proxy {
    type State = ();

    fn body_mode(&mut self, _req: &Request<'_>, _: &mut ()) -> BodyMode {
        BodyMode::Stream
    }

    fn request(&mut self, req: &Request<'_>, res: &mut Response<'_>, _: &mut ()) {
        let Some(id) = res.conn_id() else {
            res.status(500).body(b"no connection\n");
            return;
        };
        let u = self.pick();
        let Some(c) = slot_get(&mut self.clients, id, |c| c.id) else {
            res.status(500).body(b"unknown connection\n");
            return;
        };
        c.method.clear();
        c.method.push_str(req.method());
        c.target.clear();
        c.target.push_str(req.target());
        c.started = Instant::now();
        c.sent = 0;
        c.status = 0;
        c.upstream = u;
        c.retries = 0;
        c.answer = Answer::Pending;
        c.complete = false;
        c.cut_off = false;
        c.up_paused = false;
        c.stage.clear();
        c.resp_head.clear();
        c.req_chunked = req.is_chunked();
        c.req_done = !req.has_body();
        c.head_request = req.is_head();
        c.upgrade_req = req.wants_upgrade();
        let ip = std::mem::take(&mut c.ip);
        let proto = c.proto;
        let mut head = std::mem::take(&mut c.req_stage);
        head.clear();
        let ok = self.request_head(req, &ip, proto, u, &mut head);
        let c = slot_get(&mut self.clients, id, |c| c.id).expect("client");
        c.ip = ip;
        c.req_stage = head;
        if !ok {
            c.answer = Answer::Done;
            c.status = 400;
            access_log(
                &self.s,
                &self.upstreams,
                slot_get(&mut self.clients, id, |c| c.id).expect("client"),
                400,
            );
            res.status(400).close().body(b"bad request\n");
            return;
        }
        self.assign(id);
    }

    fn body(&mut self, data: &[u8], _res: &mut Response<'_>, _: &mut ()) {
        // `Response::conn_id` is the client; stage for its upstream.
        if let Some(id) = _res.conn_id() {
            self.send_up(id, data, false);
        }
    }

    fn body_end(&mut self, res: &mut Response<'_>, _: &mut ()) {
        if let Some(id) = res.conn_id() {
            let has_body = slot_get(&mut self.clients, id, |c| c.id).is_some_and(|c| !c.req_done);
            if has_body {
                self.send_up(id, &[], true);
            }
        }
        self.resume(res, &mut ());
    }

    fn resume(&mut self, res: &mut Response<'_>, _: &mut ()) {
        let Some(id) = res.conn_id() else {
            return;
        };
        let Some(c) = slot_get(&mut self.clients, id, |c| c.id) else {
            return;
        };
        match c.answer {
            Answer::Pending | Answer::Done => return,
            Answer::Fail(status) => {
                c.answer = Answer::Done;
                if res.is_started() {
                    log::debug!("client {id}: upstream failed mid-response; closing");
                    res.abort();
                } else {
                    c.status = status;
                    res.status(status)
                        .header("Content-Type", "text/plain")
                        .close()
                        .body(if status == 504 {
                            b"upstream timed out\n"
                        } else {
                            b"upstream failed\n"
                        });
                }
                let up = c.up.take();
                let c = slot_get(&mut self.clients, id, |c| c.id).expect("client");
                let st = if c.status == 0 { status } else { c.status };
                access_log(
                    &self.s,
                    &self.upstreams,
                    slot_get(&mut self.clients, id, |c| c.id).expect("client"),
                    st,
                );
                if let Some(up) = up {
                    self.release(up, false);
                }
                return;
            }
            Answer::Head => {
                res.status(c.status);
                let head = std::mem::take(&mut c.resp_head);
                for line in head.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    if let Some(i) = line.iter().position(|&b| b == b':') {
                        if let Ok(name) = std::str::from_utf8(&line[..i]) {
                            res.header(name, line[i + 1..].trim_ascii());
                        }
                    }
                }
                c.resp_head = head;
                if c.status == 101 {
                    if !res.upgrade() {
                        res.abort();
                    }
                    c.answer = Answer::Done;
                    let c = slot_get(&mut self.clients, id, |c| c.id).expect("client");
                    access_log(&self.s, &self.upstreams, c, 101);
                    return;
                }
                if !c.req_done && (c.complete || c.up.is_none()) {
                    // An early answer: the upstream is done before the request body was
                    // forwarded whole. The rest is not read; the client connection closes.
                    res.close();
                }
                match (c.resp_body, c.head_request) {
                    (ResponseBody::Length(n), _) => res.start_sized(n),
                    (ResponseBody::Chunked | ResponseBody::UntilClose, _) => res.start_chunked(),
                    (ResponseBody::None, true) => match c.resp_cl {
                        Some(n) => res.start_sized(n),
                        None => res.start_chunked(),
                    },
                    (ResponseBody::None, false) => res.body(b""),
                }
                c.answer = Answer::Streaming;
            }
            Answer::Streaming => {}
        }
        let c = slot_get(&mut self.clients, id, |c| c.id).expect("client");
        if !c.stage.is_empty() {
            c.sent += c.stage.len() as u64;
            res.write(&c.stage);
            c.stage.clear();
            if c.up_paused {
                c.up_paused = false;
                if let Some(up) = c.up {
                    push_op(&mut self.ops, Op::Wake(up));
                }
            }
        }
        let c = slot_get(&mut self.clients, id, |c| c.id).expect("client");
        if c.cut_off && !c.complete && c.stage.is_empty() {
            // The upstream failed after its head: what arrived is passed on, then the
            // response is cut off.
            log::debug!("client {id}: upstream failed mid-response; closing");
            res.abort();
            c.answer = Answer::Done;
            let status = c.status;
            let c = slot_get(&mut self.clients, id, |c| c.id).expect("client");
            access_log(&self.s, &self.upstreams, c, status);
            return;
        }
        if c.complete && c.stage.is_empty() {
            if !c.req_done {
                // The response ends before the request body was read whole: the rest is
                // not read; the client connection closes after the response.
                res.close();
            }
            res.finish();
            c.answer = Answer::Done;
            // An idle keep-alive client keeps no large buffers.
            if c.stage.capacity() > 64 * 1024 {
                c.stage = Vec::new();
            }
            if c.req_stage.capacity() > 64 * 1024 {
                c.req_stage = Vec::new();
            }
            let status = c.status;
            let c = slot_get(&mut self.clients, id, |c| c.id).expect("client");
            access_log(&self.s, &self.upstreams, c, status);
        }
    }

    fn client_eof(&mut self, res: &mut Response<'_>, _: &mut ()) {
        // The client gave up while its upstream exchange is in flight (nginx: "client
        // prematurely closed connection", 499): stop here rather than hold both
        // connections until the upstream finishes, which may be never. Closing the client
        // ends the exchange: `client_closed` closes the upstream connection.
        let Some(id) = res.conn_id() else {
            return;
        };
        let Some(c) = slot_get(&mut self.clients, id, |c| c.id) else {
            return;
        };
        if !c.complete && matches!(c.answer, Answer::Pending | Answer::Head | Answer::Streaming) {
            log::debug!("client {id}: closed its side mid-exchange; aborting");
            c.status = 499;
            res.abort();
        }
    }

    fn upgraded<T>(&mut self, conn: &mut Conn<'_, T>, event: UpgradeEvent, _: &mut ()) -> Action {
        let id = conn.id();
        let Some(c) = slot_get(&mut self.clients, id, |c| c.id) else {
            return Action::Close;
        };
        let Some(up_id) = c.up else {
            // The upstream side is gone: finish writing, then close.
            if !c.stage.is_empty() {
                conn.write(&c.stage);
                c.stage.clear();
            }
            return Action::Close;
        };
        match event {
            UpgradeEvent::Data => {
                if let Some(up) = slot_get(&mut self.ups, up_id, |u| u.id) {
                    up.out.extend_from_slice(conn.input());
                    let n = conn.input().len();
                    conn.consume(n);
                    conn.control().wake(up_id);
                }
            }
            UpgradeEvent::Eof => {
                self.release(up_id, false);
                return Action::Close;
            }
            _ => {}
        }
        let c = slot_get(&mut self.clients, id, |c| c.id).expect("client");
        if !c.stage.is_empty() {
            conn.write(&c.stage);
            c.stage.clear();
        }
        if c.tunnel_eof {
            return Action::Close;
        }
        if c.up_paused {
            c.up_paused = false;
            conn.control().wake(up_id);
        }
        Action::None
    }
}
