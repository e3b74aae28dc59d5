//! A slab of connections whose keys carry a generation, so a stale id (the connection is
//! gone, or its slot was reused) is recognised instead of reaching a stranger.

/// One slot: a value, or a link in the free list. Either way it remembers its generation.
#[derive(Debug)]
enum Entry<T> {
    Occupied(T),
    /// The value is out (being used by a callback) and will be put back.
    Busy,
    Vacant {
        next_free: u32,
    },
}

#[derive(Debug)]
struct Slot<T> {
    gen: u32,
    entry: Entry<T>,
}

/// Generational slab. Keys are `u32` indices; generations are bumped on every removal.
#[derive(Debug)]
pub(crate) struct Slots<T> {
    slots: Vec<Slot<T>>,
    free_head: u32,
    len: usize,
}

const NIL: u32 = u32::MAX;

impl<T> Slots<T> {
    pub(crate) fn new() -> Slots<T> {
        Slots {
            slots: Vec::new(),
            free_head: NIL,
            len: 0,
        }
    }

    /// Number of occupied slots.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The key and generation the next `insert` will use.
    pub(crate) fn next_key(&self) -> (u32, u32) {
        if self.free_head != NIL {
            let k = self.free_head;
            (k, self.slots[k as usize].gen)
        } else {
            (self.slots.len() as u32, 0)
        }
    }

    /// Stores `value`; returns its key and generation. `None` when `u32::MAX - 1` slots are used.
    pub(crate) fn insert(&mut self, value: T) -> Option<(u32, u32)> {
        let (key, gen) = self.next_key();
        if key == NIL {
            return None;
        }
        if self.free_head != NIL {
            let slot = &mut self.slots[key as usize];
            if let Entry::Vacant { next_free } = slot.entry {
                self.free_head = next_free;
            }
            slot.entry = Entry::Occupied(value);
        } else {
            self.slots.push(Slot {
                gen,
                entry: Entry::Occupied(value),
            });
        }
        self.len += 1;
        Some((key, gen))
    }

    /// The value at `key`, whatever its generation.
    #[inline]
    pub(crate) fn get_mut(&mut self, key: usize) -> Option<&mut T> {
        match self.slots.get_mut(key) {
            Some(Slot {
                entry: Entry::Occupied(v),
                ..
            }) => Some(v),
            _ => None,
        }
    }

    /// The value at `key` if it still has generation `gen`.
    #[inline]
    pub(crate) fn get_gen_mut(&mut self, key: usize, gen: u32) -> Option<&mut T> {
        match self.slots.get_mut(key) {
            Some(Slot {
                gen: g,
                entry: Entry::Occupied(v),
            }) if *g == gen => Some(v),
            _ => None,
        }
    }

    /// Generation of the slot at `key` (occupied or not).
    #[inline]
    pub(crate) fn gen(&self, key: usize) -> u32 {
        self.slots.get(key).map_or(0, |s| s.gen)
    }

    /// Removes and returns the value at `key`; the slot's generation moves on.
    pub(crate) fn remove(&mut self, key: usize) -> Option<T> {
        let slot = self.slots.get_mut(key)?;
        if !matches!(slot.entry, Entry::Occupied(_)) {
            return None;
        }
        let old = std::mem::replace(
            &mut slot.entry,
            Entry::Vacant {
                next_free: self.free_head,
            },
        );
        slot.gen = slot.gen.wrapping_add(1);
        self.free_head = key as u32;
        self.len -= 1;
        match old {
            Entry::Occupied(v) => Some(v),
            _ => None,
        }
    }

    /// Takes the value at `key` out, leaving the slot reserved (same generation) until
    /// [`put_back`](Slots::put_back). Lookups do not see a taken value.
    #[inline]
    pub(crate) fn take(&mut self, key: usize) -> Option<T> {
        let slot = self.slots.get_mut(key)?;
        if !matches!(slot.entry, Entry::Occupied(_)) {
            return None;
        }
        match std::mem::replace(&mut slot.entry, Entry::Busy) {
            Entry::Occupied(v) => Some(v),
            _ => None,
        }
    }

    /// Puts a taken value back.
    #[inline]
    pub(crate) fn put_back(&mut self, key: usize, value: T) {
        if let Some(slot) = self.slots.get_mut(key) {
            debug_assert!(matches!(slot.entry, Entry::Busy));
            slot.entry = Entry::Occupied(value);
        }
    }

    /// Keys of every occupied slot.
    pub(crate) fn keys(&self) -> Vec<usize> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| matches!(s.entry, Entry::Occupied(_)))
            .map(|(i, _)| i)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuse_bumps_generation() {
        let mut s = Slots::new();
        let (a, ga) = s.insert("a").unwrap();
        let (b, _) = s.insert("b").unwrap();
        assert_ne!(a, b);
        assert_eq!(s.remove(a as usize), Some("a"));
        assert_eq!(s.remove(a as usize), None);
        let (c, gc) = s.insert("c").unwrap();
        assert_eq!(c, a);
        assert_ne!(gc, ga);
        assert!(s.get_gen_mut(a as usize, ga).is_none());
        assert_eq!(s.get_gen_mut(c as usize, gc), Some(&mut "c"));
        assert_eq!(s.len(), 2);
        assert_eq!(s.keys(), vec![0, 1]);
    }

    #[test]
    fn take_and_put_back() {
        let mut s = Slots::new();
        let (a, ga) = s.insert(1).unwrap();
        let v = s.take(a as usize).unwrap();
        assert!(s.get_mut(a as usize).is_none());
        assert!(s.take(a as usize).is_none());
        assert!(s.remove(a as usize).is_none());
        let (b, _) = s.insert(2).unwrap();
        assert_ne!(a, b, "a taken slot is not reused");
        s.put_back(a as usize, v);
        assert_eq!(s.get_gen_mut(a as usize, ga), Some(&mut 1));
    }
}
