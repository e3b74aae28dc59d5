//! The PROXY protocol (HAProxy's, versions 1 and 2) as transport layers: a load balancer
//! in front of a listener says who the client really is, and a proxy tells its upstreams
//! the same.
//!
//! - [`ProxyProtocol`] is the accepting side, for the listeners that ask for it: a
//!   connection must come from one of its trusted networks and begin with a header (else
//!   it is refused; a header that does not arrive within the timeout drops it); after the
//!   header, bytes pass unchanged to the layers above (TLS, say). The handler finds what
//!   the header said with `conn.layer::<ProxyHeader>()`.
//! - [`SendProxyHeader`] is the sending side, for a dial: the header goes out first, then
//!   everything the connection writes.
//!
//! ```no_run
//! use wireloop::{Action, Conn, Handler, Server};
//! use wireloop_middleware::proxy_protocol::{ProxyHeader, ProxyProtocol};
//! use wireloop_middleware::translate;
//!
//! struct Hello;
//! impl Handler for Hello {
//!     type State = ();
//!     fn opened(&mut self, conn: &mut Conn<'_, ()>) -> Action {
//!         let client = conn.layer::<ProxyHeader>().and_then(|h| h.source());
//!         conn.write(format!("hello {client:?}\n").as_bytes());
//!         Action::Close
//!     }
//!     fn data(&mut self, _: &mut Conn<'_, ()>) -> Action {
//!         Action::None
//!     }
//! }
//!
//! # fn main() -> Result<(), wireloop::Error> {
//! let pp = ProxyProtocol::new(&["10.0.0.0/8", "127.0.0.1"]).map_err(wireloop::Error::layer)?;
//! Server::builder()
//!     .listen("tcp://0.0.0.0:8080")?
//!     .serve(move |_| translate(Hello, |_| true, pp.clone()))
//! # }
//! ```

pub mod fuzzing;
mod header;
mod network;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use header::{parse, write, Header, HeaderError, Version, V1_MAX, V2_MAX, V2_SIGNATURE};
pub use network::Network;

use crate::codec::Status;
use crate::{ConnInfo, Layer, Session};
use wireloop::{Error, LayerBuffers};

/// Most decoded bytes a PROXY layer holds for the layer above before it stops taking
/// more from the socket (backpressure).
const MAX_PASSED: usize = 64 * 1024;

/// The accepting side: see the [module documentation](self).
#[derive(Clone, Debug)]
pub struct ProxyProtocol {
    trusted: Arc<[Network]>,
    timeout: Duration,
}

impl ProxyProtocol {
    /// Accepts headers from peers in `trusted` (CIDR networks or single addresses, e.g.
    /// `10.0.0.0/8`, `::1`), within 5 seconds of the connect.
    pub fn new(trusted: &[&str]) -> Result<ProxyProtocol, String> {
        let trusted = trusted
            .iter()
            .map(|n| Network::parse(n))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ProxyProtocol {
            trusted: trusted.into(),
            timeout: Duration::from_secs(5),
        })
    }

    /// Sets how long a connection may take to send its header.
    pub fn timeout(mut self, timeout: Duration) -> ProxyProtocol {
        self.timeout = timeout;
        self
    }

    /// Whether a header from `peer` is accepted.
    pub fn trusts(&self, peer: SocketAddr) -> bool {
        self.trusted.iter().any(|n| n.contains(peer.ip()))
    }
}

impl Layer for ProxyProtocol {
    fn session(&self, info: &ConnInfo) -> Result<Box<dyn Session>, Error> {
        match info.peer {
            Some(peer) if self.trusts(peer) => Ok(Box::new(ProxyHeader::default())),
            Some(peer) => Err(Error::layer(format!(
                "PROXY protocol listener: {peer} is not a trusted sender"
            ))),
            None => Err(Error::layer(
                "PROXY protocol listener: the peer's address is unknown",
            )),
        }
    }

    fn handshake_timeout(&self) -> Option<Duration> {
        Some(self.timeout)
    }

    fn needs_peer(&self) -> bool {
        true
    }
}

