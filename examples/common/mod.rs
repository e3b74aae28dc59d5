//! Pieces shared by the examples: a stderr logger and Ctrl-C/SIGTERM → graceful shutdown.
#![allow(dead_code)]

use std::time::{SystemTime, UNIX_EPOCH};

use wireloop::Handle;

struct StderrLogger(log::LevelFilter);

impl log::Log for StderrLogger {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= self.0
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            let t = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            eprintln!(
                "{}.{:03} {:5} {}",
                t.as_secs(),
                t.subsec_millis(),
                r.level(),
                r.args()
            );
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
