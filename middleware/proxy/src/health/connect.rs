//! Active connect checks for a handler of its own, such as an L4 proxy: the same groups,
//! [`Checker`]s and verdicts as [`HttpProxy`](crate::HttpProxy)'s checks, with the probe
//! connections made and recognised by the handler.
//!
//! From the handler's `tick`, [`run_connect_checks`] fails the checks that ran out of
//! time (their connections are aborted) and dials the peers that are due, each with a
//! state the handler makes; the dial carries the peer's layers as the handler's other
//! dials do (a TLS client layer makes the check a TLS handshake). The handler reports
//! its probe's `opened` as a pass and a `closed` before `opened` as a failure with
//! [`report_connect_check`], then closes the probe. A result is taken only from the
//! connection of the check in flight, so a late `closed` of a probe whose time already
//! ran out changes nothing. Every check is a connect check, whatever its
//! [`CheckKind`](super::CheckKind).

use std::time::{Duration, Instant};

use wireloop::{ConnId, Control, DialOptions};

use super::Verdict;
use crate::group::Group;

/// Runs the active checks of `groups` (this loop's copies) as connect checks (see the
/// module docs): fails the overdue ones and starts the due ones of every group with a
/// health check whose checks run on this loop (the first loop that asks). `dial_options(g,
/// p)` gives the options to dial peer `p` of group `g` with (the check's timeout is set
/// on top); `probe(g, p)` the state of its probe connection. Returns the time until the
/// next check is due or runs out, if any group has checks on this loop.
pub fn run_connect_checks<S>(
    groups: &mut [Group],
    ctl: &mut Control<'_, S>,
    mut dial_options: impl FnMut(usize, usize) -> DialOptions,
    mut probe: impl FnMut(usize, usize) -> S,
) -> Option<Duration> {
    let now = ctl.now();
    let me = ctl.loop_index();
    let mut next: Option<Instant> = None;
    for (g, group) in groups.iter_mut().enumerate() {
        let Some(timeout) = group.health_check().map(|c| c.timeout) else {
            continue;
        };
        while let Some(c) = group.checker(me, now) {
            let Some((p, conn)) = c.overdue(now) else {
                break;
            };
            let v = c.report(p, false, now);
            if let Some(id) = conn {
                ctl.abort(id);
            }
            publish(group, p, v, "no connection in time");
        }
        while let Some(p) = group.checker(me, now).and_then(|c| c.due(now)) {
            let opts = dial_options(g, p).timeout(timeout);
            match ctl.dial(&group.peers()[p].dial, opts, probe(g, p)) {
                Ok(id) => {
                    if let Some(c) = group.checker(me, now) {
                        c.started(p, id);
                    }
                }
                Err(e) => {
                    let v = group.checker(me, now).and_then(|c| c.report(p, false, now));
                    publish(group, p, v, &format!("cannot dial: {e}"));
                }
            }
        }
        if let Some(t) = group.checker(me, now).and_then(|c| c.next_event()) {
            next = Some(next.map_or(t, |n| n.min(t)));
        }
    }
    next.map(|t| t.saturating_duration_since(now))
}

/// The probe connection `conn` of peer `p` of `group` connected (`ok`) or ended without
/// connecting (`why`, for the log), at `now` on loop `loop_index`. Ignored unless `conn`
/// is the peer's check in flight.
pub fn report_connect_check(
    group: &mut Group,
    loop_index: usize,
    now: Instant,
    p: usize,
    conn: ConnId,
    ok: bool,
    why: &str,
) {
    let Some(c) = group.checker(loop_index, now) else {
        return;
    };
    let v = c.report_for(p, conn, ok, now);
    publish(group, p, v, why);
}

/// Publishes a change of peer `p`'s health to every loop sharing `group`, and logs it.
pub(crate) fn publish(group: &Group, p: usize, v: Option<Verdict>, why: &str) {
    let Some(v) = v else {
        return;
    };
    group.publish(p, v);
    let url = &group.peers()[p].url;
    match v {
        Verdict::Down => log::warn!("upstream {url} is down: failed its health checks ({why})"),
        Verdict::Up => log::info!("upstream {url} is up: passed its health checks"),
    }
}
