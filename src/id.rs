//! Connection ids: valid across threads, recognised as stale once their slot is reused.

use std::fmt;

/// Identifies a connection across threads: the loop that owns it, its slot, and the slot's
/// generation. An id whose connection is gone (or whose slot was reused) is simply ignored
/// by [`Handle`](crate::Handle) and [`Control`](crate::Control) operations.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ConnId {
    pub(crate) loop_index: u32,
    pub(crate) key: u32,
    pub(crate) gen: u32,
}

impl ConnId {
    /// Index of the loop that owns the connection.
    pub fn loop_index(&self) -> usize {
        self.loop_index as usize
    }

    /// The connection's slot on its loop: small, dense, and reused after the connection
    /// closes, so a handler can index a per-connection side table by it (and compare the
    /// whole id to tell a reused slot from the old connection).
    pub fn slot(&self) -> usize {
        self.key as usize
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}.{}", self.loop_index, self.key, self.gen)
    }
}
