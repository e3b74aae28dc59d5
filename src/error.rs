//! The crate's error type: opaque, with predicates that say what went wrong.

use std::fmt;
use std::io;
use std::time::Duration;

use crate::addr::AddrError;

/// Everything that can fail in wireloop: building a server, serving it, and a connection's
/// life (handed to [`Handler::closed`](crate::Handler::closed)).
///
/// The kind is private; ask with the `is_*` predicates, and reach the underlying
/// [`io::Error`] with [`Error::io_error`].
pub struct Error {
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    /// An address did not parse.
    Addr(AddrError),
    /// Resolving, creating, binding or listening on an address failed.
    Bind { addr: String, source: io::Error },
    /// A socket operation on a connection or in the loop failed.
    Io(io::Error),
    /// A peer sent more unconsumed input than `max_input` allows.
    InputLimit { limit: usize },
    /// Output could not be flushed before the close linger or shutdown deadline.
    FlushTimeout { pending: usize, after: Duration },
    /// An outbound connection could not be made.
    Connect { addr: String, source: io::Error },
    /// An outbound connection was not made within its timeout.
    ConnectTimeout { addr: String, after: Duration },
    /// A host name could not be resolved.
    Dns {
        addr: String,
        reason: String,
        not_found: bool,
        timeout: bool,
    },
    /// No traffic for the connection's idle timeout.
    IdleTimeout { after: Duration },
    /// A transport layer's handshake (TLS) did not finish in time.
    HandshakeTimeout { after: Duration },
    /// No input arrived for the connection's read timeout while the loop was reading it.
    ReadTimeout { after: Duration },
    /// Queued output made no progress for the connection's send timeout (the peer stopped
    /// reading).
    SendTimeout { pending: usize, after: Duration },
    /// A protocol layer above the socket failed (a TLS alert, a malformed frame, ...).
    Layer(Box<dyn std::error::Error + Send + Sync>),
    /// The builder was given an invalid setting.
    Config(String),
    /// A loop thread panicked; the server was shut down.
    LoopPanicked { index: usize },
}

impl Error {
    pub(crate) fn addr(e: AddrError) -> Error {
        Error {
            kind: Kind::Addr(e),
        }
    }

    pub(crate) fn bind(addr: &str, source: io::Error) -> Error {
        Error {
            kind: Kind::Bind {
                addr: addr.to_string(),
                source,
            },
        }
    }

    pub(crate) fn io(e: io::Error) -> Error {
        Error { kind: Kind::Io(e) }
    }

    pub(crate) fn input_limit(limit: usize) -> Error {
        Error {
            kind: Kind::InputLimit { limit },
        }
    }

    pub(crate) fn flush_timeout(pending: usize, after: Duration) -> Error {
        Error {
            kind: Kind::FlushTimeout { pending, after },
        }
    }

    pub(crate) fn connect(addr: &str, source: io::Error) -> Error {
        Error {
            kind: Kind::Connect {
                addr: addr.to_string(),
                source,
            },
        }
    }

    pub(crate) fn connect_timeout(addr: &str, after: Duration) -> Error {
        Error {
            kind: Kind::ConnectTimeout {
                addr: addr.to_string(),
                after,
            },
        }
    }

    pub(crate) fn dns(addr: &str, reason: String, not_found: bool, timeout: bool) -> Error {
        Error {
            kind: Kind::Dns {
                addr: addr.to_string(),
                reason,
                not_found,
                timeout,
            },
        }
    }

