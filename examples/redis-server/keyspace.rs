//! The keyspace: values (strings and collections, `value.rs`) with optional deadlines,
//! expired lazily and by a sweep.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use crate::value::Value;

/// A value and its deadline (milliseconds on the store's clock).
pub struct Entry {
    /// What the key holds.
    pub value: Value,
    /// When it expires, if ever.
    pub expires: Option<u64>,
}

impl Entry {
    #[inline]
    pub fn expired(&self, now: u64) -> bool {
        self.expires.is_some_and(|t| t <= now)
    }
}

/// The keyspace: the map, and a heap of deadlines for the sweep. The heap is lazy: a
/// deadline that was changed or removed stays in it until popped (and is then ignored),
/// and the heap is rebuilt when stale deadlines outnumber live ones.
pub struct Store {
    /// Every key and its entry (expired ones until touched or swept).
    pub map: HashMap<Box<[u8]>, Entry>,
    deadlines: BinaryHeap<Reverse<(u64, Box<[u8]>)>>,
    /// Keys in `map` with a deadline.
    pub with_ttl: usize,
    epoch: Instant,
    /// Most elements one collection may hold (`--max-elements`).
    pub max_elements: usize,
    rng: u64,
}

impl Store {
    pub fn new(max_elements: usize) -> Store {
        use std::hash::{BuildHasher, RandomState};
        Store {
            map: HashMap::new(),
            deadlines: BinaryHeap::new(),
            with_ttl: 0,
            epoch: Instant::now(),
            max_elements,
            // Seeded from the standard library's per-process random hash keys.
            rng: RandomState::new().hash_one(0x5eed_u64) | 1,
        }
    }

    /// A pseudo-random number (xorshift64*), for SPOP.
    pub fn random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// The live value under `key`, made with `make` (and without a deadline) when the key
    /// is absent or expired. Always `Some`.
    pub fn get_or_insert(
        &mut self,
        key: &[u8],
        now: u64,
        make: impl FnOnce() -> Value,
    ) -> Option<&mut Value> {
        if self.live(key, now).is_none() {
            self.map.insert(
                key.into(),
                Entry {
                    value: make(),
                    expires: None,
                },
            );
        }
        self.map.get_mut(key).map(|e| &mut e.value)
    }

    /// Milliseconds since the store was made (the clock deadlines are on), from 1.
    pub fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    /// The live entry for `key`; an expired one is deleted.
    pub fn live(&mut self, key: &[u8], now: u64) -> Option<&mut Entry> {
        if self.map.get(key)?.expired(now) {
            self.remove(key);
            return None;
        }
        self.map.get_mut(key)
    }

    pub fn remove(&mut self, key: &[u8]) -> bool {
        match self.map.remove(key) {
            Some(e) => {
                if e.expires.is_some() {
                    self.with_ttl -= 1;
                }
                true
            }
            None => false,
        }
    }

    /// Sets `key`'s deadline (the key exists).
    pub fn set_deadline(&mut self, key: &[u8], at: Option<u64>) {
        let Some(e) = self.map.get_mut(key) else {
            return;
        };
        match (e.expires, at) {
            (None, Some(_)) => self.with_ttl += 1,
            (Some(_), None) => self.with_ttl -= 1,
            _ => {}
        }
        e.expires = at;
        if let Some(t) = at {
            self.deadlines.push(Reverse((t, key.into())));
            self.compact();
        }
    }

