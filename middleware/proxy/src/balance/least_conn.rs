//! Least connections, weighted: the eligible peer with the fewest requests in flight per
//! unit of weight; ties go round in turn, so an idle group is spread evenly.

use super::PeerLoad;

/// Least-connections state: where the search for ties starts.
#[derive(Clone, Debug, Default)]
pub struct LeastConn {
    next: usize,
}

impl LeastConn {
    /// Picks among the peers for which `eligible` holds.
    pub fn pick(&mut self, peers: &[PeerLoad], eligible: &dyn Fn(usize) -> bool) -> Option<usize> {
        let n = peers.len();
        if n == 0 {
            return None;
        }
        let start = self.next % n;
        self.next = self.next.wrapping_add(1);
        let mut best: Option<usize> = None;
        for k in 0..n {
            let i = (start + k) % n;
            if !eligible(i) {
                continue;
            }
            // busy_i / w_i < busy_b / w_b, without division.
            let lighter = |b: usize| {
                u64::from(peers[i].busy) * u64::from(peers[b].weight.max(1))
                    < u64::from(peers[b].busy) * u64::from(peers[i].weight.max(1))
            };
            if best.is_none_or(lighter) {
                best = Some(i);
            }
        }
        best
    }
}
