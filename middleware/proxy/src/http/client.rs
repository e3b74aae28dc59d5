//! The inbound side: client connections' state on open and close, and the HTTP/1.1
//! [`App`] that runs the policy's request phases, stages the upstream request, and passes
//! the staged response (or tunnel bytes after a 101) back.

use wireloop::{Action, Conn, Error};
use wireloop_middleware::http1::{
    write_chunk, write_last_chunk, App, BodyMode, Request, Response, ResponseBody, UpgradeEvent,
};
use wireloop_middleware::proxy_protocol::ProxyHeader;
use wireloop_middleware::TlsSession;

use super::headers::{request_head, tunnels_upgrade, HeadParts};
use super::state::{Answer, Client, ProxyConn, ProxyState, Side};
use super::{push_op, Engine, Op};
use crate::group::UpstreamProtocol;
use crate::phases::{Filter, ProxyHttp, Session};
use crate::ClientId;

/// Most request bytes staged for an upstream that is still connecting.
pub(crate) const CONNECTING_CAP: usize = 4 << 20;

/// Buffers of an idle keep-alive client beyond this are released.
const KEEP_CAP: usize = 64 * 1024;

impl<P: ProxyHttp> Engine<P> {
    /// A client connection opened (after the HTTP adapter set up its state).
    pub(crate) fn client_opened(&mut self, conn: &mut Conn<'_, ProxyState<P::Ctx>>) {
        let id = conn.id();
        // The client a PROXY protocol header names, else the socket's peer; where it
        // connected to only when some group passes both on in a header of its own.
        let header = conn.layer::<ProxyHeader>();
        let src = header
            .and_then(|h| h.source())
            .or_else(|| conn.peer_addr().ok().and_then(|a| a.inet()));
        let dst = if self.groups.iter().any(|g| g.send_proxy().is_some()) {
            header
                .and_then(|h| h.dest())
                .or_else(|| conn.local_addr().ok().and_then(|a| a.inet()))
        } else {
            None
        };
        let ip = src
            .map(|a| a.ip().to_string())
            .unwrap_or_else(|| "unix".into());
        let tls = self.s.tls_listeners.contains(&conn.addr_index());
        let sni = conn
            .layer::<TlsSession>()
            .and_then(|t| t.server_name())
            .map(str::to_string);
        if let Some(p) = conn.state.app_state() {
            let mut c = Client::new(ClientId::conn(id), ip, tls, self.now);
            c.sni = sni;
            c.addrs = src.zip(dst);
            c.peer_ip = src.map(|a| a.ip());
            if let Some(ip) = c.peer_ip {
                match self.s.limits.connected(ip, self.now) {
                    Some(false) => {
                        log::info!("client {ip}: over the connection limit, closed");
                        p.0 = Side::Gone;
                        conn.close();
                        return;
                    }
                    // Only a counted connection is uncounted when it closes.
                    counted => c.counted = counted == Some(true),
                }
            }
            p.0 = Side::Client(Box::new(c));
            if let Some(m) = &self.s.metrics {
                m.client_opened(conn.addr_index());
            }
        }
    }

    /// A client connection is closing for good: its exchange ends ([`Engine::client_gone`]),
    /// and it stops counting towards its IP's connections.
    pub(crate) fn client_closed(&mut self, conn: &mut Conn<'_, ProxyState<P::Ctx>>) {
        let Some(c) =
            conn.state
                .app_state()
                .and_then(|p| match std::mem::replace(&mut p.0, Side::Gone) {
                    Side::Client(c) => Some(c),
                    _ => None,
                })
        else {
            return;
        };
        if let Some(m) = &self.s.metrics {
            m.client_closed(conn.addr_index());
        }
        if let (true, Some(ip)) = (c.counted, c.peer_ip) {
            self.s.limits.disconnected(ip);
        }
        self.client_gone(c);
    }

    /// Client exchange `c` ended for good (its connection closed, its HTTP/2 stream
    /// ended or was reset): the request in flight is logged (499 if the client left
    /// first), it stops waiting for a connection, and its upstream connection, which
    /// cannot be reused, is reset.
    pub(crate) fn client_gone(&mut self, mut c: Box<Client<P::Ctx>>) {
        if matches!(c.answer, Answer::Pending | Answer::Head | Answer::Streaming) {
            let status = if c.status == 0 { 499 } else { c.status };
            self.log(&mut c, status);
        }
        if c.routed {
            self.stop_waiting(c.group, c.peer, c.id);
        }
        if let Some(up) = c.up {
            push_op(&mut self.ops, Op::Abandon(up, c.id));
        }
    }

