//! Pieces shared by the examples: a stderr logger and Ctrl-C/SIGTERM → graceful shutdown.
#![allow(dead_code)]

use std::time::SystemTime;

use wireloop::Handle;

mod args;
#[allow(unused_imports)] // each example uses some of them
pub use args::{loops, max_connections, port, proxy_protocol, send_proxy_protocol, value};

struct StderrLogger(log::LevelFilter);

/// The level a record is logged at. rustls warns about every ClientHello whose SNI is an
/// IP address or not a valid name (`Illegal SNI extension`; wrk and testssl send such
/// hellos on every connection) and then serves the connection anyway: news for debugging,
/// noise at the default level, so warnings of its message parser count as debug.
fn effective_level(m: &log::Metadata<'_>) -> log::Level {
    if m.level() == log::Level::Warn && m.target().starts_with("rustls::msgs") {
        log::Level::Debug
    } else {
        m.level()
    }
}

impl log::Log for StderrLogger {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        effective_level(m) <= self.0
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            // RFC 3339 in UTC with milliseconds, as the access log writes it.
            let mut at = String::with_capacity(24);
            wireloop_proxy::access_log::rfc3339(SystemTime::now(), &mut at);
            eprintln!("{at} {:5} {}", effective_level(r.metadata()), r.args());
        }
    }
    fn flush(&self) {}
}

/// Logs to stderr; the level comes from `WIRELOOP_LOG` (error, warn, info, debug, trace;
/// default info).
pub fn init_logger() {
    let level = std::env::var("WIRELOOP_LOG")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(log::LevelFilter::Info);
    let logger: &'static StderrLogger = Box::leak(Box::new(StderrLogger(level)));
    let _ = log::set_logger(logger);
    log::set_max_level(level);
}

/// Ctrl-C (SIGINT) and SIGTERM start a graceful shutdown.
pub fn shutdown_on_signal(handle: Handle) {
    if let Err(e) = ctrlc::set_handler(move || {
        log::info!("signal received, shutting down");
        handle.shutdown();
    }) {
        log::warn!("cannot install the signal handler: {e}");
    }
}

/// Prints `msg` and the usage to stderr and exits with status 2.
pub fn usage_error(msg: impl std::fmt::Display, usage: &str) -> ! {
    eprintln!("error: {msg}\n\n{usage}");
    std::process::exit(2)
}

/// The TLS certificate for an example: the PEM file given (chain and key in one file), or
/// a self-signed one generated now for `localhost` and this host's name, whose SHA-256
/// fingerprint is logged (and whose PEM is written to `cert_out` if given, for clients
/// to trust).
pub fn tls_cert(
    pem_file: Option<&str>,
    cert_out: Option<&str>,
) -> Result<wireloop_middleware::CertKey, wireloop::Error> {
    use wireloop_middleware::CertKey;
    if let Some(path) = pem_file {
        let ck = CertKey::from_pem_file(path)?;
        log::info!("TLS certificate from {path} (SHA-256 {})", ck.fingerprint());
        return Ok(ck);
    }
    let names = wireloop_middleware::tls::local_names();
    let ck = CertKey::self_signed(&names)?;
    log::info!(
        "no --tlscert given: generated a self-signed certificate for {} (SHA-256 {})",
        names.join(", "),
        ck.fingerprint()
    );
    if let Some(out) = cert_out {
        std::fs::write(out, ck.leaf_pem())
            .map_err(|e| wireloop::Error::layer(format!("cannot write {out}: {e}")))?;
        log::info!("wrote the certificate to {out} (curl --cacert {out})");
    }
    Ok(ck)
}

/// The TLS layer of an example's `--tlsport` listener, `None` when the port is 0 (then
/// `--tlscert` and `--cert-out` are usage errors). `shape` sets ALPN, resumption and the
/// like; a certificate or configuration error is logged and exits with status 1.
pub fn optional_tls(
    tlsport: u16,
    tlscert: Option<&str>,
    cert_out: Option<&str>,
    usage: &str,
    shape: impl FnOnce(wireloop_middleware::TlsServerBuilder) -> wireloop_middleware::TlsServerBuilder,
) -> Option<wireloop_middleware::TlsServer> {
    if tlsport == 0 {
        if tlscert.is_some() || cert_out.is_some() {
            usage_error(
                "--tlscert and --cert-out need a --tlsport other than 0",
                usage,
            );
        }
        return None;
    }
    let built = tls_cert(tlscert, cert_out)
        .and_then(|cert| shape(wireloop_middleware::TlsServer::builder(cert)).build());
    match built {
        Ok(tls) => Some(tls),
        Err(e) => {
            log::error!("{e}");
            std::process::exit(1)
        }
    }
}
