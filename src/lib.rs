//! # wireloop
//!
//! Event-loop networking on [`mio`]: a few threads, each running one loop that owns its
//! connections and calls your [`Handler`] with plain return values ([`Action`]). No async
//! runtime on the data path.
//!
//! ```no_run
//! use wireloop::{Action, Conn, Handler, Server};
//!
//! struct Echo;
//!
//! impl Handler for Echo {
//!     type State = ();
//!     fn data(&mut self, conn: &mut Conn<'_, ()>) -> Action {
//!         let (input, mut output) = conn.split();
//!         output.write(input);
//!         let n = input.len();
//!         conn.consume(n);
//!         Action::None
//!     }
//! }
//!
//! fn main() -> Result<(), wireloop::Error> {
//!     Server::builder()
//!         .listen("tcp://127.0.0.1:5000")?
//!         .serve(|_loop_index| Echo)
//! }
//! ```
//!
//! ## The I/O contract
//!
//! Sockets are registered edge-triggered. On every readable event the loop reads until the
//! socket returns `WouldBlock` (yielding to other connections after
//! [`MAX_READS_PER_TURN`] reads, and coming back to this one in the same turn of the loop);
//! output is written until it is all gone or the socket returns `WouldBlock`, and the rest is
//! written on the next writable event. A connection holds buffers of its own only while it
//! has unconsumed input or unsent output.
//!
//! See `ARCHITECTURE.md` for the layers and how an event flows.
//!
//! ## Cargo features
//!
//! - `dns` (default): host names for [`DialOptions`] dials are resolved by
//!   hickory-resolver on a tokio runtime on one resolver thread (never on a loop). Off,
//!   neither tokio nor hickory is built: IP literals, `localhost` and `/etc/hosts` are
//!   answered directly and other names by the C library's `getaddrinfo` on a thread per
//!   lookup, bounded by the dial's timeout (see [`ResolverConfig`]).

#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(unsafe_code)] // allowed in `sys` alone (bare system calls)
#![deny(missing_docs)]

#[macro_use]
mod logging;

pub mod addr;
mod balance;
mod buf;
mod config;
mod datagram;
mod detach;
mod dial;
mod error;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod handle;
mod id;
mod inherit;
pub mod layer;
mod layer_buf;
mod listener;
mod reactor;
pub(crate) mod resolver;
mod server;
mod slots;
mod socket;
mod stats;
#[cfg(target_os = "linux")]
mod sys;
#[cfg(feature = "testing")]
pub mod testing;
mod timer;

pub use addr::Addr;
pub use balance::LoadBalance;
pub use bytes::Bytes;
pub use config::DEFAULT_SEND_TIMEOUT;
pub use datagram::Datagram;
pub use detach::{Detached, DetachedStream};
pub use dial::DialOptions;
pub use error::Error;
pub use handle::Handle;
pub use id::ConnId;
pub use inherit::Listeners;
pub use layer_buf::LayerBuffers;
pub use reactor::conn::{Appender, Conn, Output};
pub use reactor::control::{Control, TimerId};
pub use reactor::handler::{Action, Handler};
pub use resolver::ResolverConfig;
pub use server::{Builder, Loops, Server};
pub use socket::NetAddr;
pub use stats::Stats;

/// Reads a loop makes on one connection before serving the others.
pub const MAX_READS_PER_TURN: usize = reactor::MAX_READS;
