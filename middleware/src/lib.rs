//! wireloop-middleware