    /// After any client-side callback: tunnel bytes from the upstream go straight out.
    pub(crate) fn flush_tunnel(&mut self, conn: &mut Conn<'_, ProxyState<P::Ctx>>) {
        let Some(c) = conn.state.app_state().and_then(|p| p.0.client()) else {
            return;
        };
        if c.tunnel && c.answer == Answer::Done && !c.stage.is_empty() {
            let stage = std::mem::take(&mut c.stage);
            let paused = std::mem::take(&mut c.up_paused);
            let up = c.up;
            conn.write(&stage);
            if let Some(c) = conn.state.app_state().and_then(|p| p.0.client()) {
                c.stage = stage;
                c.stage.clear();
            }
            if let (true, Some(up)) = (paused, up) {
                push_op(&mut self.later, Op::Wake(up));
            }
        }
    }

    /// Stages request body bytes for client `c`'s upstream.
    fn send_up(&mut self, c: &mut Client<P::Ctx>, data: &[u8], last: bool) {
        if c.up.is_none() {
            if c.answer != Answer::Pending {
                // The exchange already ended (an early answer): the rest of the body is
                // not forwarded.
                if last {
                    c.req_done = true;
                }
                return;
            }
            if c.req_stage.len() > CONNECTING_CAP {
                return;
            }
        }
        if last {
            c.req_done = true;
        }
        if c.req_chunked {
            write_chunk(&mut c.req_stage, data);
            if last {
                write_last_chunk(&mut c.req_stage);
            }
        } else {
            c.req_stage.extend_from_slice(data);
        }
        if c.up.is_some() {
            push_op(&mut self.ops, Op::Flush(c.id));
        }
    }

    /// Starts client `c`'s request: the policy's filter, route and rewrite, then the
    /// upstream head. `false` if the request was answered here.
    fn start(&mut self, req: &Request<'_>, res: &mut Response<'_>, c: &mut Client<P::Ctx>) -> bool {
        if let (Some(ip), Some(_)) = (c.peer_ip, self.s.limits.requests_per_second_per_ip) {
            if let Err(wait) = self.s.limits.request(ip, self.now) {
                // Whole seconds, rounded up: never "0", which would invite a retry now.
                let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                c.status = 429;
                res.status(429)
                    .header("Retry-After", secs.max(1).to_string())
                    .body(b"too many requests\n");
                return false;
            }
        }
        let session = Session {
            conn: c.id.conn,
            client_ip: &c.ip,
            tls: c.tls,
            sni: c.sni.as_deref(),
            now: self.now,
        };
        if self.policy.request_filter(req, res, &session, &mut c.ctx) == Filter::Answered {
            if !res.is_started() {
                res.status(500)
                    .close()
                    .body(b"request filter gave no answer\n");
            }
            c.status = res.status_code();
            return false;
        }
        if req.method() == "CONNECT" {
            // No tunnels to where a client names: the upstream would take a 2xx as the
            // start of one while the proxy read it as a response (and pooled the
            // connection). A policy that wants CONNECT answers it in `request_filter`.
            c.status = 501;
            res.status(501).close().body(b"CONNECT is not supported\n");
            return false;
        }
        let Some(t) = self
            .policy
            .upstream_peer(req, &session, &self.groups, &mut c.ctx)
        else {
            c.status = 404;
            res.status(404).body(b"no route\n");
            return false;
        };
        c.max_body = t.max_body;
        c.route = t.route;
        if let (Some(max), Some(len)) = (t.max_body, req.content_length()) {
            if len > max {
                c.status = 413;
                res.status(413).close().body(b"request body too large\n");
                return false;
            }
        }
        let Some(g) = self.groups.get_mut(t.group) else {
            log::error!("policy chose group {} of {}", t.group, self.groups.len());
            c.status = 502;
            res.status(502).body(b"no such upstream group\n");
            return false;
        };
        let key = match t.key {
            Some(k) => k,
            None if *g.balance() == crate::Balance::Hash => g.hash_key().hash(req, &c.ip),
            None => 0,
        };
        let peer = match t.peer {
            Some(p) if p < g.peers().len() => Some(p),
            Some(_) => None,
            None => g.pick(key, self.now, 0),
        };
        let Some(peer) = peer else {
            // No healthy peer (or the policy named none of the group): answer now rather
            // than wait for a connect to fail.
            let (status, why) = match t.peer {
                None => (503, &b"no healthy upstream\n"[..]),
                Some(_) => (502, &b"no such peer\n"[..]),
            };
            c.status = status;
            res.status(status).body(why);
            return false;
        };
        c.group = t.group;
        c.peer = peer;
        c.key = key;
        c.routed = true;
        c.attempts = 1;
        c.tried = crate::group::peer_bit(peer);
        self.groups[t.group].count_request();
        self.policy
            .upstream_request(req, &mut c.rewrite, &mut c.ctx);
        c.req_stage.clear();
        let parts = HeadParts {
            client_ip: &c.ip,
            proto: if c.tls { "https" } else { "http" },
            authority: &self.groups[t.group].peers()[peer].authority,
            rewrite_host: self.s.rewrite_host,
            rewrite: &c.rewrite,
        };
        if !request_head(
            req,
            &parts,
            &mut self.scratch,
            &mut self.scratch2,
            &mut c.req_stage,
        ) {
            c.status = 400;
            res.status(400).close().body(b"bad request\n");
            return false;
        }
        c.head_len = c.req_stage.len();
        if self.groups[t.group].protocol() == UpstreamProtocol::H2 {
            // HTTP/2 frames the body itself (DATA frames, END_STREAM).
            c.req_chunked = false;
            c.te_trailers = req
                .header("te")
                .is_some_and(|v| v.eq_ignore_ascii_case(b"trailers"));
        }
        true
    }
}

