//! The HTTP/2 frame layer (RFC 9113 §4, §6).
