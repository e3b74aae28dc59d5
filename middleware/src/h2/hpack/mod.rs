//! HPACK header compression (RFC 7541), sans-IO.
//!
//! - [`Decoder`] turns header blocks into header fields, called back in order with
//!   slices of the block, of its dynamic table or of its scratch buffer.
//! - [`Encoder`] turns header fields into header blocks, with the static table, a dynamic
//!   table and Huffman coding (its policy is documented on the type).
//! - [`huffman`] is the Huffman code of Appendix B on its own.
//!
//! One connection has one of each: the decoder for the blocks the peer sends (its table
//! bounded by our SETTINGS_HEADER_TABLE_SIZE, [`Decoder::set_max_table_size`]), the
//! encoder for the blocks we send (bounded by the peer's, [`Encoder::set_max_table_size`]).
//! Both must see every block of the connection, in order.
//!
//! # Limits
//!
//! - The decoder's dynamic table never exceeds our setting: a size update above it is a
//!   [`DecodeError::TableSizeUpdateTooLarge`]. The encoder's never exceeds 4096 octets.
//! - The header list limit given to [`Decoder::decode`] (RFC 9113 §6.5.2, name + value +
//!   32 per field) stops the callbacks, not the decoding: the table stays in step and the
//!   error, [`DecodeError::HeaderListTooLarge`], is the only one that is not a connection
//!   error ([`DecodeError::is_compression_error`]).
//! - Integers are limited to `u32::MAX` (five continuation octets), indexes to the tables'
//!   entries, string lengths to what is left of the block.
//! - The decoder holds at most the block's Huffman-coded strings decoded (8 octets for 5),
//!   so the caller bounds its memory by bounding the block it collects from HEADERS and
//!   CONTINUATION frames.
//!
//! # Allocation
//!
//! Decoding allocates one dynamic-table entry (name and value in one buffer) per field the
//! peer indexes, and grows the decoder's scratch buffer for Huffman-coded strings (kept
//! between blocks up to 64 KiB). Encoding appends to the caller's `Vec` and allocates one
//! entry per field it indexes.
//!
//! # Not here
//!
//! HTTP semantics: lowercase names, pseudo-header order, connection-specific fields
//! (RFC 9113 §8.2) are checked by the layer that uses these fields. The decoder accepts
//! any octets in names and values; the encoder sends the names it is given unchanged.

mod decoder;
mod encoder;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod huffman;
mod integer;
mod table;
#[cfg(test)]
mod tests;

pub use decoder::{DecodeError, Decoder};
pub use encoder::{Encoder, Field, MAX_INDEXED_VALUE};

/// The initial SETTINGS_HEADER_TABLE_SIZE (RFC 9113 §6.5.2): the dynamic table's size
/// until a SETTINGS frame changes it, and the most the [`Encoder`] uses.
pub const DEFAULT_TABLE_SIZE: usize = 4096;
