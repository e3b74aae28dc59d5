//! Hash commands: HSET, HGET, HDEL, HGETALL, HLEN, HEXISTS.

use std::collections::HashMap;

use wireloop_middleware::codec::resp::{self, Command};
use wireloop_middleware::codec::Sink;

use crate::commands::wrong_args;
use crate::keyspace::Store;
use crate::value::{lookup, lookup_or_new, too_many, wrongtype, WrongType};

type Hash = HashMap<Box<[u8]>, Box<[u8]>>;

/// Runs `lname` if it is a hash command (its arity already checked); `false` if not.
pub fn exec(
    st: &mut Store,
    now: u64,
    lname: &[u8],
    cmd: &Command<'_>,
    out: &mut impl Sink,
) -> bool {
    let key = cmd.get(1).unwrap_or_default();
    let field = cmd.get(2).unwrap_or_default();
    match lname {
        b"hset" => {
            if !cmd.len().is_multiple_of(2) {
                wrong_args(out, "hset");
                return true;
            }
            let max = st.max_elements;
            let Ok(h) = lookup_or_new::<Hash>(st, key, now) else {
                wrongtype(out);
                return true;
            };
            let pairs = (cmd.len() - 2) / 2;
            if h.len().saturating_add(pairs) > max {
                let empty = h.is_empty();
                if empty {
                    st.remove(key);
                }
                too_many(out, max);
                return true;
            }
            let mut added = 0;
            for i in (2..cmd.len()).step_by(2) {
                let (f, v) = (
                    cmd.get(i).unwrap_or_default(),
                    cmd.get(i + 1).unwrap_or_default(),
                );
                match h.get_mut(f) {
                    Some(old) => *old = v.into(),
                    None => {
                        h.insert(f.into(), v.into());
                        added += 1;
                    }
                }
            }
            resp::integer(out, added);
        }
        b"hget" => match lookup::<Hash>(st, key, now) {
            Err(WrongType) => wrongtype(out),
            Ok(h) => match h.and_then(|h| h.get(field)) {
                Some(v) => resp::bulk(out, v),
                None => resp::null_bulk(out),
            },
        },
        b"hdel" => match lookup::<Hash>(st, key, now) {
            Err(WrongType) => wrongtype(out),
            Ok(None) => resp::integer(out, 0),
            Ok(Some(h)) => {
                let n = cmd
                    .iter()
                    .skip(2)
                    .filter(|f| h.remove(*f).is_some())
                    .count();
                if h.is_empty() {
                    st.remove(key);
                }
                resp::integer(out, n as i64);
            }
        },
        b"hgetall" => match lookup::<Hash>(st, key, now) {
            Err(WrongType) => wrongtype(out),
            Ok(None) => resp::array_header(out, 0),
            Ok(Some(h)) => {
                resp::array_header(&mut *out, h.len() * 2);
                for (f, v) in h.iter() {
                    resp::bulk(&mut *out, f);
                    resp::bulk(&mut *out, v);
                }
            }
        },
        b"hlen" => match lookup::<Hash>(st, key, now) {
            Err(WrongType) => wrongtype(out),
            Ok(h) => resp::integer(out, h.map_or(0, |h| h.len()) as i64),
        },
        b"hexists" => match lookup::<Hash>(st, key, now) {
            Err(WrongType) => wrongtype(out),
            Ok(h) => resp::integer(out, h.is_some_and(|h| h.contains_key(field)) as i64),
        },
        _ => return false,
    }
    true
}
