//! What a key holds: a string or one of the collection types, with Redis's names for
//! them and its error for a command on the wrong one.

use std::collections::{HashMap, VecDeque};

use wireloop_middleware::codec::resp::{self, Command};
use wireloop_middleware::codec::Sink;

use crate::keyspace::Store;
use crate::sets::MemberSet;
use crate::zsets::SortedSet;

/// A key's value. Collections never stay empty: the command that empties one deletes
/// its key, as Redis does.
pub enum Value {
    /// A string (also what INCR counts in).
    Str(Vec<u8>),
    /// A list: LPUSH/RPUSH at either end, LRANGE by index.
    List(VecDeque<Box<[u8]>>),
    /// A set of distinct members.
    Set(MemberSet),
    /// Fields and their values.
    Hash(HashMap<Box<[u8]>, Box<[u8]>>),
    /// Members ordered by score.
    ZSet(SortedSet),
}

impl Value {
    /// The name TYPE answers.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::List(_) => "list",
            Value::Set(_) => "set",
            Value::Hash(_) => "hash",
            Value::ZSet(_) => "zset",
        }
    }
}

/// The key exists and holds another type than the command works on.
pub struct WrongType;

/// Redis's reply to a command on a key of another type.
pub fn wrongtype(out: &mut impl Sink) {
    resp::error(
        out,
        "WRONGTYPE Operation against a key holding the wrong kind of value",
    );
}

/// Redis's reply when a count argument is negative.
pub fn out_of_range(out: &mut impl Sink) {
    resp::error(out, "ERR value is out of range, must be positive");
}

/// Redis's reply when an argument is not an integer.
pub fn not_integer(out: &mut impl Sink) {
    resp::error(out, "ERR value is not an integer or out of range");
}

/// An optional count argument (LPOP, SPOP, ZPOPMIN): `Ok(None)` when absent; `Err(())`
/// after Redis's reply when it is negative or not a number.
pub fn count_arg(arg: Option<&[u8]>, out: &mut impl Sink) -> Result<Option<u64>, ()> {
    match arg.map(resp::parse_int) {
        None => Ok(None),
        Some(Some(n)) if n >= 0 => Ok(Some(n as u64)),
        Some(_) => {
            out_of_range(out);
            Err(())
        }
    }
}

/// The `start stop` range of LRANGE and ZRANGE (arguments 2 and 3), resolved against a
/// collection of `len` items once it is found: `Err(())` after Redis's reply when either is
/// not a number.
pub fn start_stop(cmd: &Command<'_>, out: &mut impl Sink) -> Result<(i64, i64), ()> {
    match (
        cmd.get(2).and_then(resp::parse_int),
        cmd.get(3).and_then(resp::parse_int),
    ) {
        (Some(start), Some(stop)) => Ok((start, stop)),
        _ => {
            not_integer(out);
            Err(())
        }
    }
}

/// The reply when a collection would grow past `--max-elements`.
pub fn too_many(out: &mut impl Sink, max: usize) {
    resp::error(
        out,
        &format!("ERR the collection would hold more than {max} elements (--max-elements)"),
    );
}

/// Normalizes a LRANGE/ZRANGE index pair against `len` as Redis does (negative counts
/// from the end); `None` for an empty range.
pub fn index_range(start: i64, stop: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let start = if start < 0 {
        (start + len).max(0)
    } else {
        start
    };
    let stop = if stop < 0 {
        stop + len
    } else {
        stop.min(len - 1)
    };
    if start > stop || start >= len {
        return None;
    }
    Some((start as usize, stop as usize))
}

/// A collection type a key can hold: how to find it in a [`Value`] and how to make an
/// empty one.
pub trait Kind: Sized {
    fn pick(v: &mut Value) -> Option<&mut Self>;
    fn empty() -> Value;
}

macro_rules! kind {
    ($t:ty, $variant:ident, $empty:expr) => {
        impl Kind for $t {
            fn pick(v: &mut Value) -> Option<&mut $t> {
                match v {
                    Value::$variant(x) => Some(x),
                    _ => None,
                }
            }
            fn empty() -> Value {
                Value::$variant($empty)
            }
        }
    };
}

kind!(VecDeque<Box<[u8]>>, List, VecDeque::new());
kind!(MemberSet, Set, MemberSet::default());
kind!(HashMap<Box<[u8]>, Box<[u8]>>, Hash, HashMap::new());
kind!(SortedSet, ZSet, SortedSet::default());

/// The `T` under `key`: `Ok(None)` when there is no key, `Err(WrongType)` when it holds
/// another type.
pub fn lookup<'a, T: Kind>(
    st: &'a mut Store,
    key: &[u8],
    now: u64,
) -> Result<Option<&'a mut T>, WrongType> {
    match st.live(key, now) {
        None => Ok(None),
        Some(e) => T::pick(&mut e.value).map(Some).ok_or(WrongType),
    }
}

/// Like [`lookup`], making an empty `T` when there is no key.
pub fn lookup_or_new<'a, T: Kind>(
    st: &'a mut Store,
    key: &[u8],
    now: u64,
) -> Result<&'a mut T, WrongType> {
    st.get_or_insert(key, now, T::empty)
        .and_then(T::pick)
        .ok_or(WrongType)
}
