//! The verdicts of a group's active checks, shared by every loop that has a clone of the
//! group: one flag per peer, written by the loop that runs the checks and read by all
//! (a relaxed atomic load per peer when choosing one: no lock).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Per-peer healthy flags and which loop runs the checks.
#[derive(Debug)]
pub struct SharedHealth {
    healthy: Vec<AtomicBool>,
    /// 0: nobody yet; else the checking loop's index + 1.
    prober: AtomicUsize,
}

impl SharedHealth {
    /// Flags for `peers` peers, all healthy.
    pub fn new(peers: usize) -> SharedHealth {
        SharedHealth {
            healthy: (0..peers).map(|_| AtomicBool::new(true)).collect(),
            prober: AtomicUsize::new(0),
        }
    }

    /// Whether peer `i` passed its checks (`true` for an index out of range).
    pub fn is_healthy(&self, i: usize) -> bool {
        self.healthy
            .get(i)
            .is_none_or(|h| h.load(Ordering::Relaxed))
    }

    /// Publishes peer `i`'s verdict.
    pub fn set(&self, i: usize, healthy: bool) {
        if let Some(h) = self.healthy.get(i) {
            h.store(healthy, Ordering::Relaxed);
        }
    }

    /// Whether loop `loop_index` runs the checks: the first loop to ask takes the job and
    /// keeps it.
    pub fn claim(&self, loop_index: usize) -> bool {
        let me = loop_index.wrapping_add(1);
        match self
            .prober
            .compare_exchange(0, me, Ordering::Relaxed, Ordering::Relaxed)
        {
            Ok(_) => true,
            Err(owner) => owner == me,
        }
    }
}
