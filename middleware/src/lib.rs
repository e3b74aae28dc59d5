//! # wireloop-middleware
//!
//! The translate chain for [`wireloop`]: sans-IO protocol layers stacked between the
//! reactor and a handler, so the handler sees plaintext while the loop still owns the
//! socket. No extra threads, no pipes, no copies beyond what the protocol needs.
//!
//! ```no_run
//! use wireloop::{Action, Conn, Handler, Server};
//! use wireloop_middleware::{translate, CertKey, TlsServer};
//!
//! struct Echo;
//! impl Handler for Echo {
//!     type State = ();
//!     fn data(&mut self, conn: &mut Conn<'_, ()>) -> Action {
//!         let (input, mut out) = conn.split();
//!         out.write(input);
//!         let n = input.len();
//!         conn.consume(n);
//!         Action::None
//!     }
//! }
//!
//! # fn main() -> Result<(), wireloop::Error> {
//! let cert = CertKey::self_signed(&["localhost".to_string()])?;
//! let tls = TlsServer::builder(cert).build()?;
//! Server::builder()
//!     .listen("tcp://0.0.0.0:5000")?      // addr_index 0: plaintext
//!     .listen("tcp://0.0.0.0:5443")?      // addr_index 1: TLS
//!     .serve(|_| translate(Echo, |c| c.addr_index == 1, tls.clone()))
//! # }
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod codec;
pub mod fuzzing;
pub mod http1;
pub mod tls;
pub mod translate;
pub mod ws;

pub use codec::{LengthPrefixed, Lines, RespDecoder, Status};
pub use http1::Http1;
pub use tls::{CertKey, TlsClient, TlsClientBuilder, TlsServer, TlsServerBuilder, TlsSession};
pub use translate::{translate, ConnInfo, Layer, Session, Translate};
pub use wireloop;
pub use ws::{Accept, ClientConfig, WebSocket, Ws, WsClient, WsHandler};
