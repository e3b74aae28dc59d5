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
            NetAddr::Inet(a) => write!(f, "{a}"),
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
    /// A dialed connection whose address is still being resolved.
    Unconnected,
}

fn not_connected<T>() -> io::Result<T> {
    Err(io::ErrorKind::NotConnected.into())
}

impl Stream {
    pub(crate) fn local_addr(&self) -> io::Result<NetAddr> {
        match self {
            Stream::Tcp(s) => s.local_addr().map(NetAddr::Inet),
            Stream::Unix(s) => s.local_addr().map(|a| NetAddr::from_unix(&a)),
            Stream::Unconnected => not_connected(),
        }
    }

    pub(crate) fn peer_addr(&self) -> io::Result<NetAddr> {
        match self {
            Stream::Tcp(s) => s.peer_addr().map(NetAddr::Inet),
            Stream::Unix(s) => s.peer_addr().map(|a| NetAddr::from_unix(&a)),
            Stream::Unconnected => not_connected(),
        }
    }

    pub(crate) fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.shutdown(how),
            Stream::Unix(s) => s.shutdown(how),
            Stream::Unconnected => Ok(()),
        }
    }

    pub(crate) fn sock_ref(&self) -> io::Result<socket2::SockRef<'_>> {
        match self {
            Stream::Tcp(s) => Ok(socket2::SockRef::from(s)),
            Stream::Unix(s) => Ok(socket2::SockRef::from(s)),
            Stream::Unconnected => not_connected(),
        }
    }

    /// The pending error of a connecting socket (`SO_ERROR`).
    pub(crate) fn take_error(&self) -> io::Result<Option<io::Error>> {
        match self {
            Stream::Tcp(s) => s.take_error(),
            Stream::Unix(s) => s.take_error(),
            Stream::Unconnected => Ok(None),
        }
    }

    pub(crate) fn set_keepalive(&self, idle: Option<std::time::Duration>) -> io::Result<()> {
        let Stream::Tcp(s) = self else {
            return Ok(());
        };
        let sock = socket2::SockRef::from(s);
        match idle {
            None => sock.set_keepalive(false),
            Some(d) => {
                let ka = socket2::TcpKeepalive::new().with_time(d).with_interval(d);
                sock.set_tcp_keepalive(&ka)
            }
        }
    }

    /// Makes the coming close a reset (`SO_LINGER` 0): the kernel drops unsent output at
    /// once instead of keeping an orphan socket probing a peer that does not read.
    pub(crate) fn reset_on_close(&self) {
        if let Stream::Tcp(s) = self {
            let _ = socket2::SockRef::from(s).set_linger(Some(std::time::Duration::ZERO));
        }
    }

    pub(crate) fn set_nodelay(&self, on: bool) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_nodelay(on),
            Stream::Unix(_) | Stream::Unconnected => Ok(()),
        }
    }
}

impl Stream {
    /// The socket's descriptor (`None` while unconnected).
    #[cfg(target_os = "linux")]
    #[inline]
    fn fd(&self) -> Option<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        match self {
            Stream::Tcp(s) => Some(s.as_raw_fd()),
            Stream::Unix(s) => Some(s.as_raw_fd()),
            Stream::Unconnected => None,
        }
    }
}

// On Linux the loop's reads and writes are bare system calls (`crate::sys`: glibc's
// wrappers are cancellation points, which cost more than the rest of the call path).
#[cfg(target_os = "linux")]
impl Read for Stream {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.fd() {
            Some(fd) => crate::sys::recv(fd, buf),
            None => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

#[cfg(target_os = "linux")]
impl Write for Stream {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.fd() {
            Some(fd) => crate::sys::send(fd, buf),
            None => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    #[inline]
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self.fd() {
            Some(fd) => crate::sys::writev(fd, bufs),
            None => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(not(target_os = "linux"))]
impl Read for Stream {
    #[inline]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
            Stream::Unconnected => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

#[cfg(not(target_os = "linux"))]
impl Write for Stream {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
            Stream::Unconnected => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    #[inline]
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write_vectored(bufs),
            Stream::Unix(s) => s.write_vectored(bufs),
            Stream::Unconnected => Err(io::ErrorKind::WouldBlock.into()),
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
            Stream::Unconnected => Ok(()),
        }
    }

    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.reregister(r, t, i),
            Stream::Unix(s) => s.reregister(r, t, i),
            Stream::Unconnected => Ok(()),
        }
    }

    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.deregister(r),
            Stream::Unix(s) => s.deregister(r),
            Stream::Unconnected => Ok(()),
        }
    }
}
