//! # wireloop-middleware
//!
//! The translate chain for [`wireloop`]: sans-IO protocol layers (TLS on rustls, HTTP/1.1 on
//! httparse, WebSocket, framing codecs) stacked between the reactor and a handler, so the
//! handler sees plaintext frames while the loop still owns the socket.
//!
//! This crate is the home of those layers; they land one issue at a time (translate + TLS,
//! then HTTP/1.1, then WebSocket and codecs). Until then it only re-exports the reactor so
//! dependants can already name one crate.

pub use wireloop;
