//! Sorted sets: [`SortedSet`] (a score per member, and the members ordered by score then
//! by bytes) and the commands ZADD, ZINCRBY, ZPOPMIN, ZPOPMAX, ZRANGE (by index), ZCARD,
//! ZSCORE, ZREM. Scores print as Redis 7.0 prints them (`%.17g`).

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};

use wireloop_middleware::codec::resp::{self, Command};
use wireloop_middleware::codec::Sink;

use crate::keyspace::Store;
use crate::value::{
    count_arg, index_range, lookup, lookup_or_new, start_stop, too_many, wrongtype, WrongType,
};

/// A score, ordered totally (NaN never gets in).
#[derive(Clone, Copy, PartialEq)]
struct Score(f64);

impl Eq for Score {}

impl PartialOrd for Score {
    fn partial_cmp(&self, o: &Score) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

impl Ord for Score {
    fn cmp(&self, o: &Score) -> Ordering {
        self.0.total_cmp(&o.0)
    }
}

/// Members with scores.
#[derive(Default)]
pub struct SortedSet {
    scores: HashMap<Box<[u8]>, f64>,
    order: BTreeSet<(Score, Box<[u8]>)>,
}

impl SortedSet {
    pub fn len(&self) -> usize {
        self.scores.len()
    }

    pub fn is_empty(&self) -> bool {
        self.scores.is_empty()
    }

    pub fn score(&self, m: &[u8]) -> Option<f64> {
        self.scores.get(m).copied()
    }

    /// Sets `m`'s score.
    pub fn set(&mut self, m: &[u8], score: f64) {
        if let Some(old) = self.scores.get_mut(m) {
            if *old == score {
                return;
            }
            let key: Box<[u8]> = m.into();
            self.order.remove(&(Score(*old), key.clone()));
            *old = score;
            self.order.insert((Score(score), key));
        } else {
            self.scores.insert(m.into(), score);
            self.order.insert((Score(score), m.into()));
        }
    }

    pub fn remove(&mut self, m: &[u8]) -> bool {
        match self.scores.remove(m) {
            Some(s) => {
                self.order.remove(&(Score(s), m.into()));
                true
            }
            None => false,
        }
    }

