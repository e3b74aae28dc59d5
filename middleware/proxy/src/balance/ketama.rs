//! Consistent hashing on a ketama ring: each peer owns many points (160 per unit of
//! weight) on a 64-bit circle, and a key goes to the owner of the first point at or after
//! its hash. Removing a peer moves only the keys it owned (about 1/N of them); a peer
//! that is down is skipped to the next point, so its keys spread over the others and come
//! back when it recovers.

/// Points per unit of weight.
pub const POINTS_PER_WEIGHT: usize = 160;

/// Highest weight honoured on the ring (bounds its size: 160 × 100 points per peer).
pub const MAX_RING_WEIGHT: u32 = 100;

/// A ketama ring over a group's peers.
#[derive(Clone, Debug, Default)]
pub struct Ketama {
    /// (point, peer index), sorted by point.
    ring: Vec<(u64, u32)>,
}

impl Ketama {
    /// Builds the ring for peers named `names` (any stable identity: their addresses)
    /// with `weights`.
    pub fn new<'a>(peers: impl IntoIterator<Item = (&'a str, u32)>) -> Ketama {
        let mut ring = Vec::new();
        let mut buf = Vec::new();
        for (i, (name, weight)) in peers.into_iter().enumerate() {
            let points = POINTS_PER_WEIGHT * weight.clamp(1, MAX_RING_WEIGHT) as usize;
            for k in 0..points {
                buf.clear();
                buf.extend_from_slice(name.as_bytes());
                buf.push(b'-');
                buf.extend_from_slice(&(k as u64).to_le_bytes());
                ring.push((super::hash::hash_bytes(&buf), i as u32));
            }
        }
        ring.sort_unstable();
        Ketama { ring }
    }

    /// The peer for `key` among those for which `eligible` holds.
    pub fn pick(&self, key: u64, eligible: &dyn Fn(usize) -> bool) -> Option<usize> {
        let n = self.ring.len();
        if n == 0 {
            return None;
        }
        let start = self.ring.partition_point(|&(p, _)| p < key);
        (0..n)
            .map(|k| self.ring[(start + k) % n].1 as usize)
            .find(|&i| eligible(i))
    }
}
