//! Outbound connections: options, and the non-blocking connect.
//!
//! A dial takes a slot at once (so its id is valid immediately) with a stream that is not
//! connected yet. IP literals and unix paths connect at once; host names are resolved off
//! the loop (see `resolver.rs`) and the answer comes back through the loop's inbox. Each
//! candidate address is tried in order by mio's recipe: a non-blocking `connect`, wait
//! for writable, then `take_error` and `peer_addr` tell whether it worked. One timeout
//! covers the whole dial, resolution included.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mio::net::{TcpStream, UnixStream};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::addr::Addr;
use crate::layer::Layer;
use crate::socket::Stream;

/// How to make an outbound connection.
#[derive(Clone)]
pub struct DialOptions {
    pub(crate) timeout: Duration,
    pub(crate) local_addr: Option<SocketAddr>,
    pub(crate) nodelay: Option<bool>,
    pub(crate) keepalive: Option<Duration>,
    pub(crate) recv_buffer_size: Option<usize>,
    pub(crate) send_buffer_size: Option<usize>,
    pub(crate) loop_index: Option<usize>,
    /// Transport layers for the connection, socket side first.
    pub(crate) layers: Vec<DialLayer>,
}

/// A transport layer a dial carries to its loop.
pub(crate) type DialLayer = Arc<dyn Layer + Send + Sync>;

impl std::fmt::Debug for DialOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DialOptions")
            .field("timeout", &self.timeout)
            .field("local_addr", &self.local_addr)
            .field("nodelay", &self.nodelay)
            .field("keepalive", &self.keepalive)
            .field("recv_buffer_size", &self.recv_buffer_size)
            .field("send_buffer_size", &self.send_buffer_size)
            .field("loop_index", &self.loop_index)
            .field("layers", &self.layers.len())
            .finish()
    }
}

impl Default for DialOptions {
    fn default() -> DialOptions {
        DialOptions {
            timeout: Duration::from_secs(10),
            local_addr: None,
            nodelay: None,
            keepalive: None,
            recv_buffer_size: None,
            send_buffer_size: None,
            loop_index: None,
            layers: Vec::new(),
        }
    }
}

impl DialOptions {
    /// Default options: 10 s to resolve and connect, the server's socket options.
    pub fn new() -> DialOptions {
        DialOptions::default()
    }

    /// Time allowed for name resolution and connecting, all candidate addresses together.
    pub fn timeout(mut self, d: Duration) -> DialOptions {
        self.timeout = d;
        self
    }

    /// Binds the socket to this local address (port 0 = any) before connecting.
    pub fn local_addr(mut self, addr: SocketAddr) -> DialOptions {
        self.local_addr = Some(addr);
        self
    }

    /// `TCP_NODELAY` (default: the server's setting, on unless changed).
    pub fn nodelay(mut self, on: bool) -> DialOptions {
        self.nodelay = Some(on);
        self
    }

    /// TCP keep-alive probes after `idle` without traffic.
    pub fn keepalive(mut self, idle: Duration) -> DialOptions {
        self.keepalive = Some(idle);
        self
    }

    /// `SO_RCVBUF` of the socket.
    pub fn recv_buffer_size(mut self, bytes: usize) -> DialOptions {
        self.recv_buffer_size = Some(bytes);
        self
    }

    /// `SO_SNDBUF` of the socket.
    pub fn send_buffer_size(mut self, bytes: usize) -> DialOptions {
        self.send_buffer_size = Some(bytes);
        self
    }

    /// The loop that serves the connection, for [`Handle::dial`](crate::Handle::dial)
    /// (default: round-robin). [`Control::dial`](crate::Control::dial) and
    /// [`Conn::dial`](crate::Conn::dial) always use their own loop.
    pub fn on_loop(mut self, index: usize) -> DialOptions {
        self.loop_index = Some(index);
        self
    }

    /// Runs the connection through `layer` (a TLS client with its server name, say):
    /// the reactor owns its session with the connection, `opened` comes once its
    /// handshake is done, and everything written to the connection is encoded by it.
    /// Layers given here sit next to the socket, in order, below any that
    /// [`Handler::layers`](crate::Handler::layers) adds.
    pub fn layer(mut self, layer: impl Layer + Send + Sync) -> DialOptions {
        self.layers.push(Arc::new(layer));
        self
    }
}

/// What is left to try for a dial in progress.
#[derive(Debug)]
pub(crate) struct DialProgress {
    /// The address as given (for error messages).
    pub(crate) addr: Addr,
    pub(crate) opts: DialOptions,
    pub(crate) candidates: VecDeque<Target>,
    /// The error of the last candidate that failed.
    pub(crate) last_err: Option<io::Error>,
    /// Waiting for the resolver.
    pub(crate) resolving: bool,
}

/// One address to try.
#[derive(Clone, Debug)]
pub(crate) enum Target {
    Inet(SocketAddr),
    Unix(PathBuf),
}

/// Starts a non-blocking connect to `target`.
pub(crate) fn connect(target: &Target, opts: &DialOptions) -> io::Result<Stream> {
    match target {
        Target::Unix(path) => UnixStream::connect(path).map(Stream::Unix),
        Target::Inet(sa) => {
            let socket = Socket::new(Domain::for_address(*sa), Type::STREAM, Some(Protocol::TCP))?;
            socket.set_nonblocking(true)?;
            if let Some(n) = opts.recv_buffer_size {
                socket.set_recv_buffer_size(n)?;
            }
            if let Some(n) = opts.send_buffer_size {
                socket.set_send_buffer_size(n)?;
            }
            if let Some(local) = opts.local_addr {
                socket.bind(&SockAddr::from(local))?;
            }
            match socket.connect(&SockAddr::from(*sa)) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            Ok(Stream::Tcp(TcpStream::from_std(socket.into())))
        }
    }
}
