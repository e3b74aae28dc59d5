//! Handshake counters of a TLS server layer, for metrics.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// Counts the handshakes of the sessions a [`TlsServer`](super::TlsServer) made with
/// [`counting`](super::TlsServer::counting): each session counts once, as completed or
/// as failed (a protocol error or alert, or a connection that ended before its handshake
/// finished: a timeout, a client that left). Shared by its clones (relaxed atomics
/// behind an `Arc`); a session adds one when its handshake ends, nothing after.
#[derive(Clone, Debug, Default)]
pub struct TlsCounters {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    handshakes: AtomicU64,
    failures: AtomicU64,
}

impl TlsCounters {
    /// New counters at zero.
    pub fn new() -> TlsCounters {
        TlsCounters::default()
    }

    /// Handshakes completed.
    pub fn handshakes(&self) -> u64 {
        self.inner.handshakes.load(Relaxed)
    }

    /// Handshakes failed or abandoned.
    pub fn failures(&self) -> u64 {
        self.inner.failures.load(Relaxed)
    }

    pub(super) fn completed(&self) {
        self.inner.handshakes.fetch_add(1, Relaxed);
    }

    pub(super) fn failed(&self) {
        self.inner.failures.fetch_add(1, Relaxed);
    }
}
