//! Stream sockets (TCP or unix) and the address type the handler sees.

use std::fmt;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::path::{Path, PathBuf};

use mio::event::Source;
use mio::net::{TcpStream, UnixStream};
use mio::{Interest, Registry, Token};

/// The address of a socket: an inet address, or a unix socket path (`None` for an unnamed
/// unix socket, which is what a unix client usually is).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum NetAddr {
    /// An IPv4 or IPv6 address and port.
    Inet(SocketAddr),
    /// A unix socket path, if the socket has one.
    Unix(Option<PathBuf>),
}

impl NetAddr {
    /// The inet address, if this is one.
    pub fn inet(&self) -> Option<SocketAddr> {
        match self {
            NetAddr::Inet(a) => Some(*a),
            NetAddr::Unix(_) => None,
        }
    }

    /// The unix path, if this is a named unix socket.
    pub fn unix_path(&self) -> Option<&Path> {
        match self {
            NetAddr::Unix(Some(p)) => Some(p),
            _ => None,
        }
    }

    pub(crate) fn from_unix(a: &std::os::unix::net::SocketAddr) -> NetAddr {
        NetAddr::Unix(a.as_pathname().map(Path::to_path_buf))
    }
}

impl fmt::Display for NetAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetAddr::Inet(a) => write!(f, "tcp://{a}"),
            NetAddr::Unix(Some(p)) => write!(f, "unix://{}", p.display()),
            NetAddr::Unix(None) => f.write_str("unix://(unnamed)"),
        }
    }
}

/// A connected, non-blocking stream socket.
#[derive(Debug)]
pub(crate) enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    pub(crate) fn local_addr(&self) -> io::Result<NetAddr> {
        match self {
            Stream::Tcp(s) => s.local_addr().map(NetAddr::Inet),
            Stream::Unix(s) => s.local_addr().map(|a| NetAddr::from_unix(&a)),
        }
    }

    pub(crate) fn peer_addr(&self) -> io::Result<NetAddr> {
        match self {
            Stream::Tcp(s) => s.peer_addr().map(NetAddr::Inet),
            Stream::Unix(s) => s.peer_addr().map(|a| NetAddr::from_unix(&a)),
        }
    }

    pub(crate) fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.shutdown(how),
            Stream::Unix(s) => s.shutdown(how),
        }
    }

    pub(crate) fn set_nodelay(&self, on: bool) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_nodelay(on),
            Stream::Unix(_) => Ok(()),
        }
    }
}

impl Read for Stream {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }

    #[inline]
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write_vectored(bufs),
            Stream::Unix(s) => s.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Source for Stream {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.register(r, t, i),
            Stream::Unix(s) => s.register(r, t, i),
        }
    }

    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.reregister(r, t, i),
            Stream::Unix(s) => s.reregister(r, t, i),
        }
    }

    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.deregister(r),
            Stream::Unix(s) => s.deregister(r),
        }
    }
}
