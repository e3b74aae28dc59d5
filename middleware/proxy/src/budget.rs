//! The retry budget of an upstream group: retries may add at most a share of the
//! group's requests (plus a small floor per second), so when the peers fail together a
//! proxy does not multiply its load on them; while one peer of several fails, the
//! budget covers its share and well-behaved clients see nothing of it.
//!
//! Each request deposits [`RetryBudget::ratio`] tokens (counted, and added up only when
//! a retry is asked for), time deposits
//! [`RetryBudget::min_per_sec`] tokens a second, and a retry withdraws one. The balance
//! is capped at what [`RetryBudget::window`] of deposits would give (plus one), so a
//! quiet spell cannot save up a storm. Sans-IO: the caller passes the time.

use std::time::{Duration, Instant};

/// How many retries a group allows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryBudget {
    /// Retries allowed per request, over time (default 0.2: retries add at most 20 %).
    pub ratio: f64,
    /// Retries allowed per second whatever the request rate (default 10), so a group
    /// with little traffic can still retry.
    pub min_per_sec: f64,
    /// How much unused budget may be saved up, in seconds of deposits (default 10 s).
    pub window: Duration,
}

impl Default for RetryBudget {
    fn default() -> RetryBudget {
        RetryBudget {
            ratio: 0.2,
            min_per_sec: 10.0,
            window: Duration::from_secs(10),
        }
    }
}

impl RetryBudget {
    /// No retry at all.
    pub const NONE: RetryBudget = RetryBudget {
        ratio: 0.0,
        min_per_sec: 0.0,
        window: Duration::ZERO,
    };
}

/// A group's budget on one loop: its balance of retry tokens.
#[derive(Clone, Debug)]
pub(crate) struct Budget {
    cfg: RetryBudget,
    tokens: f64,
    /// Requests since the last refill: counting one is all a request costs.
    pending: u64,
    /// About how many requests came over the last window (for the cap).
    recent: f64,
    last: Option<Instant>,
}

impl Budget {
    pub(crate) fn new(cfg: RetryBudget) -> Budget {
        Budget {
            cfg,
            // A fresh group may retry as if it had been idle for a while.
            tokens: cfg.min_per_sec * cfg.window.as_secs_f64(),
            pending: 0,
            recent: 0.0,
            last: None,
        }
    }

    pub(crate) fn config(&self) -> &RetryBudget {
        &self.cfg
    }

    /// Adds what time and the requests since the last refill deposited (only when a
    /// retry is asked for, so requests cost a count each).
    fn refill(&mut self, now: Instant) {
        let dt = self
            .last
            .map_or(0.0, |l| now.saturating_duration_since(l).as_secs_f64());
        self.last = Some(now);
        let window = self.cfg.window.as_secs_f64();
        let n = std::mem::take(&mut self.pending) as f64;
        self.recent = if window <= 0.0 {
            0.0
        } else if dt >= window {
            // Requests spread over more than a window: the window's share.
            n * window / dt
        } else {
            n + self.recent * (1.0 - dt / window)
        };
        self.tokens += self.cfg.min_per_sec * dt + self.cfg.ratio * n;
        // At most about a window of deposits (and one token of slack, so a budget that
        // has just earned a retry is not denied it by rounding).
        let cap = self.cfg.min_per_sec * window + self.cfg.ratio * self.recent + 1.0;
        self.tokens = self.tokens.min(cap);
    }

    /// A request starts.
    pub(crate) fn deposit(&mut self) {
        self.pending += 1;
    }

    /// Whether a retry fits in the budget now.
    pub(crate) fn available(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= 1.0
    }

    /// Takes a token for a retry; `false` if the budget is spent.
    pub(crate) fn withdraw(&mut self, now: Instant) -> bool {
        if self.available(now) {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::{Budget, RetryBudget};

    /// Retries granted when `rps` requests a second all want one, over `secs` seconds.
    fn granted(cfg: RetryBudget, rps: u32, secs: u32) -> u32 {
        let mut b = Budget::new(cfg);
        let t0 = Instant::now();
        let mut n = 0;
        for i in 0..rps * secs {
            let now = t0 + Duration::from_secs_f64(f64::from(i) / f64::from(rps));
            b.deposit();
            n += u32::from(b.withdraw(now));
        }
        n
    }

    #[test]
    fn a_failing_group_retries_a_share_of_its_requests_plus_the_floor() {
        // 1,000 requests a second for 60 s, each wanting a retry: 20 % plus 10 a second,
        // plus what a fresh group starts with (100).
        let n = granted(RetryBudget::default(), 1000, 60);
        let expected = 60 * 200 + 60 * 10 + 100;
        assert!(
            n.abs_diff(expected) < expected / 50,
            "{n} retries, about {expected} expected"
        );
    }

    #[test]
    fn little_traffic_retries_on_the_floor_and_nothing_saves_up_a_storm() {
        let cfg = RetryBudget::default();
        // One request a second: the floor of 10 a second covers every retry.
        assert_eq!(granted(cfg, 1, 30), 30);
        // An hour of quiet saves up at most a window's worth.
        let mut b = Budget::new(cfg);
        let t0 = Instant::now();
        b.deposit();
        assert!(b.available(t0));
        let later = t0 + Duration::from_secs(3600);
        let burst = (0..10_000).filter(|_| b.withdraw(later)).count();
        assert!((100..=103).contains(&burst), "{burst}");
    }

    #[test]
    fn no_budget_no_retry() {
        assert_eq!(granted(RetryBudget::NONE, 100, 10), 0);
    }
}