    /// Removes and returns the lowest (or highest) member and its score.
    pub fn pop(&mut self, max: bool) -> Option<(Box<[u8]>, f64)> {
        let (Score(s), m) = if max {
            self.order.pop_last()?
        } else {
            self.order.pop_first()?
        };
        self.scores.remove(&m);
        Some((m, s))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&[u8], f64)> {
        self.order.iter().map(|(s, m)| (&m[..], s.0))
    }
}

/// A score as Redis 7.0 prints it: C's `%.17g` (`inf`, `-inf`).
pub fn fmt_score(v: f64) -> String {
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    // 17 significant digits: d.dddddddddddddddde±x
    let sci = format!("{v:.16e}");
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let neg = mant.starts_with('-');
    let digits: String = mant.chars().filter(|c| c.is_ascii_digit()).collect();
    let digits = digits.trim_end_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    let mut s = String::new();
    if neg {
        s.push('-');
    }
    if !(-4..17).contains(&exp) {
        s.push_str(&digits[..1]);
        if digits.len() > 1 {
            s.push('.');
            s.push_str(&digits[1..]);
        }
        s.push_str(&format!(
            "e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        ));
    } else if exp < 0 {
        s.push_str("0.");
        s.push_str(&"0".repeat((-exp - 1) as usize));
        s.push_str(digits);
    } else {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            s.push_str(digits);
            s.push_str(&"0".repeat(int_len - digits.len()));
        } else {
            s.push_str(&digits[..int_len]);
            s.push('.');
            s.push_str(&digits[int_len..]);
        }
    }
    s
}

/// A score argument: a float as Redis reads one (`inf`, `-inf`, exponents), never NaN.
fn parse_score(a: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(a).ok()?;
    if s.is_empty() || s.starts_with(|c: char| c.is_whitespace()) {
        return None;
    }
    let v: f64 = match s.to_ascii_lowercase().as_str() {
        "inf" | "+inf" | "infinity" | "+infinity" => f64::INFINITY,
        "-inf" | "-infinity" => f64::NEG_INFINITY,
        l if l.contains("inf") || l.contains("nan") => return None,
        _ => s.parse().ok()?,
    };
    Some(v)
}

fn not_float(out: &mut impl Sink) {
    resp::error(out, "ERR value is not a valid float");
}

/// Runs `lname` if it is a sorted-set command (its arity already checked); `false` if
/// not.
pub fn exec(
    st: &mut Store,
    now: u64,
    lname: &[u8],
    cmd: &Command<'_>,
    out: &mut impl Sink,
) -> bool {
    let key = cmd.get(1).unwrap_or_default();
    match lname {
        b"zadd" => zadd(st, now, key, cmd, false, out),
        b"zincrby" => zadd(st, now, key, cmd, true, out),
        b"zpopmin" | b"zpopmax" => {
            let Ok(count) = count_arg(cmd.get(2), out) else {
                return true;
            };
            let count = count.unwrap_or(1);
            match lookup::<SortedSet>(st, key, now) {
                Err(WrongType) => wrongtype(out),
                Ok(None) => resp::array_header(out, 0),
                Ok(Some(z)) => {
                    let n = (count as usize).min(z.len());
                    resp::array_header(&mut *out, 2 * n);
                    for _ in 0..n {
                        if let Some((m, s)) = z.pop(lname == b"zpopmax") {
                            resp::bulk(&mut *out, &m);
                            resp::bulk(&mut *out, fmt_score(s).as_bytes());
                        }
                    }
                    if z.is_empty() {
                        st.remove(key);
                    }
                }
            }
        }
        b"zrange" => {
            let with_scores = match cmd.get(4) {
                None => false,
                Some(o) if o.eq_ignore_ascii_case(b"withscores") && cmd.len() == 5 => true,
                Some(_) => {
                    resp::error(
                        out,
                        "ERR this server's ZRANGE takes start stop [WITHSCORES] only (no \
                         BYSCORE, BYLEX, REV or LIMIT)",
                    );
                    return true;
                }
            };
            let Ok((start, stop)) = start_stop(cmd, out) else {
                return true;
            };
            match lookup::<SortedSet>(st, key, now) {
                Err(WrongType) => wrongtype(out),
                Ok(None) => resp::array_header(out, 0),
                Ok(Some(z)) => match index_range(start, stop, z.len()) {
                    None => resp::array_header(out, 0),
                    Some((a, b)) => {
                        let per = if with_scores { 2 } else { 1 };
                        resp::array_header(&mut *out, per * (b - a + 1));
                        for (m, s) in z.iter().skip(a).take(b - a + 1) {
                            resp::bulk(&mut *out, m);
                            if with_scores {
                                resp::bulk(&mut *out, fmt_score(s).as_bytes());
                            }
                        }
                    }
                },
            }
        }
        b"zcard" => match lookup::<SortedSet>(st, key, now) {
            Err(WrongType) => wrongtype(out),
            Ok(z) => resp::integer(out, z.map_or(0, |z| z.len()) as i64),
        },
        b"zscore" => match lookup::<SortedSet>(st, key, now) {
            Err(WrongType) => wrongtype(out),
            Ok(z) => match z.and_then(|z| z.score(cmd.get(2).unwrap_or_default())) {
                Some(s) => resp::bulk(out, fmt_score(s).as_bytes()),
                None => resp::null_bulk(out),
            },
        },
        b"zrem" => match lookup::<SortedSet>(st, key, now) {
            Err(WrongType) => wrongtype(out),
            Ok(None) => resp::integer(out, 0),
            Ok(Some(z)) => {
                let n = cmd.iter().skip(2).filter(|m| z.remove(m)).count();
                if z.is_empty() {
                    st.remove(key);
                }
                resp::integer(out, n as i64);
            }
        },
        _ => return false,
    }
    true
}

/// ZADD key [NX|XX] [GT|LT] [CH] [INCR] score member [score member ...], and ZINCRBY key
/// increment member (ZADD INCR without flags).
fn zadd(
    st: &mut Store,
    now: u64,
    key: &[u8],
    cmd: &Command<'_>,
    zincrby: bool,
    out: &mut impl Sink,
) {
    let (mut nx, mut xx, mut gt, mut lt, mut ch, mut incr) =
        (false, false, false, false, false, zincrby);
    let mut i = 2;
    while !zincrby && i < cmd.len() {
        let o = cmd.get(i).unwrap_or_default().to_ascii_lowercase();
        match &o[..] {
            b"nx" => nx = true,
            b"xx" => xx = true,
            b"gt" => gt = true,
            b"lt" => lt = true,
            b"ch" => ch = true,
            b"incr" => incr = true,
            _ => break,
        }
        i += 1;
    }
    let rest = cmd.len() - i;
    if rest == 0 || !rest.is_multiple_of(2) {
        return resp::error(out, "ERR syntax error");
    }
    if nx && xx {
        return resp::error(
            out,
            "ERR XX and NX options at the same time are not compatible",
        );
    }
    if (nx && (gt || lt)) || (gt && lt) {
        return resp::error(
            out,
            "ERR GT, LT, and/or NX options at the same time are not compatible",
        );
    }
    if incr && rest != 2 {
        return resp::error(
            out,
            "ERR INCR option supports a single increment-element pair",
        );
    }
    let mut pairs = Vec::with_capacity(rest / 2);
    for j in (i..cmd.len()).step_by(2) {
        let Some(s) = cmd.get(j).and_then(parse_score) else {
            return not_float(out);
        };
        pairs.push((s, cmd.get(j + 1).unwrap_or_default()));
    }
    let max = st.max_elements;
    let Ok(z) = lookup_or_new::<SortedSet>(st, key, now) else {
        return wrongtype(out);
    };
    let (mut added, mut changed) = (0i64, 0i64);
    let mut incr_result = None;
    let mut full = false;
    for (score, m) in pairs {
        let old = z.score(m);
        if (nx && old.is_some()) || (xx && old.is_none()) {
            continue;
        }
        let new = match (incr, old) {
            (true, Some(o)) => o + score,
            _ => score,
        };
        if new.is_nan() {
            let empty = z.is_empty();
            if empty {
                st.remove(key);
            }
            return resp::error(out, "ERR resulting score is not a number (NaN)");
        }
        if let Some(o) = old {
            if (gt && new <= o) || (lt && new >= o) {
                continue;
            }
        } else if z.len() >= max {
            full = true;
            break;
        }
        incr_result = Some(new);
        match old {
            None => added += 1,
            Some(o) if o != new => changed += 1,
            Some(_) => {}
        }
        z.set(m, new);
    }
    if z.is_empty() {
        st.remove(key);
    }
    if full {
        return too_many(out, max);
    }
    if incr {
        match incr_result {
            Some(s) => resp::bulk(out, fmt_score(s).as_bytes()),
            None => resp::null_bulk(out),
        }
    } else {
        resp::integer(out, if ch { added + changed } else { added });
    }
}
