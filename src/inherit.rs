//! Listening sockets handed from a running server to the next one, so that a program can
//! replace its server (new configuration, new certificates, new handlers) without closing
//! a port for an instant: the new server accepts from the very sockets the old one did,
//! then the old one shuts down gracefully and finishes what it started.
//!
//! ```no_run
//! use wireloop::{Action, Conn, Handler, Server};
//!
//! struct Echo;
//! impl Handler for Echo {
//!     type State = ();
//!     fn data(&mut self, conn: &mut Conn<'_, ()>) -> Action { Action::None }
//! }
//!
//! # fn main() -> Result<(), wireloop::Error> {
//! let old = Server::builder().listen("tcp://127.0.0.1:7000")?.build()?;
//! let old_handle = old.handle();
//! let first = std::thread::spawn(move || old.serve(|_| Echo));
//! // Later: the same addresses, served by a new server.
//! let new = Server::builder()
//!     .listen("tcp://127.0.0.1:7000")?
//!     .inherit(old_handle.listeners()?)
//!     .build()?;
//! old_handle.shutdown(); // its connections drain; no connection attempt is refused
//! # let _ = (new, first);
//! # Ok(())
//! # }
//! ```

use std::fmt;

use crate::addr::Addr;
use crate::listener::Listener;

/// Duplicated descriptors of a server's listening sockets, by the address each was
/// listened on ([`Handle::listeners`](crate::Handle::listeners)), to be taken over by
/// another server with [`Builder::inherit`](crate::Builder::inherit).
///
/// Holding them keeps the sockets open (and the kernel queuing connections on them);
/// drop what is not taken over.
pub struct Listeners {
    pub(crate) entries: Vec<(Addr, Vec<Listener>)>,
}

impl Listeners {
    /// How many listeners (addresses) there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The addresses, as they were given to the old server's builder.
    pub fn addrs(&self) -> impl Iterator<Item = &Addr> {
        self.entries.iter().map(|(a, _)| a)
    }

    /// Takes the sockets of `addr` (compared as parsed: scheme, host, port, options), if
    /// there are some.
    pub(crate) fn take(&mut self, addr: &Addr) -> Option<Vec<Listener>> {
        let i = self.entries.iter().position(|(a, _)| a == addr)?;
        Some(self.entries.swap_remove(i).1)
    }
}

impl fmt::Debug for Listeners {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.entries.iter().map(|(a, l)| (a.as_str(), l.len())))
            .finish()
    }
}