    /// Stores `value` under `key`. `expires`: `Some(deadline)` sets one, `None` clears it
    /// unless `keep_ttl`. With `nx`/`xx`, only if the key is absent/present; returns
    /// whether it was stored. No allocation when the key exists and its buffer is big
    /// enough.
    #[allow(clippy::too_many_arguments)]
    pub fn set(
        &mut self,
        key: &[u8],
        value: &[u8],
        expires: Option<u64>,
        keep_ttl: bool,
        nx: bool,
        xx: bool,
        now: u64,
    ) -> bool {
        let deadline;
        match self.map.get_mut(key) {
            Some(e) => {
                let live = !e.expired(now);
                if (nx && live) || (xx && !live) {
                    return false;
                }
                match &mut e.value {
                    Value::Str(v) if v.capacity() <= 4 * value.len().max(64) => {
                        v.clear();
                        v.extend_from_slice(value);
                    }
                    other => *other = Value::Str(value.to_vec()),
                }
                let old = e.expires;
                // An expired key is a new key: it keeps no TTL.
                let new = match expires {
                    Some(t) => Some(t),
                    None if keep_ttl && live => old,
                    None => None,
                };
                match (old, new) {
                    (None, Some(_)) => self.with_ttl += 1,
                    (Some(_), None) => self.with_ttl -= 1,
                    _ => {}
                }
                e.expires = new;
                deadline = new.filter(|_| new != old);
            }
            None => {
                if xx {
                    return false;
                }
                self.map.insert(
                    key.into(),
                    Entry {
                        value: Value::Str(value.to_vec()),
                        expires,
                    },
                );
                if expires.is_some() {
                    self.with_ttl += 1;
                }
                deadline = expires;
            }
        }
        if let Some(t) = deadline {
            self.deadlines.push(Reverse((t, key.into())));
            self.compact();
        }
        true
    }

    /// Rebuilds the deadline heap when most of it is stale.
    fn compact(&mut self) {
        if self.deadlines.len() > 2 * self.with_ttl + 1024 {
            self.deadlines = self
                .map
                .iter()
                .filter_map(|(k, e)| e.expires.map(|t| Reverse((t, k.clone()))))
                .collect();
        }
    }

    /// Deletes keys whose deadline has passed, at most `budget` deadlines per call.
    pub fn sweep(&mut self, budget: usize) -> usize {
        let now = self.now_ms();
        let mut removed = 0;
        for _ in 0..budget {
            match self.deadlines.peek() {
                Some(Reverse((t, _))) if *t <= now => {}
                _ => break,
            }
            let Some(Reverse((t, key))) = self.deadlines.pop() else {
                break;
            };
            // A stale deadline (changed or cleared since) is ignored.
            if self.map.get(&key).is_some_and(|e| e.expires == Some(t)) {
                self.remove(&key);
                removed += 1;
            }
        }
        removed
    }

    pub fn clear(&mut self) {
        self.map.clear();
        self.deadlines.clear();
        self.with_ttl = 0;
    }
}

pub fn lock(store: &Mutex<Store>) -> MutexGuard<'_, Store> {
    // A panic while holding the lock cannot leave the map half-updated in a way that
    // matters more than losing the server: keep serving.
    store.lock().unwrap_or_else(|e| e.into_inner())
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lazy_expiry_deletes_on_access() {
        let mut st = Store::new(1 << 20);
        let now = st.now_ms();
        st.set(b"k", b"v", Some(now + 10), false, false, false, now);
        assert!(st.live(b"k", now).is_some());
        assert_eq!((st.map.len(), st.with_ttl), (1, 1));
        assert!(st.live(b"k", now + 10).is_none());
        assert_eq!((st.map.len(), st.with_ttl), (0, 0));
    }

    #[test]
    fn sweep_and_compaction() {
        let mut st = Store::new(1 << 20);
        let now = st.now_ms();
        for i in 0..3000 {
            let k = format!("k{i}");
            st.set(
                k.as_bytes(),
                b"v",
                Some(now + 1_000_000),
                false,
                false,
                false,
                now,
            );
            st.set(
                k.as_bytes(),
                b"v",
                Some(now + 2_000_000),
                false,
                false,
                false,
                now,
            );
        }
        assert_eq!(st.with_ttl, 3000);
        assert!(st.deadlines.len() <= 2 * 3000 + 1024 + 1);
        st.set(b"gone", b"v", Some(1), false, false, false, now);
        assert_eq!(st.sweep(100), 1);
        assert!(!st.map.contains_key(&b"gone"[..]));
        assert_eq!(st.with_ttl, 3000);
    }
}
