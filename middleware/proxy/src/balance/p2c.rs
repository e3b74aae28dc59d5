//! Power of two choices on peak-EWMA latency (Finagle's and Linkerd's balancer): two
//! eligible peers at random, the one with the lower cost wins, where the cost is the
//! peer's latency estimate times its requests in flight plus one, per unit of weight.
//! The estimate jumps up at once to a slower observation (the peak) and decays towards
//! faster ones with a time constant, so a peer that turns slow is avoided immediately and
//! one that recovers earns its traffic back gradually.

use std::time::{Duration, Instant};

use super::PeerLoad;

/// How fast a latency estimate forgets: after `DECAY`, an old observation weighs 1/e.
pub const DECAY: Duration = Duration::from_secs(10);

/// What a peer with no observation yet is assumed to take (cheap enough to be tried).
pub const DEFAULT_RTT: Duration = Duration::from_millis(1);

/// A peak-EWMA latency estimate (nanoseconds).
#[derive(Clone, Copy, Debug, Default)]
pub struct Ewma {
    nanos: f64,
    stamp: Option<Instant>,
}

impl Ewma {
    /// Takes in one observed latency `rtt`, seen at `now` (the loop's clock).
    pub fn observe(&mut self, rtt: Duration, now: Instant) {
        let rtt = rtt.as_nanos() as f64;
        match self.stamp {
            None => self.nanos = rtt,
            Some(_) if rtt > self.nanos => self.nanos = rtt,
            Some(t) => {
                let dt = now.saturating_duration_since(t).as_secs_f64();
                let w = (-dt / DECAY.as_secs_f64()).exp();
                self.nanos = self.nanos * w + rtt * (1.0 - w);
            }
        }
        self.stamp = Some(now);
    }

    /// The current estimate in nanoseconds ([`DEFAULT_RTT`] before any observation).
    pub fn nanos(&self) -> f64 {
        match self.stamp {
            None => DEFAULT_RTT.as_nanos() as f64,
            Some(_) => self.nanos,
        }
    }
}

/// Power-of-two-choices state: a small random generator (xorshift64*).
#[derive(Clone, Debug)]
pub struct P2c {
    rng: u64,
    scratch: Vec<usize>,
}

impl Default for P2c {
    fn default() -> P2c {
        P2c::with_seed(0x9e37_79b9_7f4a_7c15)
    }
}

impl P2c {
    /// A balancer whose random choices start from `seed` (reproducible in tests).
    pub fn with_seed(seed: u64) -> P2c {
        P2c {
            rng: seed | 1,
            scratch: Vec::new(),
        }
    }

    fn next(&mut self) -> u64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Picks among the peers for which `eligible` holds.
    pub fn pick(&mut self, peers: &[PeerLoad], eligible: &dyn Fn(usize) -> bool) -> Option<usize> {
        self.scratch.clear();
        self.scratch
            .extend((0..peers.len()).filter(|&i| eligible(i)));
        let n = self.scratch.len();
        match n {
            0 => return None,
            1 => return Some(self.scratch[0]),
            _ => {}
        }
        let a = (self.next() % n as u64) as usize;
        let mut b = (self.next() % (n as u64 - 1)) as usize;
        if b >= a {
            b += 1;
        }
        let (a, b) = (self.scratch[a], self.scratch[b]);
        let cost = |i: usize| {
            let p = &peers[i];
            p.ewma.nanos() * (f64::from(p.busy) + 1.0) / f64::from(p.weight.max(1))
        };
        Some(if cost(b) < cost(a) { b } else { a })
    }
}
