//! Which rustls crypto provider the TLS layers use, chosen by cargo feature.
//!
//! - `aws-lc-rs` (default): rustls's own default. Its key exchange offers the post-quantum
//!   hybrid `X25519MLKEM768` first (then the classical P-384, X25519, P-256), which current browsers,
//!   OpenSSL 3.5 and nginx built on it negotiate; it is also the faster of the two at bulk
//!   AES-GCM. `aws-lc-sys` compiles AWS-LC's C sources with the `cc` crate, so on Linux a C
//!   compiler is all it needs (no cmake, clang, Go or NASM).
//! - `ring`: smaller and quicker to build, no post-quantum key exchange (X25519, P-256,
//!   P-384 only). Select it with `default-features = false, features = ["ring", ...]`.
//!
//! When both are enabled (features are additive), aws-lc-rs wins.

use std::sync::{Arc, OnceLock};

use rustls::crypto::CryptoProvider;
use rustls::server::ProducesTickets;

#[cfg(not(any(feature = "aws-lc-rs", feature = "ring")))]
compile_error!(
    "wireloop-middleware's TLS needs a crypto provider: enable the `aws-lc-rs` (default) or \
     the `ring` feature"
);

/// The crypto provider every [`TlsServer`](super::TlsServer) and
/// [`TlsClient`](super::TlsClient) is built with: aws-lc-rs (post-quantum
/// `X25519MLKEM768` first) unless only the `ring` feature is enabled. Use it for
/// configurations passed to [`TlsServer::from_config`](super::TlsServer::from_config) or for
/// clients that should agree with the server.
pub fn crypto_provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER.get_or_init(|| Arc::new(make())).clone()
}

#[cfg(feature = "aws-lc-rs")]
fn make() -> CryptoProvider {
    rustls::crypto::aws_lc_rs::default_provider()
}

#[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
fn make() -> CryptoProvider {
    // rustls deprecates ring's provider because it has no post-quantum key exchange; that
    // is exactly the trade the `ring` feature makes, knowingly.
    #[allow(deprecated)]
    rustls::crypto::ring::default_provider()
}

/// The session-ticket encrypter of the selected provider.
pub(crate) fn ticketer() -> Result<Arc<dyn ProducesTickets>, rustls::Error> {
    #[cfg(feature = "aws-lc-rs")]
    return rustls::crypto::aws_lc_rs::Ticketer::new();
    #[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
    return rustls::crypto::ring::Ticketer::new();
}

/// SHA-256 of `data`, from the selected provider's library.
pub(crate) fn sha256(data: &[u8]) -> Vec<u8> {
    #[cfg(feature = "aws-lc-rs")]
    use aws_lc_rs::digest;
    #[cfg(all(feature = "ring", not(feature = "aws-lc-rs")))]
    use ring::digest;
    digest::digest(&digest::SHA256, data).as_ref().to_vec()
}
