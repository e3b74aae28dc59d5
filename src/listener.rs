//! Listening sockets: creation with the right options (socket2), and accept.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use mio::event::Source;
use mio::net::{TcpListener, UdpSocket, UnixListener};
use mio::{Interest, Registry, Token};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::addr::{Addr, Scheme, Target};
use crate::socket::{NetAddr, Stream};
use crate::Error;

/// A bound, listening, non-blocking socket.
#[derive(Debug)]
pub(crate) enum Listener {
    Tcp(TcpListener),
    /// The path is removed when the last listener holding it (duplicates included) is
    /// dropped.
    Unix(UnixListener, Arc<SocketPath>),
    /// A bound UDP socket: datagrams, not connections.
    Udp(UdpSocket),
}

impl Listener {
    /// Accepts one connection.
    pub(crate) fn accept(&self) -> io::Result<Stream> {
        match self {
            Listener::Tcp(l) => l.accept().map(|(s, _)| Stream::Tcp(s)),
            Listener::Unix(l, _) => l.accept().map(|(s, _)| Stream::Unix(s)),
            Listener::Udp(_) => Err(io::ErrorKind::Unsupported.into()),
        }
    }

    pub(crate) fn local_addr(&self) -> io::Result<NetAddr> {
        match self {
            Listener::Tcp(l) => l.local_addr().map(NetAddr::Inet),
            Listener::Unix(_, p) => Ok(NetAddr::Unix(Some(p.0.clone()))),
            Listener::Udp(u) => u.local_addr().map(NetAddr::Inet),
        }
    }

    /// A second descriptor for the same socket (`dup`, close-on-exec): both accept from
    /// one queue, and the socket stays open until both are closed. A unix socket's path
    /// is removed only when the last of them goes.
    pub(crate) fn try_clone(&self) -> io::Result<Listener> {
        Ok(match self {
            Listener::Tcp(l) => {
                let s = socket2::SockRef::from(l).try_clone()?;
                Listener::Tcp(TcpListener::from_std(s.into()))
            }
            Listener::Unix(l, p) => {
                let s = socket2::SockRef::from(l).try_clone()?;
                Listener::Unix(UnixListener::from_std(s.into()), p.clone())
            }
            Listener::Udp(u) => {
                let s = socket2::SockRef::from(u).try_clone()?;
                Listener::Udp(UdpSocket::from_std(s.into()))
            }
        })
    }
}

/// A unix listener's socket path, removed from the file system when dropped.
#[derive(Debug)]
pub(crate) struct SocketPath(PathBuf);

impl Drop for SocketPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

impl Source for Listener {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => l.register(r, t, i),
            Listener::Unix(l, _) => l.register(r, t, i),
            Listener::Udp(u) => u.register(r, t, i),
        }
    }

    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => l.reregister(r, t, i),
            Listener::Unix(l, _) => l.reregister(r, t, i),
            Listener::Udp(u) => u.reregister(r, t, i),
        }
    }

    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => l.deregister(r),
            Listener::Unix(l, _) => l.deregister(r),
            Listener::Udp(u) => u.deregister(r),
        }
    }
}

/// Options applied to listening sockets.
#[derive(Clone, Debug)]
pub(crate) struct ListenOptions {
    pub(crate) backlog: i32,
    pub(crate) reuseaddr: bool,
    pub(crate) recv_buffer_size: Option<usize>,
    pub(crate) send_buffer_size: Option<usize>,
}

/// Binds `addr`. `count` sockets are made: one, or one per loop with `reuseport`, all on
/// the same port (the first socket's port when the address asks for port 0).
pub(crate) fn bind(
    addr: &Addr,
    opts: &ListenOptions,
    count: usize,
) -> Result<Vec<Listener>, Error> {
    match addr.target() {
        Target::Unix(path) => Ok(vec![bind_unix(addr, path)?]),
        Target::Inet { .. } => {
            let resolved = addr.resolve().map_err(|e| Error::bind(addr.as_str(), e))?;
            let mut sa = *resolved.first().ok_or_else(|| {
                Error::bind(
                    addr.as_str(),
                    io::Error::new(io::ErrorKind::NotFound, "no address to listen on"),
                )
            })?;
            let n = if addr.reuseport() { count.max(1) } else { 1 };
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                let l = bind_inet(addr, sa, opts).map_err(|e| Error::bind(addr.as_str(), e))?;
                sa = l
                    .local_addr()
                    .map_err(|e| Error::bind(addr.as_str(), e))?
                    .inet()
                    .unwrap_or(sa);
                out.push(l);
            }
            Ok(out)
        }
    }
}

fn bind_inet(addr: &Addr, sa: SocketAddr, opts: &ListenOptions) -> io::Result<Listener> {
    let udp = addr.scheme().is_udp();
    let (ty, proto) = if udp {
        (Type::DGRAM, Protocol::UDP)
    } else {
        (Type::STREAM, Protocol::TCP)
    };
    let socket = Socket::new(Domain::for_address(sa), ty, Some(proto))?;
    socket.set_reuse_address(opts.reuseaddr)?;
    if addr.reuseport() {
        socket.set_reuse_port(true)?;
    }
    // tcp6:// and udp6:// are IPv6 only; tcp:// on an IPv6 address keeps the system's
    // dual-stack default.
    if sa.is_ipv6() && matches!(addr.scheme(), Scheme::Tcp6 | Scheme::Udp6) {
        socket.set_only_v6(true)?;
    }
    if let Some(n) = opts.recv_buffer_size {
        socket.set_recv_buffer_size(n)?;
    }
    if let Some(n) = opts.send_buffer_size {
        socket.set_send_buffer_size(n)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&SockAddr::from(sa))?;
    if udp {
        return Ok(Listener::Udp(UdpSocket::from_std(socket.into())));
    }
    socket.listen(opts.backlog)?;
    Ok(Listener::Tcp(TcpListener::from_std(socket.into())))
}

fn bind_unix(addr: &Addr, path: &std::path::Path) -> Result<Listener, Error> {
    // A socket file left behind by a process that is gone is removed; a live one is not.
    if path.exists() {
        match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => {
                return Err(Error::bind(
                    addr.as_str(),
                    io::Error::new(
                        io::ErrorKind::AddrInUse,
                        "a server is listening on this path",
                    ),
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                let _ = std::fs::remove_file(path);
            }
            Err(_) => {}
        }
    }
    let l =
        std::os::unix::net::UnixListener::bind(path).map_err(|e| Error::bind(addr.as_str(), e))?;
    l.set_nonblocking(true)
        .map_err(|e| Error::bind(addr.as_str(), e))?;
    Ok(Listener::Unix(
        UnixListener::from_std(l),
        Arc::new(SocketPath(path.to_path_buf())),
    ))
}
