//! What [`Action::Detach`](crate::Action::Detach) hands out.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;

use crate::socket::Stream;

/// A blocking std socket taken out of the loop.
#[derive(Debug)]
pub enum DetachedStream {
    /// A TCP connection.
    Tcp(TcpStream),
    /// A unix-socket connection.
    Unix(UnixStream),
}

impl DetachedStream {
    /// A blocking duplicate of `s`'s descriptor.
    pub(crate) fn dup_from(s: &Stream) -> io::Result<DetachedStream> {
        let sock = s.sock_ref()?.try_clone()?;
        let d = match s {
            Stream::Unix(_) => DetachedStream::Unix(UnixStream::from(sock)),
            _ => DetachedStream::Tcp(TcpStream::from(sock)),
        };
        match &d {
            DetachedStream::Tcp(s) => s.set_nonblocking(false)?,
            DetachedStream::Unix(s) => s.set_nonblocking(false)?,
        }
        Ok(d)
    }
}

impl Read for DetachedStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            DetachedStream::Tcp(s) => s.read(buf),
            DetachedStream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for DetachedStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            DetachedStream::Tcp(s) => s.write(buf),
            DetachedStream::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A connection that left the loop: its socket (blocking again, output already flushed)
/// and the input the loop had read but the handler had not consumed. Read `input` before
/// reading the stream, or bytes are lost to you.
#[derive(Debug)]
pub struct Detached {
    /// The socket.
    pub stream: DetachedStream,
    /// Bytes received and not consumed before the detach.
    pub input: Vec<u8>,
}
