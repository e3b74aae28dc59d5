//! HPACK header compression (RFC 7541).

pub mod huffman;
