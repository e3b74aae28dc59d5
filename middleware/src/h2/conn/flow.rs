//! Flow-control windows (RFC 9113 §5.2, §6.9), both ways.
//!
//! Receiving: a [`RecvWindow`] per stream and one for the connection. DATA takes from
//! the window as it arrives; the application gives bytes back with
//! [`Connection::release`](super::Connection::release) once it has consumed them, and
//! the window is announced again (WINDOW_UPDATE) when half of its size has been
//! released. So a request body the application does not consume holds the window shut
//! and the peer stops sending: backpressure. Padding is released at once.
//!
//! Sending: a signed window per stream and one for the connection (a SETTINGS change of
//! INITIAL_WINDOW_SIZE can make a stream's negative, §6.9.2).

/// The largest window (2^31-1).
pub(super) const MAX_WINDOW: i64 = 0x7fff_ffff;

/// Adds a WINDOW_UPDATE increment (or a SETTINGS delta) to a send window; `None` when
/// it would pass 2^31-1 (FLOW_CONTROL_ERROR).
pub(super) fn grow(window: i64, by: i64) -> Option<i64> {
    let w = window.checked_add(by)?;
    (w <= MAX_WINDOW).then_some(w)
}

/// The receiving side of a window.
#[derive(Clone, Copy, Debug)]
pub(super) struct RecvWindow {
    /// What the peer may still send.
    pub(super) window: i64,
    /// Delivered to the application, not released yet.
    pub(super) unreleased: u64,
    /// Released, not announced yet.
    pub(super) pending: u32,
    /// The window's size: announcing happens at half of it.
    pub(super) size: u32,
}

impl RecvWindow {
    pub(super) fn new(window: u32, size: u32) -> RecvWindow {
        RecvWindow {
            window: i64::from(window),
            unreleased: 0,
            pending: 0,
            size,
        }
    }

    /// Takes a DATA frame's flow-controlled length; `false` when it is over the window
    /// (FLOW_CONTROL_ERROR), and then nothing changes.
    pub(super) fn take(&mut self, n: u32) -> bool {
        if i64::from(n) > self.window {
            return false;
        }
        self.window -= i64::from(n);
        true
    }

    /// Records `n` bytes handed to the application.
    pub(super) fn deliver(&mut self, n: u32) {
        self.unreleased += u64::from(n);
    }

    /// Gives back `n` bytes (at most those delivered and not released) plus `extra`
    /// bytes never delivered (padding, data dropped); returns the increment to announce
    /// now, if the bytes released and not announced reach half the window's size.
    pub(super) fn release(&mut self, n: u64, extra: u32) -> Option<u32> {
        let n = n.min(self.unreleased);
        self.unreleased -= n;
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        self.pending = self.pending.saturating_add(n).saturating_add(extra);
        if self.pending == 0 || self.pending < self.size / 2 {
            return None;
        }
        // Never announce past 2^31-1 of window.
        let room = u32::try_from((MAX_WINDOW - self.window).max(0)).unwrap_or(0);
        let inc = self.pending.min(room);
        if inc == 0 {
            return None;
        }
        self.pending -= inc;
        self.window += i64::from(inc);
        Some(inc)
    }

    /// Applies a change of our SETTINGS_INITIAL_WINDOW_SIZE the peer acknowledged.
    pub(super) fn resize(&mut self, size: u32) {
        self.window += i64::from(size) - i64::from(self.size);
        self.size = size;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announce_at_half() {
        let mut w = RecvWindow::new(100, 100);
        assert!(w.take(60));
        assert!(!w.take(41));
        w.deliver(60);
        assert_eq!(w.release(49, 0), None);
        assert_eq!(w.release(100, 0), Some(60));
        assert_eq!(w.window, 100);
        assert_eq!(w.unreleased, 0);
        assert_eq!(w.release(0, 50), Some(50));
        assert_eq!(grow(MAX_WINDOW - 1, 1), Some(MAX_WINDOW));
        assert_eq!(grow(MAX_WINDOW, 1), None);
        assert_eq!(grow(-5, 3), Some(-2));
        w.resize(50);
        assert_eq!(w.window, 100);
    }
}