impl<P: ProxyHttp> App for Engine<P> {
    type State = ProxyConn<P::Ctx>;

    fn body_mode(&mut self, _req: &Request<'_>, _: &mut Self::State) -> BodyMode {
        BodyMode::Stream
    }

    fn stream_state(&mut self, conn: &mut Self::State, stream: u32) -> Self::State {
        match conn.0.client() {
            Some(c) => ProxyConn(Side::Client(Box::new(c.for_stream(stream, self.now)))),
            None => ProxyConn(Side::Gone),
        }
    }

    fn hold_input(&mut self, state: &mut Self::State) -> bool {
        state
            .0
            .client()
            .is_some_and(|c| c.up_backed || c.req_stage.len() > CONNECTING_CAP)
    }

    fn closed(&mut self, state: &mut Self::State, _err: Option<Error>) {
        // An HTTP/2 stream ended (a connection's own exchange ended in `client_closed`).
        if let Side::Client(c) = std::mem::replace(&mut state.0, Side::Gone) {
            self.client_gone(c);
        }
    }

    fn request(&mut self, req: &Request<'_>, res: &mut Response<'_>, state: &mut Self::State) {
        let Some(c) = state.0.client() else {
            res.status(500).body(b"unknown connection\n");
            return;
        };
        c.method.clear();
        c.method.push_str(req.method());
        c.target.clear();
        c.target.push_str(req.target());
        c.started = self.now;
        c.upstream_time = None;
        c.sent = 0;
        c.status = 0;
        c.routed = false;
        c.replays = 0;
        c.answer = Answer::Pending;
        c.complete = false;
        c.cut_off = false;
        c.up_paused = false;
        c.stage.clear();
        c.resp.headers.clear();
        c.trailers.clear();
        c.req_chunked = req.is_chunked();
        c.te_trailers = false;
        c.req_done = !req.has_body();
        c.max_body = None;
        c.body_seen = 0;
        c.route = None;
        c.head_request = req.is_head();
        c.upgrade_req = tunnels_upgrade(req);
        c.idempotent = matches!(req.method(), "GET" | "HEAD" | "OPTIONS");
        c.ctx = P::Ctx::default();
        c.rewrite.clear();
        if !self.start(req, res, c) {
            c.answer = Answer::Done;
            let status = c.status;
            self.log(c, status);
            return;
        }
        push_op(&mut self.ops, Op::Assign(c.id));
    }

    fn body(&mut self, data: &[u8], _res: &mut Response<'_>, state: &mut Self::State) {
        if let Some(c) = state.0.client() {
            c.body_seen += data.len() as u64;
            if c.max_body.is_some_and(|max| c.body_seen > max) {
                if c.answer == Answer::Pending || c.up.is_some() {
                    // Over the route's limit (a chunked body): the exchange ends here.
                    log::info!("client {}: request body over {:?} bytes", c.id, c.max_body);
                    push_op(&mut self.ops, Op::TooLarge(c.id));
                }
                return;
            }
            self.send_up(c, data, false);
        }
    }

