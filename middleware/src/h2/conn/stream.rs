//! Streams (RFC 9113 §5.1): the open ones in a small table, and a bounded memory of the
//! closed ones to answer late frames.
//!
//! An open stream is in one of the states open, half-closed (local) or half-closed
//! (remote), told by which sides are still open. It leaves the table when both are
//! closed or when either side resets it, and is remembered as [`Closed`]. The table
//! holds at most SETTINGS_MAX_CONCURRENT_STREAMS streams (more are refused) and the
//! memory at most [`Config::closed_streams_remembered`](super::Config).

use std::collections::VecDeque;

use super::flow::RecvWindow;

/// One open stream.
#[derive(Clone, Debug)]
pub(super) struct Stream {
    pub(super) id: u32,
    /// The peer may still send (not half-closed remote).
    pub(super) recv_open: bool,
    /// We may still send (not half-closed local).
    pub(super) send_open: bool,
    /// Server: a final (non-1xx) response header section was sent. Client: always (the
    /// request's header section opened the stream).
    pub(super) headers_sent: bool,
    /// Client: a final (non-1xx) response header section came (what follows is body,
    /// then trailers). Server: unused.
    pub(super) head_received: bool,
    /// Client: the request was HEAD, so the response has no body whatever its
    /// content-length says (RFC 9110 §6.4.1). Server: unused.
    pub(super) head_request: bool,
    pub(super) send_window: i64,
    pub(super) recv: RecvWindow,
    pub(super) content_length: Option<u64>,
    pub(super) received: u64,
    /// `send_data` was held back by a window: tell the application when it opens.
    pub(super) blocked: bool,
}

/// How a stream closed, which decides the answer to frames that come after (§5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Closed {
    /// The peer reset it: frames other than PRIORITY are a stream error STREAM_CLOSED.
    RemoteReset,
    /// Both sides ended it: DATA and HEADERS are a connection error STREAM_CLOSED.
    Ended,
    /// We reset or refused it: the peer may not know yet, frames are ignored.
    LocalReset,
}

/// The open streams and the memory of closed ones.
#[derive(Debug)]
pub(super) struct Streams {
    open: Vec<Stream>,
    closed: VecDeque<(u32, Closed)>,
    remember: usize,
    /// The highest stream id the peer has used (streams at or below it are not idle).
    pub(super) last_peer_id: u32,
    /// The highest stream id we have opened (a client's requests; 0 for a server).
    pub(super) last_local_id: u32,
}

impl Streams {
    pub(super) fn new(remember: usize) -> Streams {
        Streams {
            open: Vec::new(),
            closed: VecDeque::new(),
            remember,
            last_peer_id: 0,
            last_local_id: 0,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.open.len()
    }

    pub(super) fn get_mut(&mut self, id: u32) -> Option<&mut Stream> {
        self.open.iter_mut().find(|s| s.id == id)
    }

    pub(super) fn get(&self, id: u32) -> Option<&Stream> {
        self.open.iter().find(|s| s.id == id)
    }

    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = &mut Stream> {
        self.open.iter_mut()
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &Stream> {
        self.open.iter()
    }

    pub(super) fn insert(&mut self, s: Stream) {
        self.open.push(s);
    }

    /// Takes a stream out of the table and remembers how it closed.
    pub(super) fn remove(&mut self, id: u32, how: Closed) -> Option<Stream> {
        let i = self.open.iter().position(|s| s.id == id)?;
        let s = self.open.swap_remove(i);
        self.remember(id, how);
        Some(s)
    }

    /// Remembers a stream that closed (or was refused without being opened).
    pub(super) fn remember(&mut self, id: u32, how: Closed) {
        if self.remember == 0 {
            return;
        }
        if self.closed.len() >= self.remember {
            self.closed.pop_front();
        }
        self.closed.push_back((id, how));
    }

    /// How a stream that is not open closed, if it is remembered.
    pub(super) fn closed(&self, id: u32) -> Option<Closed> {
        self.closed.iter().rev().find(|c| c.0 == id).map(|c| c.1)
    }

    /// Whether a stream is idle (never used): `peers` says whether its id has the
    /// parity of the peer's streams.
    pub(super) fn is_idle(&self, id: u32, peers: bool) -> bool {
        id > if peers {
            self.last_peer_id
        } else {
            self.last_local_id
        }
    }

    /// Closes our sending side of stream `id`; if the peer's is closed too, takes the
    /// stream out and returns the bytes it had delivered and not released (`Some(0)`
    /// if none). `None`: the stream stays open (or is not there).
    pub(super) fn close_send(&mut self, id: u32) -> Option<u64> {
        let i = self.open.iter().position(|s| s.id == id)?;
        let s = self.open.get_mut(i)?;
        s.send_open = false;
        if s.recv_open {
            return None;
        }
        let n = s.recv.unreleased;
        self.open.swap_remove(i);
        self.remember(id, Closed::Ended);
        Some(n)
    }

    /// Removes the streams both sides have closed; returns the bytes they had
    /// delivered and not released (to give back to the connection window).
    pub(super) fn reap(&mut self) -> u64 {
        let mut unreleased = 0;
        let mut i = 0;
        while let Some(s) = self.open.get(i) {
            if !s.recv_open && !s.send_open {
                let (id, n) = (s.id, s.recv.unreleased);
                self.open.swap_remove(i);
                self.remember(id, Closed::Ended);
                unreleased += n;
            } else {
                i += 1;
            }
        }
        unreleased
    }

    #[cfg(any(test, feature = "fuzzing"))]
    pub(super) fn remembered(&self) -> usize {
        self.closed.len()
    }
}
