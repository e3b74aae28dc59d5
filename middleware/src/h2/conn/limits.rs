//! Rate limits against hostile peers: a token bucket per kind of frame that costs us
//! work but carries none of the application's ([`Rate`], [`Budget`]).
//!
//! Each frame of a limited kind takes a token; tokens come back at a steady rate and,
//! for some kinds, with useful work (a request, a DATA frame sent). A peer that takes a
//! token from an empty bucket gets a connection error ENHANCE_YOUR_CALM.

use std::time::Instant;

/// A token bucket's shape: `burst` tokens at first and at most, `per_second` more each
/// second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// The bucket's size: how many frames in a burst.
    pub burst: u32,
    /// Tokens added per second.
    pub per_second: u32,
}

impl Rate {
    /// A rate of `burst` then `per_second`.
    pub const fn new(burst: u32, per_second: u32) -> Rate {
        Rate { burst, per_second }
    }
}

/// A token bucket.
#[derive(Clone, Debug)]
pub(super) struct Budget {
    rate: Rate,
    tokens: u32,
    /// When the tokens were last topped up (time not yet turned into tokens is kept).
    since: Instant,
}

impl Budget {
    pub(super) fn new(rate: Rate, now: Instant) -> Budget {
        Budget {
            rate,
            tokens: rate.burst,
            since: now,
        }
    }

    /// Takes a token; `false` when the bucket is empty (the peer is over the limit).
    pub(super) fn take(&mut self, now: Instant) -> bool {
        self.refill(now);
        match self.tokens.checked_sub(1) {
            Some(t) => {
                self.tokens = t;
                true
            }
            None => false,
        }
    }

    /// Gives `n` tokens back (useful work done), up to the burst.
    pub(super) fn refund(&mut self, n: u32) {
        self.tokens = self.tokens.saturating_add(n).min(self.rate.burst);
    }

    fn refill(&mut self, now: Instant) {
        if self.rate.per_second == 0 {
            return;
        }
        let elapsed = now.saturating_duration_since(self.since);
        let per = u128::from(self.rate.per_second);
        let earned = elapsed.as_nanos().saturating_mul(per) / 1_000_000_000;
        if earned == 0 {
            return;
        }
        let earned = u32::try_from(earned).unwrap_or(u32::MAX);
        self.tokens = self.tokens.saturating_add(earned).min(self.rate.burst);
        if self.tokens == self.rate.burst {
            self.since = now;
        } else {
            // Keep the fraction of a token not earned yet.
            let used = u128::from(earned) * 1_000_000_000 / per;
            let used = u64::try_from(used).unwrap_or(u64::MAX);
            self.since += std::time::Duration::from_nanos(used);
        }
    }
}

/// The budgets of one connection.
#[derive(Clone, Debug)]
pub(super) struct Budgets {
    pub(super) settings: Budget,
    pub(super) ping: Budget,
    pub(super) priority: Budget,
    pub(super) empty_data: Budget,
    pub(super) window_update: Budget,
    pub(super) reset: Budget,
}

impl Budgets {
    pub(super) fn new(cfg: &super::Config, now: Instant) -> Budgets {
        Budgets {
            settings: Budget::new(cfg.settings_rate, now),
            ping: Budget::new(cfg.ping_rate, now),
            priority: Budget::new(cfg.priority_rate, now),
            empty_data: Budget::new(cfg.empty_data_rate, now),
            window_update: Budget::new(cfg.window_update_rate, now),
            reset: Budget::new(cfg.reset_rate, now),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_empties_refills_and_keeps_fractions() {
        let t0 = Instant::now();
        let mut b = Budget::new(Rate::new(3, 2), t0);
        assert!(b.take(t0) && b.take(t0) && b.take(t0));
        assert!(!b.take(t0));
        // 2 a second: one token each 500 ms, fractions carried over.
        assert!(!b.take(t0 + Duration::from_millis(300)));
        assert!(b.take(t0 + Duration::from_millis(600)));
        assert!(!b.take(t0 + Duration::from_millis(900)));
        assert!(b.take(t0 + Duration::from_millis(1000)));
        // Never more than the burst.
        let later = t0 + Duration::from_secs(3600);
        assert!(b.take(later) && b.take(later) && b.take(later));
        assert!(!b.take(later));
        b.refund(10);
        assert!(b.take(later) && b.take(later) && b.take(later));
        assert!(!b.take(later));
        let mut never = Budget::new(Rate::new(0, 0), t0);
        assert!(!never.take(later));
    }
}
