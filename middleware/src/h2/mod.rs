//! HTTP/2 (RFC 9113), sans-IO: the pieces a connection is built from.
//!
//! - [`frame`]: the frame layer (RFC 9113 §4 and §6): decoding frames from a byte buffer
//!   with every size and field checked, and encoding them into an output buffer.
//! - [`conn`]: the connection state machine (RFC 9113 §5, §6.5, §6.8, §6.9, §8), server
//!   and client roles: streams, settings, flow control, request and response checks,
//!   limits against hostile peers.
//! - [`hpack`]: header compression (RFC 7541): a decoder with a bounded dynamic table and a
//!   header-list size limit, and an encoder with Huffman coding.
//!
//! Nothing here does I/O or allocates per frame beyond what the protocol needs.

pub mod conn;
pub mod frame;
pub mod hpack;
