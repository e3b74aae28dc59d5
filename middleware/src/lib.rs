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
//!
//! ## Cargo features
//!
//! All on by default: `tls` (rustls) with the crypto provider `aws-lc-rs` (post-quantum
//! `X25519MLKEM768` first; or `ring`), `self-signed` (`CertKey::self_signed`, rcgen),
//! `webpki-roots` (the default trust store of `TlsClient`), `http1`, `ws` (needs `http1`
//! and `codec`), `codec`, `proxy-protocol` (the PROXY protocol layers, needs `codec`),
//! `dns` (the core's hickory resolver, `wireloop/dns`).
//! `translate` and the `Layer` contract are always there.

#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(unsafe_code)] // allowed in `text` alone (bytes checked as ASCII handed out as `&str`)
#![deny(missing_docs)]

#[cfg(feature = "codec")]
pub mod codec;
#[cfg(all(
    feature = "fuzzing",
    feature = "self-signed",
    feature = "http1",
    feature = "ws",
    feature = "codec"
))]
pub mod fuzzing;
#[cfg(feature = "h2")]
pub mod h2;
#[cfg(feature = "http1")]
pub mod http1;
#[cfg(all(feature = "http1", any(test, feature = "fuzzing")))]
mod kept;
#[cfg(feature = "proxy-protocol")]
pub mod proxy_protocol;
#[cfg(feature = "http1")]
mod text;
#[cfg(feature = "tls")]
pub mod tls;
pub mod translate;
#[cfg(feature = "ws")]
pub mod ws;

#[cfg(feature = "codec")]
pub use codec::{LengthPrefixed, Lines, RespDecoder, Status};
#[cfg(feature = "http1")]
pub use http1::Http1;
#[cfg(feature = "tls")]
pub use tls::{CertKey, TlsClient, TlsClientBuilder, TlsServer, TlsServerBuilder, TlsSession};
pub use translate::{translate, ConnInfo, Layer, Session, Translate};
pub use wireloop;
#[cfg(feature = "ws")]
pub use ws::{Accept, ClientConfig, WebSocket, Ws, WsClient, WsHandler};
