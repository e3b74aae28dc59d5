//! Listening sockets: creation with the right options (socket2), and accept.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

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
    /// The path is removed when the listener is dropped.
    Unix(UnixListener, PathBuf),
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
            Listener::Unix(_, p) => Ok(NetAddr::Unix(Some(p.clone()))),
            Listener::Udp(u) => u.local_addr().map(NetAddr::Inet),
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
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
        path.to_path_buf(),
    ))
}