/// One accepted connection's PROXY protocol state: the header, once it arrived.
#[derive(Debug, Default)]
pub struct ProxyHeader {
    header: Option<Header>,
}

impl ProxyHeader {
    /// What the header said (`None` before it arrived).
    pub fn header(&self) -> Option<Header> {
        self.header
    }

    /// The client's address from the header; `None` for a `LOCAL` / `UNKNOWN` header (the
    /// connection's own peer address stands) or before the header arrived.
    pub fn source(&self) -> Option<SocketAddr> {
        match self.header {
            Some(Header::Proxied { source, .. }) => Some(source),
            _ => None,
        }
    }

    /// The address the client connected to, from the header.
    pub fn dest(&self) -> Option<SocketAddr> {
        match self.header {
            Some(Header::Proxied { dest, .. }) => Some(dest),
            _ => None,
        }
    }
}

/// Passes `wire` up to `plain`'s input while it holds less than [`MAX_PASSED`]; how
/// many bytes were taken.
fn pass_up(wire: &[u8], plain: &mut LayerBuffers) -> usize {
    let n = wire.len().min(MAX_PASSED.saturating_sub(plain.input_len()));
    if n > 0 {
        plain.push_input(&wire[..n]);
    }
    n
}

/// Writes all of `plain`'s output to `wire` unchanged.
fn pass_down(plain: &mut LayerBuffers, wire: &mut dyn io::Write) -> Result<(), Error> {
    let mut failed = None;
    plain.drain_output(|b| match wire.write_all(b) {
        Ok(()) => b.len(),
        Err(e) => {
            failed = Some(e);
            0
        }
    });
    failed.map_or(Ok(()), |e| Err(Error::from(e)))
}

impl Session for ProxyHeader {
    fn read_wire(&mut self, wire: &[u8], plain: &mut LayerBuffers) -> Result<usize, Error> {
        if self.header.is_some() {
            return Ok(pass_up(wire, plain));
        }
        match parse(wire) {
            Ok(Status::Partial) => Ok(0),
            Ok(Status::Complete((n, header))) => {
                self.header = Some(header);
                Ok(n + pass_up(&wire[n..], plain))
            }
            Err(e) => Err(Error::layer(e.to_string())),
        }
    }

    fn write_wire(
        &mut self,
        plain: &mut LayerBuffers,
        wire: &mut dyn io::Write,
    ) -> Result<(), Error> {
        pass_down(plain, wire)
    }

    fn is_ready(&self) -> bool {
        self.header.is_some()
    }

    fn peer_closed(&self) -> bool {
        false
    }

    fn close(&mut self) {}
}

/// The sending side, for one dial: the header saying `source` connected to `dest` goes
/// out before anything the connection writes. Push it first, below TLS.
#[derive(Clone, Debug)]
pub struct SendProxyHeader {
    header: Vec<u8>,
}

impl SendProxyHeader {
    /// A header of `version` for a client at `source` that connected to `dest`.
    pub fn new(version: Version, source: SocketAddr, dest: SocketAddr) -> SendProxyHeader {
        let mut header = Vec::with_capacity(64);
        write(version, source, dest, &mut header);
        SendProxyHeader { header }
    }
}

impl Layer for SendProxyHeader {
    fn session(&self, _: &ConnInfo) -> Result<Box<dyn Session>, Error> {
        Ok(Box::new(SendingHeader {
            header: Some(self.header.clone()),
        }))
    }
}

/// A dialed connection's sending side: the header until it is written.
struct SendingHeader {
    header: Option<Vec<u8>>,
}

impl Session for SendingHeader {
    fn read_wire(&mut self, wire: &[u8], plain: &mut LayerBuffers) -> Result<usize, Error> {
        Ok(pass_up(wire, plain))
    }

    fn write_wire(
        &mut self,
        plain: &mut LayerBuffers,
        wire: &mut dyn io::Write,
    ) -> Result<(), Error> {
        if let Some(h) = self.header.take() {
            wire.write_all(&h).map_err(Error::from)?;
        }
        pass_down(plain, wire)
    }

    fn is_ready(&self) -> bool {
        true
    }

    fn peer_closed(&self) -> bool {
        false
    }

    fn close(&mut self) {}
}
