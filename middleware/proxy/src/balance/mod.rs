//! Choosing a peer of an upstream group: weighted round-robin, least connections, power
//! of two choices on peak-EWMA latency, and consistent hashing (ketama) on a key the
//! policy chooses. Every balancer is sans-IO: it reads the peers' [`PeerLoad`] and
//! returns an index, so each one is tested without sockets. (The reactor's own
//! `LoadBalance`, which hands accepted connections to loops, is a different thing.)

mod hash;
mod ketama;
mod least_conn;
mod p2c;
mod round_robin;

use std::time::Instant;

pub use hash::{hash_bytes, mix};
pub use ketama::{Ketama, MAX_RING_WEIGHT, POINTS_PER_WEIGHT};
pub use least_conn::LeastConn;
pub use p2c::{Ewma, P2c, DECAY, DEFAULT_RTT};
pub use round_robin::RoundRobin;

/// What a balancer knows of one peer on this loop.
#[derive(Clone, Debug)]
pub struct PeerLoad {
    /// The peer's weight (at least 1).
    pub weight: u32,
    /// Requests in flight to it.
    pub busy: u32,
    /// Connections open or connecting to it.
    pub conns: u32,
    /// Its time to first response byte, peak-EWMA.
    pub ewma: Ewma,
    /// Avoided until then (passive health: a connect failed).
    pub down_until: Option<Instant>,
}

impl PeerLoad {
    /// A peer of `weight` with nothing in flight.
    pub fn new(weight: u32) -> PeerLoad {
        PeerLoad {
            weight: weight.max(1),
            busy: 0,
            conns: 0,
            ewma: Ewma::default(),
            down_until: None,
        }
    }

    /// Whether the peer is up at `now` (not marked down, or its down time is over).
    pub fn is_up(&self, now: Instant) -> bool {
        self.down_until.is_none_or(|t| t <= now)
    }
}

/// How a group spreads requests over its peers (configuration).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Balance {
    /// Weighted round-robin (smooth).
    #[default]
    RoundRobin,
    /// Fewest requests in flight per unit of weight.
    LeastConn,
    /// Power of two choices on peak-EWMA latency.
    P2cEwma,
    /// Consistent hashing (ketama) on the request's key.
    Hash,
}

impl Balance {
    /// Parses `round-robin`, `least-conn` (also `least-connections`), `p2c-ewma` or
    /// `hash`.
    pub fn parse(s: &str) -> Result<Balance, String> {
        Ok(match s {
            "round-robin" => Balance::RoundRobin,
            "least-conn" | "least-connections" => Balance::LeastConn,
            "p2c-ewma" => Balance::P2cEwma,
            "hash" => Balance::Hash,
            other => {
                return Err(format!(
                    "unknown balance mode {other:?} (round-robin, least-conn, p2c-ewma, hash)"
                ))
            }
        })
    }
}

/// A balancer's state for one group on one loop.
#[derive(Clone, Debug)]
pub enum Balancer {
    /// See [`RoundRobin`].
    RoundRobin(RoundRobin),
    /// See [`LeastConn`].
    LeastConn(LeastConn),
    /// See [`P2c`].
    P2cEwma(P2c),
    /// See [`Ketama`].
    Hash(Ketama),
}

impl Balancer {
    /// The balancer for `mode` over peers named `names` with `weights` (the names only
    /// matter to consistent hashing).
    pub fn new<'a>(mode: &Balance, peers: impl IntoIterator<Item = (&'a str, u32)>) -> Balancer {
        match mode {
            Balance::RoundRobin => Balancer::RoundRobin(RoundRobin::default()),
            Balance::LeastConn => Balancer::LeastConn(LeastConn::default()),
            Balance::P2cEwma => Balancer::P2cEwma(P2c::default()),
            Balance::Hash => Balancer::Hash(Ketama::new(peers)),
        }
    }

    /// Picks a peer for a request with hash `key` among those for which `eligible` holds.
    pub fn pick(
        &mut self,
        peers: &[PeerLoad],
        key: u64,
        eligible: &dyn Fn(usize) -> bool,
    ) -> Option<usize> {
        match self {
            Balancer::RoundRobin(b) => b.pick(peers, eligible),
            Balancer::LeastConn(b) => b.pick(peers, eligible),
            Balancer::P2cEwma(b) => b.pick(peers, eligible),
            Balancer::Hash(b) => b.pick(key, eligible),
        }
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