    fn body_end(&mut self, res: &mut Response<'_>, state: &mut Self::State) {
        if let Some(c) = state.0.client() {
            if !c.req_done {
                self.send_up(c, &[], true);
            }
        }
        self.resume(res, state);
    }

    fn resume(&mut self, res: &mut Response<'_>, state: &mut Self::State) {
        let Some(c) = state.0.client() else {
            return;
        };
        match c.answer {
            Answer::Pending | Answer::Done => return,
            Answer::Fail(status) => {
                c.answer = Answer::Done;
                if res.is_started() {
                    log::debug!("client {}: upstream failed mid-response; closing", c.id);
                    res.abort();
                } else {
                    c.status = status;
                    res.status(status)
                        .header("Content-Type", "text/plain")
                        .close()
                        .body(if status == 504 {
                            b"upstream timed out\n"
                        } else if status == 413 {
                            b"request body too large\n"
                        } else {
                            b"upstream failed\n"
                        });
                }
                let st = if c.status == 0 { status } else { c.status };
                self.log(c, st);
                if let Some(up) = c.up.take() {
                    push_op(&mut self.ops, Op::Release(up, false));
                }
                return;
            }
            Answer::Head => {
                let upgrade = c.status == 101;
                c.resp.status = c.status;
                self.policy.response_filter(&mut c.resp, &mut c.ctx);
                if upgrade || c.resp.status == 101 || !(200..1000).contains(&c.resp.status) {
                    c.resp.status = c.status;
                }
                c.status = c.resp.status;
                res.status(c.status);
                if c.resp.headers.all_parsed() {
                    // As the upstream's parser checked them (and `Via`, ours).
                    res.headers_prechecked(c.resp.headers.iter());
                } else {
                    for (name, value) in c.resp.headers.iter() {
                        res.header(name, value);
                    }
                }
                if upgrade {
                    if !res.upgrade() {
                        res.abort();
                    }
                    c.answer = Answer::Done;
                    self.log(c, 101);
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
        if c.cut_off && !c.complete && c.stage.is_empty() {
            // The upstream failed after its head: what arrived is passed on, then the
            // response is cut off.
            log::debug!("client {}: upstream failed mid-response; closing", c.id);
            res.abort();
            c.answer = Answer::Done;
            let status = c.status;
            self.log(c, status);
            return;
        }
        if c.complete && c.stage.is_empty() {
            if !c.req_done {
                // The response ends before the request body was read whole: the rest is
                // not read; the client connection closes after the response.
                res.close();
            }
            if c.trailers.is_empty() {
                res.finish();
            } else {
                res.finish_with_trailers(c.trailers.iter());
                c.trailers.clear();
            }
            c.answer = Answer::Done;
            // An idle keep-alive client keeps no large buffers.
            if c.stage.capacity() > KEEP_CAP {
                c.stage = Vec::new();
            }
            if c.req_stage.capacity() > KEEP_CAP {
                c.req_stage = Vec::new();
            }
            c.resp.headers.shrink(KEEP_CAP);
            let status = c.status;
            self.log(c, status);
        }
    }

    fn client_eof(&mut self, res: &mut Response<'_>, state: &mut Self::State) {
        // The client gave up while its upstream exchange is in flight (nginx: "client
        // prematurely closed connection", 499): stop here rather than hold both
        // connections until the upstream finishes, which may be never. Closing the client
        // ends the exchange: `client_closed` closes the upstream connection.
        let Some(c) = state.0.client() else {
            return;
        };
        if !c.complete && matches!(c.answer, Answer::Pending | Answer::Head | Answer::Streaming) {
            log::debug!("client {}: closed its side mid-exchange; aborting", c.id);
            c.status = 499;
            res.abort();
        }
    }

    fn upgraded<T>(
        &mut self,
        conn: &mut Conn<'_, T>,
        event: UpgradeEvent,
        state: &mut Self::State,
    ) -> Action {
        let Some(c) = state.0.client() else {
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
            // Client bytes go straight to the upstream (through its layers).
            UpgradeEvent::Data if !conn.input().is_empty() && !conn.forward(up_id) => {
                return Action::Close;
            }
            UpgradeEvent::Eof => {
                // Run by the handler right after this callback.
                push_op(&mut self.ops, Op::Release(up_id, false));
                return Action::Close;
            }
            _ => {}
        }
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
