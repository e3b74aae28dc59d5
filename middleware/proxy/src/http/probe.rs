//! Active health checks from the loop itself: the tick starts the checks that are due
//! (a dial through the reactor, like any upstream connection: names resolved off the
//! loop, the peer's TLS layer) and fails the ones that ran out of time; a probe
//! connection passes when it connects (TCP check) or when the head of its `GET` answer
//! has an expected status (HTTP check). Verdicts go to the group's
//! [`Checker`](crate::health::Checker), and changes of health to every loop.

use std::time::{Duration, Instant};

use wireloop::{Action, Conn, Control, DialOptions, Error};
use wireloop_middleware::http1::{
    header_slots, parse_response, write_request_head, BodyLength, Http1Conn,
};

use super::state::{Probe, ProxyConn, ProxyState, Side};
use super::Engine;
use crate::health::{publish, CheckKind};
use crate::phases::ProxyHttp;

type PConn<'c, 'a, C> = &'c mut Conn<'a, ProxyState<C>>;

impl<P: ProxyHttp> Engine<P> {
    /// Fails the checks that ran out of time and starts those that are due, for the
    /// groups this loop checks. The time until the next thing to do, if any.
    pub(crate) fn run_checks(
        &mut self,
        ctl: &mut Control<'_, ProxyState<P::Ctx>>,
    ) -> Option<Duration> {
        let now = self.now;
        let me = ctl.loop_index();
        let mut next: Option<Instant> = None;
        for g in 0..self.groups.len() {
            if self.groups[g].health_check().is_none() {
                continue;
            }
            while let Some(c) = self.groups[g].checker(me, now) {
                let Some((p, conn)) = c.overdue(now) else {
                    break;
                };
                let v = c.report(p, false, now);
                if let Some(id) = conn {
                    if let Some(Side::Probe(pr)) =
                        ctl.state(id).and_then(|s| s.app_state()).map(|s| &mut s.0)
                    {
                        pr.done = true;
                    }
                    ctl.close(id);
                }
                publish(&self.groups[g], p, v, "no answer in time");
            }
            while let Some(p) = self.groups[g].checker(me, now).and_then(|c| c.due(now)) {
                self.start_probe(ctl, g, p);
            }
            if let Some(t) = self.groups[g].checker(me, now).and_then(|c| c.next_event()) {
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        }
        next.map(|t| t.saturating_duration_since(now))
    }

    /// Dials peer `p` of group `g` for a check.
    fn start_probe(&mut self, ctl: &mut Control<'_, ProxyState<P::Ctx>>, g: usize, p: usize) {
        let Some(check) = self.groups[g].health_check() else {
            return;
        };
        let peer = &self.groups[g].peers()[p];
        let mut probe = Probe {
            group: g,
            peer: p,
            request: Vec::new(),
            expect: (0, 0),
            done: false,
        };
        if let CheckKind::Http { path, expect } = &check.kind {
            probe.expect = *expect;
            let headers = [
                ("Host", peer.authority.as_bytes()),
                ("User-Agent", &b"wireloop-health-check"[..]),
                ("Connection", b"close"),
            ];
            if write_request_head(&mut probe.request, "GET", path, headers, BodyLength::None)
                .is_err()
            {
                probe.request.clear();
            }
        }
        let mut opts = DialOptions::new().timeout(check.timeout);
        if let Some(tls) = &peer.tls {
            opts = opts.layer(tls.clone());
        }
        let state = Http1Conn::foreign(ProxyConn(Side::Probe(Box::new(probe))));
        let me = ctl.loop_index();
        match ctl.dial(&peer.dial, opts, state) {
            Ok(id) => {
                if let Some(c) = self.groups[g].checker(me, self.now) {
                    c.started(p, id);
                }
            }
            Err(e) => {
                let why = format!("cannot dial: {e}");
                self.probe_result(me, g, p, false, &why);
            }
        }
    }

    /// A probe connected: a TCP check passed; an HTTP check sends its request.
    pub(crate) fn probe_opened(
        &mut self,
        conn: PConn<'_, '_, P::Ctx>,
        mut side: Side<P::Ctx>,
    ) -> Action {
        let Side::Probe(pr) = &mut side else {
            return Action::Close;
        };
        let action = if pr.request.is_empty() {
            pr.done = true;
            let (g, p) = (pr.group, pr.peer);
            let me = conn.control().loop_index();
            self.probe_result(me, g, p, true, "connected");
            Action::Close
        } else {
            conn.write(&pr.request);
            Action::None
        };
        put(conn, side);
        action
    }

    /// Bytes of a probe's answer: its head decides.
    pub(crate) fn probe_data(
        &mut self,
        conn: PConn<'_, '_, P::Ctx>,
        side: &mut Side<P::Ctx>,
    ) -> Action {
        let Side::Probe(pr) = side else {
            return Action::Close;
        };
        if pr.done {
            return Action::Close;
        }
        let me = conn.control().loop_index();
        let (g, p) = (pr.group, pr.peer);
        loop {
            let mut slots = header_slots();
            match parse_response(conn.input(), &mut slots, &self.s.http, false) {
                Ok(None) => return Action::None,
                Ok(Some((n, head))) if head.is_interim() => conn.consume(n),
                Ok(Some((_, head))) => {
                    let status = head.status();
                    pr.done = true;
                    let ok = (pr.expect.0..=pr.expect.1).contains(&status);
                    self.probe_result(me, g, p, ok, &format!("status {status}"));
                    return Action::Close;
                }
                Err(e) => {
                    pr.done = true;
                    self.probe_result(me, g, p, false, &e.to_string());
                    return Action::Close;
                }
            }
        }
    }

    /// A probe connection is gone: without a result, the check failed.
    pub(crate) fn probe_closed(&mut self, conn: PConn<'_, '_, P::Ctx>, err: Option<Error>) {
        let me = conn.control().loop_index();
        let Some(Side::Probe(pr)) = conn.state.app_state().map(|s| &mut s.0) else {
            return;
        };
        if pr.done {
            return;
        }
        pr.done = true;
        let (g, p) = (pr.group, pr.peer);
        let why = err.map_or_else(|| "closed without answering".to_string(), |e| e.to_string());
        self.probe_result(me, g, p, false, &why);
    }

    /// Peer `p` of group `g` passed its check or not (`why`, for the log).
    fn probe_result(&mut self, me: usize, g: usize, p: usize, ok: bool, why: &str) {
        let now = self.now;
        let Some(c) = self.groups[g].checker(me, now) else {
            return;
        };
        let v = c.report(p, ok, now);
        publish(&self.groups[g], p, v, why);
    }
}

fn put<C>(conn: PConn<'_, '_, C>, side: Side<C>) {
    if let Some(s) = conn.state.app_state() {
        s.0 = side;
    }
}
