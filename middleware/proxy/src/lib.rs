//! # wireloop-proxy
//!
//! Proxies as policies: balancing (and, in later modules, the HTTP/1.1 and TCP proxy
//! engines) for wireloop.

pub mod balance;
