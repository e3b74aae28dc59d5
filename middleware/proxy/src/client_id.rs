//! [`ClientId`]: one client exchange on a loop, its connection and, on HTTP/2, its
//! stream.

use std::fmt;

use wireloop::ConnId;

/// A client exchange: the connection it arrived on and, on an HTTP/2 connection, its
/// stream (`0` on HTTP/1.1, where a connection carries one exchange at a time).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientId {
    /// The client's connection.
    pub conn: ConnId,
    /// The HTTP/2 stream, or `0`.
    pub stream: u32,
}

impl ClientId {
    /// The exchange of HTTP/1.1 connection `conn`.
    pub fn conn(conn: ConnId) -> ClientId {
        ClientId { conn, stream: 0 }
    }

    /// Whether this is an HTTP/2 stream (its connection carries other exchanges).
    pub fn is_stream(&self) -> bool {
        self.stream != 0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.stream == 0 {
            write!(f, "{}", self.conn)
        } else {
            write!(f, "{}/{}", self.conn, self.stream)
        }
    }
}
