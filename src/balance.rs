//! Choosing a loop for a new connection.

use std::sync::atomic::{AtomicUsize, Ordering};

/// How connections accepted on a shared listener are spread over the loops. (Listeners
/// with `reuseport=true` have one socket per loop and the kernel spreads connections.)
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LoadBalance {
    /// Each loop in turn.
    #[default]
    RoundRobin,
    /// The loop with the fewest open connections.
    LeastConnections,
    /// A loop chosen at random.
    Random,
}

/// The accepting loop's balancer state.
#[derive(Debug)]
pub(crate) struct Balancer {
    mode: LoadBalance,
    next: usize,
    rng: u64,
}

impl Balancer {
    pub(crate) fn new(mode: LoadBalance, seed: u64) -> Balancer {
        Balancer {
            mode,
            next: 0,
            rng: seed | 1,
        }
    }

    /// Picks a loop among `loads.len()` loops; `loads` are their open connections.
    pub(crate) fn pick(&mut self, loads: &[AtomicUsize]) -> usize {
        let n = loads.len();
        if n <= 1 {
            return 0;
        }
        match self.mode {
            LoadBalance::RoundRobin => {
                let i = self.next % n;
                self.next = self.next.wrapping_add(1);
                i
            }
            LoadBalance::Random => {
                // xorshift64*: plenty for spreading connections.
                self.rng ^= self.rng >> 12;
                self.rng ^= self.rng << 25;
                self.rng ^= self.rng >> 27;
                (self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
            }
            LoadBalance::LeastConnections => {
                // Ties go round-robin so an idle server still spreads its first connections.
                let start = self.next % n;
                self.next = self.next.wrapping_add(1);
                let mut best = start;
                let mut best_load = usize::MAX;
                for k in 0..n {
                    let i = (start + k) % n;
                    let l = loads[i].load(Ordering::Relaxed);
                    if l < best_load {
                        best = i;
                        best_load = l;
                    }
                }
                best
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loads(v: &[usize]) -> Vec<AtomicUsize> {
        v.iter().map(|&x| AtomicUsize::new(x)).collect()
    }

    #[test]
    fn round_robin_cycles() {
        let mut b = Balancer::new(LoadBalance::RoundRobin, 1);
        let l = loads(&[0, 0, 0]);
        let got: Vec<_> = (0..6).map(|_| b.pick(&l)).collect();
        assert_eq!(got, vec![0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn least_connections_picks_min() {
        let mut b = Balancer::new(LoadBalance::LeastConnections, 1);
        let l = loads(&[5, 1, 3]);
        assert_eq!(b.pick(&l), 1);
        assert_eq!(b.pick(&l), 1);
    }

    #[test]
    fn random_covers_all() {
        let mut b = Balancer::new(LoadBalance::Random, 42);
        let l = loads(&[0, 0, 0, 0]);
        let mut seen = [0; 4];
        for _ in 0..400 {
            seen[b.pick(&l)] += 1;
        }
        assert!(seen.iter().all(|&c| c > 40), "{seen:?}");
    }
}