    /// An error raised by a protocol layer (TLS, HTTP, WebSocket, a codec) for a
    /// connection; [`is_layer`](Error::is_layer) holds for it and
    /// [`layer_error`](Error::layer_error) gives the original back (to downcast).
    pub fn layer(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Error {
        Error {
            kind: Kind::Layer(source.into()),
        }
    }

    pub(crate) fn idle_timeout(after: Duration) -> Error {
        Error {
            kind: Kind::IdleTimeout { after },
        }
    }

    pub(crate) fn handshake_timeout(after: Duration) -> Error {
        Error {
            kind: Kind::HandshakeTimeout { after },
        }
    }

    pub(crate) fn read_timeout(after: Duration) -> Error {
        Error {
            kind: Kind::ReadTimeout { after },
        }
    }

    pub(crate) fn send_timeout(pending: usize, after: Duration) -> Error {
        Error {
            kind: Kind::SendTimeout { pending, after },
        }
    }

    pub(crate) fn config(msg: impl Into<String>) -> Error {
        Error {
            kind: Kind::Config(msg.into()),
        }
    }

    pub(crate) fn loop_panicked(index: usize) -> Error {
        Error {
            kind: Kind::LoopPanicked { index },
        }
    }

    /// An address was malformed or names something that cannot be served.
    pub fn is_addr(&self) -> bool {
        matches!(self.kind, Kind::Addr(_))
    }

    /// Resolving, binding or listening on an address failed (see also
    /// [`is_addr_in_use`](Error::is_addr_in_use), [`is_permission_denied`](Error::is_permission_denied)).
    pub fn is_bind(&self) -> bool {
        matches!(self.kind, Kind::Bind { .. })
    }

    /// Binding failed because the address is already in use.
    pub fn is_addr_in_use(&self) -> bool {
        self.io_error()
            .is_some_and(|e| e.kind() == io::ErrorKind::AddrInUse)
    }

    /// An operation was refused for lack of permission (a privileged port, say).
    pub fn is_permission_denied(&self) -> bool {
        self.io_error()
            .is_some_and(|e| e.kind() == io::ErrorKind::PermissionDenied)
    }

    /// A socket operation failed (reset by the peer, broken pipe, ...).
    pub fn is_io(&self) -> bool {
        matches!(self.kind, Kind::Io(_))
    }

    /// The peer sent more input than the handler consumed and the limit allows.
    pub fn is_input_limit(&self) -> bool {
        matches!(self.kind, Kind::InputLimit { .. })
    }

    /// Something did not finish in time: output not flushed before a close linger or the
    /// shutdown deadline ran out, or an idle, read, send, connect or name-resolution
    /// timeout expired.
    pub fn is_timeout(&self) -> bool {
        matches!(
            self.kind,
            Kind::FlushTimeout { .. }
                | Kind::IdleTimeout { .. }
                | Kind::ReadTimeout { .. }
                | Kind::SendTimeout { .. }
                | Kind::HandshakeTimeout { .. }
                | Kind::ConnectTimeout { .. }
                | Kind::Dns { timeout: true, .. }
        ) || self
            .io_error()
            .is_some_and(|e| e.kind() == io::ErrorKind::TimedOut)
    }

    /// An outbound connection failed: refused, unreachable, timed out, or its name did not
    /// resolve (see [`is_dns`](Error::is_dns), [`is_refused`](Error::is_refused),
    /// [`is_timeout`](Error::is_timeout)).
    pub fn is_connect(&self) -> bool {
        matches!(
            self.kind,
            Kind::Connect { .. } | Kind::ConnectTimeout { .. } | Kind::Dns { .. }
        )
    }

    /// The peer refused the connection.
    pub fn is_refused(&self) -> bool {
        self.io_error()
            .is_some_and(|e| e.kind() == io::ErrorKind::ConnectionRefused)
    }

    /// Name resolution failed (no such name, no address of the wanted family, or the
    /// nameserver did not answer in time).
    pub fn is_dns(&self) -> bool {
        matches!(self.kind, Kind::Dns { .. })
    }

    /// The name does not exist or has no address of the wanted family.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self.kind,
            Kind::Dns {
                not_found: true,
                ..
            }
        )
    }

    /// A protocol layer failed (see [`Error::layer`]).
    pub fn is_layer(&self) -> bool {
        matches!(self.kind, Kind::Layer(_))
    }

    /// The protocol layer's own error, if this is one (downcast it to the layer's type).
    pub fn layer_error(&self) -> Option<&(dyn std::error::Error + Send + Sync + 'static)> {
        match &self.kind {
            Kind::Layer(e) => Some(e.as_ref()),
            _ => None,
        }
    }

    /// The connection was closed by its idle timeout (no traffic for the period).
    pub fn is_idle_timeout(&self) -> bool {
        matches!(self.kind, Kind::IdleTimeout { .. })
    }

    /// The connection was closed by its read timeout: no input arrived for the period
    /// while the loop was ready to read (see
    /// [`Conn::set_read_timeout`](crate::Conn::set_read_timeout)).
    pub fn is_read_timeout(&self) -> bool {
        matches!(self.kind, Kind::ReadTimeout { .. })
    }

    /// The connection was closed by its send timeout: queued output made no progress for
    /// the period, the peer having stopped reading (see
    /// [`Conn::set_send_timeout`](crate::Conn::set_send_timeout)).
    pub fn is_send_timeout(&self) -> bool {
        matches!(self.kind, Kind::SendTimeout { .. })
    }

    /// The builder was given an invalid setting.
    pub fn is_config(&self) -> bool {
        matches!(self.kind, Kind::Config(_))
    }

    /// A loop thread panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self.kind, Kind::LoopPanicked { .. })
    }

    /// The operating-system error underneath, if there is one.
    pub fn io_error(&self) -> Option<&io::Error> {
        match &self.kind {
            Kind::Bind { source, .. } => Some(source),
            Kind::Io(e) => Some(e),
            Kind::Connect { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Addr(e) => write!(f, "{e}"),
            Kind::Bind { addr, source } => write!(f, "cannot listen on {addr:?}: {source}"),
            Kind::Io(e) => write!(f, "i/o error: {e}"),
            Kind::InputLimit { limit } => {
                write!(
                    f,
                    "input limit exceeded: more than {limit} unconsumed bytes"
                )
            }
            Kind::FlushTimeout { pending, after } => write!(
                f,
                "output not flushed within {after:?}: {pending} bytes dropped"
            ),
            Kind::Connect { addr, source } => write!(f, "cannot connect to {addr:?}: {source}"),
            Kind::ConnectTimeout { addr, after } => {
                write!(f, "cannot connect to {addr:?}: timed out after {after:?}")
            }
            Kind::Dns { addr, reason, .. } => write!(f, "cannot dial {addr:?}: {reason}"),
            Kind::Layer(e) => write!(f, "{e}"),
            Kind::IdleTimeout { after } => write!(f, "idle timeout: no traffic for {after:?}"),
            Kind::ReadTimeout { after } => write!(f, "read timeout: no input for {after:?}"),
            Kind::HandshakeTimeout { after } => {
                write!(f, "handshake timeout: not done within {after:?}")
            }
            Kind::SendTimeout { pending, after } => write!(
                f,
                "send timeout: the peer took no output for {after:?}; {pending} bytes dropped"
            ),
            Kind::Config(msg) => write!(f, "invalid configuration: {msg}"),
            Kind::LoopPanicked { index } => write!(f, "loop {index} panicked"),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("wireloop::Error").field(&self.kind).finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            Kind::Addr(e) => Some(e),
            Kind::Bind { source, .. } => Some(source),
            Kind::Io(e) => Some(e),
            Kind::Connect { source, .. } => Some(source),
            Kind::Layer(e) => Some(e.as_ref()),
            _ => None,
        }
    }
}

impl From<AddrError> for Error {
    fn from(e: AddrError) -> Error {
        Error::addr(e)
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        Error::io(e)
    }
}
