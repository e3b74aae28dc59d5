//! The loop's timer queue: a binary heap of deadlines with lazy cancellation (an entry whose
//! target is gone or has moved on is ignored when it comes due). Thousands of timers cost a
//! heap entry each and `O(log n)` to add or fire; nothing scans the connections.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::time::Instant;

/// What a timer does when it comes due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TimerKind {
    /// Call the handler's `tick`.
    Tick,
    /// A closing connection did not flush its output in time.
    FlushLinger { key: u32, gen: u32 },
    /// A closed connection's peer did not finish sending in time: drop the socket.
    DrainLinger { key: u32, gen: u32 },
    /// Shutdown deadline: close whatever is still open.
    ShutdownDeadline,
    /// Try accepting on a listener again (after descriptor exhaustion or an error).
    AcceptRetry { listener: usize },
    /// Check a connection's idle, read and send timeouts (if `epoch` is still its current
    /// one).
    Watch { key: u32, gen: u32, epoch: u16 },
    /// A user timer from `Control::after` / `every`.
    User { key: u32, gen: u32 },
    /// A connection's layers did not finish their handshake in time.
    Handshake { key: u32, gen: u32, after_ms: u32 },
    /// A dial's connect timeout.
    Connect { key: u32, gen: u32 },
}

#[derive(Debug)]
struct Entry {
    at: Instant,
    seq: u64,
    kind: TimerKind,
}

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        self.at == o.at && self.seq == o.seq
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    /// Reversed, so the max-heap pops the earliest deadline (ties in insertion order).
    fn cmp(&self, o: &Self) -> Ordering {
        o.at.cmp(&self.at).then(o.seq.cmp(&self.seq))
    }
}

/// Deadlines of one loop.
#[derive(Debug, Default)]
pub(crate) struct Timers {
    heap: BinaryHeap<Entry>,
    seq: u64,
}

impl Timers {
    /// Schedules `kind` at `at`.
    pub(crate) fn add(&mut self, at: Instant, kind: TimerKind) {
        self.seq += 1;
        self.heap.push(Entry {
            at,
            seq: self.seq,
            kind,
        });
    }

    /// The earliest deadline.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|e| e.at)
    }

    /// Removes and returns one timer due at `now`, earliest first.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<TimerKind> {
        if self.heap.peek()?.at <= now {
            self.heap.pop().map(|e| e.kind)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn fires_in_deadline_then_insertion_order() {
        let t0 = Instant::now();
        let mut t = Timers::default();
        t.add(
            t0 + Duration::from_millis(20),
            TimerKind::AcceptRetry { listener: 2 },
        );
        t.add(
            t0 + Duration::from_millis(10),
            TimerKind::AcceptRetry { listener: 1 },
        );
        t.add(
            t0 + Duration::from_millis(20),
            TimerKind::AcceptRetry { listener: 3 },
        );
        t.add(t0 + Duration::from_millis(90), TimerKind::Tick);
        assert_eq!(t.next_deadline(), Some(t0 + Duration::from_millis(10)));
        let now = t0 + Duration::from_millis(50);
        let mut got = Vec::new();
        while let Some(k) = t.pop_due(now) {
            got.push(k);
        }
        assert_eq!(
            got,
            vec![
                TimerKind::AcceptRetry { listener: 1 },
                TimerKind::AcceptRetry { listener: 2 },
                TimerKind::AcceptRetry { listener: 3 }
            ]
        );
        assert_eq!(t.next_deadline(), Some(t0 + Duration::from_millis(90)));
    }
}
