//! UDP: a datagram as the handler sees it.

use std::io;
use std::net::SocketAddr;

use mio::net::UdpSocket;

use crate::stats::{bump, Counters};

/// One received datagram, during [`Handler::datagram`](crate::Handler::datagram). Answers
/// are sent at once with [`send_to`](Datagram::send_to) / [`reply`](Datagram::reply): UDP
/// keeps no output queue, so a datagram the socket cannot take now is dropped and reported
/// as an error, as UDP itself would drop it.
pub struct Datagram<'a> {
    pub(crate) data: &'a [u8],
    pub(crate) peer: SocketAddr,
    pub(crate) addr_index: usize,
    pub(crate) truncated: bool,
    pub(crate) socket: &'a UdpSocket,
    pub(crate) counters: &'a Counters,
}

impl Datagram<'_> {
    /// The payload (at most the configured maximum datagram size).
    pub fn data(&self) -> &[u8] {
        self.data
    }

    /// The sender.
    pub fn peer(&self) -> SocketAddr {
        self.peer
    }

    /// Index of the listener it arrived on.
    pub fn addr_index(&self) -> usize {
        self.addr_index
    }

    /// Whether the datagram was larger than the maximum datagram size and was cut to it.
    pub fn truncated(&self) -> bool {
        self.truncated
    }

    /// The local address of the socket it arrived on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Sends `data` as one datagram to `peer` from the socket this datagram arrived on.
    /// `WouldBlock` means the socket's send buffer is full and the datagram was not sent.
    pub fn send_to(&self, peer: SocketAddr, data: &[u8]) -> io::Result<()> {
        loop {
            match self.socket.send_to(data, peer) {
                Ok(_) => {
                    bump(&self.counters.datagrams_out, 1);
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Sends `data` back to the sender.
    pub fn reply(&self, data: &[u8]) -> io::Result<()> {
        self.send_to(self.peer, data)
    }
}
