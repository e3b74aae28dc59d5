//! Smooth weighted round-robin (nginx's): every pick adds each eligible peer's weight to
//! its credit and takes the peer with the most credit, which then pays the total. Peers of
//! weight 3 and 1 go `a a b a`, never `a a a b` bursts.

use super::PeerLoad;

/// Weighted round-robin state: one credit per peer.
#[derive(Clone, Debug, Default)]
pub struct RoundRobin {
    credit: Vec<i64>,
}

impl RoundRobin {
    /// Picks among the peers for which `eligible` holds.
    pub fn pick(&mut self, peers: &[PeerLoad], eligible: &dyn Fn(usize) -> bool) -> Option<usize> {
        self.credit.resize(peers.len(), 0);
        let mut total = 0i64;
        let mut best: Option<usize> = None;
        for (i, p) in peers.iter().enumerate() {
            if !eligible(i) {
                continue;
            }
            let w = i64::from(p.weight.max(1));
            self.credit[i] += w;
            total += w;
            if best.is_none_or(|b| self.credit[i] > self.credit[b]) {
                best = Some(i);
            }
        }
        let b = best?;
        self.credit[b] -= total;
        Some(b)
    }
}
