//! List commands: LPUSH, RPUSH, LPOP, RPOP, LRANGE, LLEN, LINDEX.

use std::collections::VecDeque;

use wireloop_middleware::codec::resp::{self, parse_int, Command};
use wireloop_middleware::codec::Sink;

use crate::keyspace::Store;
use crate::value::{
    count_arg, index_range, lookup, lookup_or_new, not_integer, start_stop, too_many, wrongtype,
    WrongType,
};

type List = VecDeque<Box<[u8]>>;

/// Runs `lname` if it is a list command (its arity already checked); `false` if not.
pub fn exec(
    st: &mut Store,
    now: u64,
    lname: &[u8],
    cmd: &Command<'_>,
    out: &mut impl Sink,
) -> bool {
    let key = cmd.get(1).unwrap_or_default();
    match lname {
        b"lpush" | b"rpush" => push(st, now, key, cmd, lname == b"lpush", out),
        b"lpop" | b"rpop" => pop(st, now, key, cmd, lname == b"lpop", out),
        b"lrange" => {
            let Ok((start, stop)) = start_stop(cmd, out) else {
                return true;
            };
            match lookup::<List>(st, key, now) {
                Err(WrongType) => wrongtype(out),
                Ok(None) => resp::array_header(out, 0),
                Ok(Some(l)) => match index_range(start, stop, l.len()) {
                    None => resp::array_header(out, 0),
                    Some((a, b)) => {
                        resp::array_header(&mut *out, b - a + 1);
                        for v in l.range(a..=b) {
                            resp::bulk(&mut *out, v);
                        }
                    }
                },
            }
        }
        b"llen" => match lookup::<List>(st, key, now) {
            Err(WrongType) => wrongtype(out),
            Ok(l) => resp::integer(out, l.map_or(0, |l| l.len()) as i64),
        },
        b"lindex" => {
            let Some(i) = cmd.get(2).and_then(parse_int) else {
                not_integer(out);
                return true;
            };
            match lookup::<List>(st, key, now) {
                Err(WrongType) => wrongtype(out),
                Ok(l) => {
                    let l = l.map(|l| &*l);
                    let len = l.map_or(0, |l| l.len()) as i64;
                    let i = if i < 0 { i + len } else { i };
                    match l.and_then(|l| l.get(usize::try_from(i).ok()?)) {
                        Some(v) => resp::bulk(out, v),
                        None => resp::null_bulk(out),
                    }
                }
            }
        }
        _ => return false,
    }
    true
}

fn push(st: &mut Store, now: u64, key: &[u8], cmd: &Command<'_>, front: bool, out: &mut impl Sink) {
    let max = st.max_elements;
    let values = cmd.len() - 2;
    let Ok(l) = lookup_or_new::<List>(st, key, now) else {
        return wrongtype(out);
    };
    if l.len().saturating_add(values) > max {
        let empty = l.is_empty();
        if empty {
            st.remove(key);
        }
        return too_many(out, max);
    }
    for v in cmd.iter().skip(2) {
        if front {
            l.push_front(v.into());
        } else {
            l.push_back(v.into());
        }
    }
    resp::integer(out, l.len() as i64);
}

fn pop(st: &mut Store, now: u64, key: &[u8], cmd: &Command<'_>, front: bool, out: &mut impl Sink) {
    let Ok(count) = count_arg(cmd.get(2), out) else {
        return;
    };
    let l = match lookup::<List>(st, key, now) {
        Err(WrongType) => return wrongtype(out),
        Ok(None) if count.is_some() => return resp::null_array(out),
        Ok(None) => return resp::null_bulk(out),
        Ok(Some(l)) => l,
    };
    let take = |l: &mut List| if front { l.pop_front() } else { l.pop_back() };
    match count {
        None => match take(l) {
            Some(v) => resp::bulk(&mut *out, &v),
            None => resp::null_bulk(&mut *out),
        },
        Some(n) => {
            let n = (n as usize).min(l.len());
            resp::array_header(&mut *out, n);
            for _ in 0..n {
                if let Some(v) = take(l) {
                    resp::bulk(&mut *out, &v);
                }
            }
        }
    }
    if l.is_empty() {
        st.remove(key);
    }
}
