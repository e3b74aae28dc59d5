//! Health of a group's peers, active and passive.
//!
//! - **Active checks** ([`HealthCheck`]): every `interval` the proxy dials each peer from
//!   its own loop (through the reactor, like any upstream connection: names resolved off
//!   the loop, TLS for `https` peers) and either just connects ([`CheckKind::Tcp`]) or
//!   sends `GET path` and expects a status ([`CheckKind::Http`]). `fall` failed checks in
//!   a row take a healthy peer out, `rise` good ones in a row bring it back. One loop
//!   runs a group's checks and publishes the verdicts to every loop sharing the group
//!   ([`SharedHealth`]); the state machine ([`Checker`]) is sans-IO and tested on a
//!   manual clock.
//! - **Passive health**: `max_fails` failures in a row (a connect failure, no response
//!   head in time) mark a peer down for `down_time`
//!   ([`Settings`](crate::Settings)); each loop keeps its own count in
//!   [`PeerLoad`](crate::balance::PeerLoad).
//!
//! A peer is healthy when neither says otherwise; a group with no healthy peer answers
//! 503 at once.

mod checker;
mod connect;
mod shared;

use std::time::Duration;

pub use checker::{Checker, Verdict};
pub(crate) use connect::publish;
pub use connect::{report_connect_check, run_connect_checks};
pub use shared::SharedHealth;

/// What an active check does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckKind {
    /// The peer accepts a connection (and completes the TLS handshake, for `https`).
    Tcp,
    /// `GET path` answers with a status in `expect` (inclusive range).
    Http {
        /// The path (and query) requested, starting with `/`.
        path: String,
        /// The statuses that mean healthy (default 200–399).
        expect: (u16, u16),
    },
}

/// An active health check of every peer of a group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthCheck {
    /// What one check does.
    pub kind: CheckKind,
    /// From the start of one check of a peer to the next. Default 5 s.
    pub interval: Duration,
    /// A check not done within this fails (connect and answer together). Default 2 s.
    pub timeout: Duration,
    /// Good checks in a row that bring an unhealthy peer back. Default 2.
    pub rise: u32,
    /// Failed checks in a row that take a healthy peer out. Default 3.
    pub fall: u32,
}

impl HealthCheck {
    /// A TCP connect check with the default interval, timeout, rise and fall.
    pub fn tcp() -> HealthCheck {
        HealthCheck {
            kind: CheckKind::Tcp,
            interval: Duration::from_secs(5),
            timeout: Duration::from_secs(2),
            rise: 2,
            fall: 3,
        }
    }

    /// An HTTP check of `path` expecting 200–399, with the default interval, timeout,
    /// rise and fall. `Err` unless `path` starts with `/` and holds no whitespace or
    /// control characters.
    pub fn http(path: &str) -> Result<HealthCheck, String> {
        if !path.starts_with('/') || path.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(format!(
                "health check path {path:?} must start with / and hold no spaces"
            ));
        }
        Ok(HealthCheck {
            kind: CheckKind::Http {
                path: path.to_string(),
                expect: (200, 399),
            },
            ..HealthCheck::tcp()
        })
    }

    /// Checks that the numbers make sense: interval and timeout at least 1 ms, rise and
    /// fall at least 1, the expected statuses a range within 100–999.
    pub fn validate(&self) -> Result<(), String> {
        if self.interval < Duration::from_millis(1) || self.timeout < Duration::from_millis(1) {
            return Err("health check interval and timeout must be at least 1 ms".into());
        }
        if self.rise == 0 || self.fall == 0 {
            return Err("health check rise and fall must be at least 1".into());
        }
        if let CheckKind::Http {
            expect: (lo, hi), ..
        } = self.kind
        {
            if !(100..=999).contains(&lo) || !(lo..=999).contains(&hi) {
                return Err(format!(
                    "expected statuses {lo}-{hi} are not a range of 100-999"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
