//! Sets: [`MemberSet`] (members in a vector with an index, so SPOP picks a uniformly
//! random member in O(1)) and the commands SADD, SREM, SPOP, SMEMBERS, SISMEMBER, SCARD.

use std::collections::HashMap;

use wireloop_middleware::codec::resp::{self, Command};
use wireloop_middleware::codec::Sink;

use crate::keyspace::Store;
use crate::value::{count_arg, lookup, lookup_or_new, too_many, wrongtype, WrongType};

/// A set of distinct members.
#[derive(Default)]
pub struct MemberSet {
    members: Vec<Box<[u8]>>,
    index: HashMap<Box<[u8]>, usize>,
}

impl MemberSet {
    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn contains(&self, m: &[u8]) -> bool {
        self.index.contains_key(m)
    }

    /// Adds `m`; whether it was new.
    pub fn insert(&mut self, m: &[u8]) -> bool {
        if self.index.contains_key(m) {
            return false;
        }
        self.index.insert(m.into(), self.members.len());
        self.members.push(m.into());
        true
    }

    /// Removes `m`; whether it was there.
    pub fn remove(&mut self, m: &[u8]) -> bool {
        match self.index.remove(m) {
            Some(i) => {
                self.take_at(i);
                true
            }
            None => false,
        }
    }

    /// Removes and returns the member at `i` (the last one moves into its place).
    fn take_at(&mut self, i: usize) -> Box<[u8]> {
        let m = self.members.swap_remove(i);
        self.index.remove(&m);
        if let Some(moved) = self.members.get(i) {
            if let Some(slot) = self.index.get_mut(moved) {
                *slot = i;
            }
        }
        m
    }

    /// Removes and returns a member chosen by `r` (uniform over the members).
    pub fn pop_random(&mut self, r: u64) -> Option<Box<[u8]>> {
        if self.members.is_empty() {
            return None;
        }
        let i = (r % self.members.len() as u64) as usize;
        Some(self.take_at(i))
    }

    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        self.members.iter().map(|m| &m[..])
    }
}

/// Runs `lname` if it is a set command (its arity already checked); `false` if not.
pub fn exec(
    st: &mut Store,
    now: u64,
    lname: &[u8],
    cmd: &Command<'_>,
    out: &mut impl Sink,
) -> bool {
    let key = cmd.get(1).unwrap_or_default();
    match lname {
        b"sadd" => {
            let max = st.max_elements;
            let Ok(s) = lookup_or_new::<MemberSet>(st, key, now) else {
                wrongtype(out);
                return true;
            };
            let mut added = 0;
            for m in cmd.iter().skip(2) {
                if s.len() >= max && !s.contains(m) {
                    let empty = s.is_empty();
                    if empty {
                        st.remove(key);
                    }
                    too_many(out, max);
                    return true;
                }
                added += s.insert(m) as i64;
            }
            resp::integer(out, added);
        }
        b"srem" => match lookup::<MemberSet>(st, key, now) {
            Err(WrongType) => wrongtype(out),
            Ok(None) => resp::integer(out, 0),
            Ok(Some(s)) => {
                let n = cmd.iter().skip(2).filter(|m| s.remove(m)).count();
                if s.is_empty() {
                    st.remove(key);
                }
                resp::integer(out, n as i64);
            }
        },
        b"spop" => spop(st, now, key, cmd, out),
        b"smembers" => match lookup::<MemberSet>(st, key, now) {
            Err(WrongType) => wrongtype(out),
            Ok(None) => resp::array_header(out, 0),
            Ok(Some(s)) => {
                resp::array_header(&mut *out, s.len());
                for m in s.iter() {
                    resp::bulk(&mut *out, m);
                }
            }
        },
        b"sismember" => match lookup::<MemberSet>(st, key, now) {
            Err(WrongType) => wrongtype(out),
            Ok(s) => {
                let m = cmd.get(2).unwrap_or_default();
                resp::integer(out, s.is_some_and(|s| s.contains(m)) as i64);
            }
        },
        b"scard" => match lookup::<MemberSet>(st, key, now) {
            Err(WrongType) => wrongtype(out),
            Ok(s) => resp::integer(out, s.map_or(0, |s| s.len()) as i64),
        },
        _ => return false,
    }
    true
}

/// SPOP key [count]: random members, removed.
fn spop(st: &mut Store, now: u64, key: &[u8], cmd: &Command<'_>, out: &mut impl Sink) {
    let Ok(count) = count_arg(cmd.get(2), out) else {
        return;
    };
    let mut seed = st.random();
    let s = match lookup::<MemberSet>(st, key, now) {
        Err(WrongType) => return wrongtype(out),
        Ok(None) if count.is_some() => return resp::array_header(out, 0),
        Ok(None) => return resp::null_bulk(out),
        Ok(Some(s)) => s,
    };
    match count {
        None => match s.pop_random(seed) {
            Some(m) => resp::bulk(&mut *out, &m),
            None => resp::null_bulk(&mut *out),
        },
        Some(n) => {
            let n = (n as usize).min(s.len());
            resp::array_header(&mut *out, n);
            for _ in 0..n {
                // A splitmix64 step per member.
                seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
                let mut z = seed;
                z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
                if let Some(m) = s.pop_random(z ^ (z >> 31)) {
                    resp::bulk(&mut *out, &m);
                }
            }
        }
    }
    if s.is_empty() {
        st.remove(key);
    }
}
