//! Where a layer's wire output goes: into the connection's output queue, or straight to
//! the socket while nothing waits before it there (one copy fewer: a TLS record goes from
//! rustls to the kernel).

use std::io::{self, IoSlice, Write};

use crate::buf::OutBuf;
use crate::socket::Stream;

/// `io::Write` into an output queue.
pub(crate) struct QueueWriter<'a>(pub(crate) &'a mut OutBuf);

impl io::Write for QueueWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `io::Write` to the socket while the queue is empty and the socket takes the bytes;
/// whatever it does not take is queued, in order. It never fails: a socket error is kept
/// in [`error`](WireWriter::error) for the caller (which fails the connection) and the
/// socket is not written again.
pub(crate) struct WireWriter<'a> {
    out: &'a mut OutBuf,
    sock: Option<&'a mut Stream>,
    /// Bytes the socket took.
    pub(crate) written: usize,
    /// The socket said `WouldBlock`: wait for the next writable edge.
    pub(crate) blocked: bool,
    /// The socket failed.
    pub(crate) error: Option<io::Error>,
}

impl<'a> WireWriter<'a> {
    /// Writes to `sock` (when given) and queues the rest on `out`.
    pub(crate) fn new(out: &'a mut OutBuf, sock: Option<&'a mut Stream>) -> WireWriter<'a> {
        WireWriter {
            out,
            sock,
            written: 0,
            blocked: false,
            error: None,
        }
    }

    /// Writes `bufs` to the socket if it may; returns how many bytes it took.
    fn send(&mut self, bufs: &[IoSlice<'_>]) -> usize {
        if !self.out.is_empty() {
            return 0;
        }
        let Some(sock) = self.sock.as_deref_mut() else {
            return 0;
        };
        loop {
            let r = if bufs.len() == 1 {
                sock.write(&bufs[0])
            } else {
                sock.write_vectored(bufs)
            };
            match r {
                Ok(0) => {
                    self.error = Some(io::ErrorKind::WriteZero.into());
                    self.sock = None;
                    return 0;
                }
                Ok(n) => {
                    self.written += n;
                    return n;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.blocked = true;
                    self.sock = None;
                    return 0;
                }
                Err(e) => {
                    self.error = Some(e);
                    self.sock = None;
                    return 0;
                }
            }
        }
    }
}

impl io::Write for WireWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_vectored(&[IoSlice::new(buf)])
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if total == 0 {
            return Ok(0);
        }
        let mut skip = self.send(bufs);
        for b in bufs {
            if skip >= b.len() {
                skip -= b.len();
                continue;
            }
            self.out.write(&b[skip..]);
            skip = 0;
        }
        Ok(total)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
