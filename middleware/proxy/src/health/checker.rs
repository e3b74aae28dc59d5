//! The active checks of one group as a state machine over time and results, with no
//! sockets: which peer is due for a check, which check ran out of time, and what a
//! result does to the peer's health (`fall` failures in a row take it out, `rise`
//! successes in a row bring it back). The engine feeds it the loop's clock and the
//! outcome of each probe connection; tests feed it a manual clock.

use std::time::Instant;

use wireloop::ConnId;

use super::HealthCheck;

/// A change of a peer's health.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// It passed `rise` checks in a row: back in.
    Up,
    /// It failed `fall` checks in a row: out.
    Down,
}

/// One peer's check state.
#[derive(Clone, Debug)]
struct PeerCheck {
    healthy: bool,
    /// Results in a row that disagree with `healthy`.
    run: u32,
    /// When the next check starts.
    next: Instant,
    /// The check in flight: when it started, and its connection once dialed.
    in_flight: Option<(Instant, Option<ConnId>)>,
}

/// The checks of a group's peers on the loop that runs them.
#[derive(Clone, Debug)]
pub struct Checker {
    check: HealthCheck,
    peers: Vec<PeerCheck>,
}

impl Checker {
    /// Checks of `peers` peers, all healthy until checks say otherwise, the first ones
    /// due at `now`.
    pub fn new(check: HealthCheck, peers: usize, now: Instant) -> Checker {
        let peer = PeerCheck {
            healthy: true,
            run: 0,
            next: now,
            in_flight: None,
        };
        Checker {
            check,
            peers: vec![peer; peers],
        }
    }

    /// What a check does, how often and how long it may take.
    pub fn check(&self) -> &HealthCheck {
        &self.check
    }

    /// Whether peer `i` is healthy (`true` out of range).
    pub fn is_healthy(&self, i: usize) -> bool {
        self.peers.get(i).is_none_or(|p| p.healthy)
    }

    /// A peer whose check is due at `now` and not in flight, now counted as started (tell
    /// its connection with [`started`](Checker::started), its result with
    /// [`report`](Checker::report)). `None` when no check is due.
    pub fn due(&mut self, now: Instant) -> Option<usize> {
        let i = self
            .peers
            .iter()
            .position(|p| p.in_flight.is_none() && p.next <= now)?;
        self.peers[i].in_flight = Some((now, None));
        Some(i)
    }

    /// Peer `i`'s check in flight runs on connection `conn`.
    pub fn started(&mut self, i: usize, conn: ConnId) {
        if let Some(f) = self.peers.get_mut(i).and_then(|p| p.in_flight.as_mut()) {
            f.1 = Some(conn);
        }
    }

    /// Peer `i`'s check in flight ended at `now`, passed or not. The next one starts an
    /// interval after this one started (at once if that is past). Returns the change of
    /// health it caused, if any. A report with no check in flight is ignored.
    pub fn report(&mut self, i: usize, ok: bool, now: Instant) -> Option<Verdict> {
        let interval = self.check.interval;
        let (rise, fall) = (self.check.rise.max(1), self.check.fall.max(1));
        let p = self.peers.get_mut(i)?;
        let (started, _) = p.in_flight.take()?;
        p.next = (started + interval).max(now);
        if ok == p.healthy {
            p.run = 0;
            return None;
        }
        p.run += 1;
        if p.run < if p.healthy { fall } else { rise } {
            return None;
        }
        p.run = 0;
        p.healthy = ok;
        Some(if ok { Verdict::Up } else { Verdict::Down })
    }

    /// Like [`report`](Checker::report), for the check in flight on connection `conn`
    /// only: a result from any other connection (a probe whose time ran out, reporting
    /// late) is ignored.
    pub fn report_for(
        &mut self,
        i: usize,
        conn: ConnId,
        ok: bool,
        now: Instant,
    ) -> Option<Verdict> {
        let current = self.peers.get(i)?.in_flight?.1;
        if current != Some(conn) {
            return None;
        }
        self.report(i, ok, now)
    }

    /// A check in flight whose time ran out at `now`: its peer and connection (to be
    /// closed). Report it as failed before asking again.
    pub fn overdue(&self, now: Instant) -> Option<(usize, Option<ConnId>)> {
        let timeout = self.check.timeout;
        self.peers
            .iter()
            .enumerate()
            .find_map(|(i, p)| match p.in_flight {
                Some((started, conn)) if now >= started + timeout => Some((i, conn)),
                _ => None,
            })
    }

    /// The next moment something is to be done: a check due or a check's time running
    /// out.
    pub fn next_event(&self) -> Option<Instant> {
        let timeout = self.check.timeout;
        self.peers
            .iter()
            .map(|p| match p.in_flight {
                Some((started, _)) => started + timeout,
                None => p.next,
            })
            .min()
    }
}
