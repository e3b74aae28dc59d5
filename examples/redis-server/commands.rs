//! The keyspace commands: each one parsed, checked and answered in RESP.

use std::io::Write;

use wireloop_middleware::codec::resp::{self, parse_int, Command};
use wireloop_middleware::codec::Sink;

use crate::glob::glob;
use crate::keyspace::{Entry, Store};
use crate::value::{not_integer, wrongtype, Value};
use crate::{hashes, lists, sets, zsets};

/// Every command this server knows, with its arity as Redis declares it: `n` is exactly
/// `n` words (the name included), `-n` at least `n`. `COMMAND COUNT` counts them.
const COMMANDS: &[(&str, i32)] = &[
    ("ping", -1),
    ("echo", 2),
    ("set", -3),
    ("get", 2),
    ("mget", -2),
    ("mset", -3),
    ("del", -2),
    ("exists", -2),
    ("incr", 2),
    ("decr", 2),
    ("incrby", 3),
    ("decrby", 3),
    ("expire", -3),
    ("pexpire", -3),
    ("ttl", 2),
    ("pttl", 2),
    ("persist", 2),
    ("keys", 2),
    ("dbsize", 1),
    ("flushall", -1),
    ("flushdb", -1),
    ("select", 2),
    ("config", -2),
    ("command", -1),
    ("info", -1),
    ("quit", -1),
    ("reset", 1),
    ("publish", 3),
    ("subscribe", -2),
    ("unsubscribe", -1),
    ("psubscribe", -2),
    ("punsubscribe", -1),
    ("type", 2),
    ("lpush", -3),
    ("rpush", -3),
    ("lpop", -2),
    ("rpop", -2),
    ("lrange", 4),
    ("llen", 2),
    ("lindex", 3),
    ("sadd", -3),
    ("srem", -3),
    ("spop", -2),
    ("smembers", 2),
    ("sismember", 3),
    ("scard", 2),
    ("hset", -4),
    ("hget", 3),
    ("hdel", -3),
    ("hgetall", 2),
    ("hlen", 2),
    ("hexists", 3),
    ("zadd", -4),
    ("zincrby", 4),
    ("zpopmin", -2),
    ("zpopmax", -2),
    ("zrange", -4),
    ("zcard", 2),
    ("zscore", 3),
    ("zrem", -3),
];

/// The commands this server implements, upper-case, for `--help`.
pub fn command_names() -> Vec<String> {
    COMMANDS
        .iter()
        .map(|(n, _)| n.to_ascii_uppercase())
        .collect()
}

/// The subcommands of CONFIG and COMMAND this server knows, with their arity.
const SUBCOMMANDS: &[(&str, &str, i32)] = &[
    ("config", "get", -3),
    ("config", "resetstat", 2),
    ("command", "count", 2),
    ("command", "docs", -2),
    ("command", "info", -2),
];

/// What subscribed mode (RESP2) allows besides the pub/sub commands.
const SUBSCRIBED_MODE: &[&str] = &[
    "ping",
    "quit",
    "reset",
    "subscribe",
    "unsubscribe",
    "psubscribe",
    "punsubscribe",
];

fn arity_fits(arity: i32, argc: usize) -> bool {
    if arity >= 0 {
        argc == arity as usize
    } else {
        argc >= arity.unsigned_abs() as usize
    }
}

/// In subscribed mode: Redis 7's error for a command that is not allowed there, or `None`
/// when the command may run — or must fail otherwise first, as in Redis: an unknown
/// command or subcommand, or a wrong number of arguments. `lname` is the lower-cased name.
pub fn refused_when_subscribed(lname: &[u8], cmd: &Command<'_>) -> Option<String> {
    let argc = cmd.len();
    let &(name, arity) = COMMANDS.iter().find(|(n, _)| n.as_bytes() == lname)?;
    if !arity_fits(arity, argc) || SUBSCRIBED_MODE.contains(&name) {
        return None;
    }
    let mut full = name.to_string();
    if let Some(sub) = cmd.get(1).filter(|_| name == "config" || name == "command") {
        let &(_, sub, arity) = SUBCOMMANDS
            .iter()
            .find(|(c, s, _)| *c == name && s.as_bytes().eq_ignore_ascii_case(sub))?;
        if !arity_fits(arity, argc) {
            return None;
        }
        full.push('|');
        full.push_str(sub);
    }
    Some(format!(
        "ERR Can't execute '{full}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / \
         RESET are allowed in this context"
    ))
}

/// `CONFIG GET` answers, for redis-benchmark and redis-cli.
const CONFIG: &[(&str, &str)] = &[
    ("save", ""),
    ("appendonly", "no"),
    ("databases", "1"),
    ("maxmemory", "0"),
];

/// What to do after a command.
#[derive(PartialEq, Eq)]
pub enum Next {
    Continue,
    Quit,
}

/// Redis's error for a wrong number of arguments.
pub fn wrong_args(out: &mut impl Sink, name: &str) {
    let mut m = String::with_capacity(48);
    m.push_str("ERR wrong number of arguments for '");
    m.push_str(name);
    m.push_str("' command");
    resp::error(out, &m);
}

fn syntax_error(out: &mut impl Sink) {
    resp::error(out, "ERR syntax error");
}

fn unknown(out: &mut impl Sink, cmd: &Command<'_>) {
    // Redis 7's text, each part cut at 128 bytes.
    let mut m = String::from("ERR unknown command '");
    let name = cmd.name().unwrap_or_default();
    m.push_str(&String::from_utf8_lossy(&name[..name.len().min(128)]));
    m.push_str("', with args beginning with: ");
    let mut room = 128usize;
    for a in cmd.iter().skip(1) {
        let a = &a[..a.len().min(room)];
        m.push('\'');
        m.push_str(&String::from_utf8_lossy(a));
        m.push_str("' ");
        room -= a.len();
        if room == 0 {
            break;
        }
    }
    resp::error(out, &m);
}

fn int_arg(a: Option<&[u8]>) -> Option<i64> {
    a.and_then(parse_int)
}

/// The deadline `amount` seconds (or ms) from `now`: `Ok(None)` if it is not in the
/// future, `Err` on overflow.
fn deadline(now: u64, amount: i64, unit_ms: i64) -> Result<Option<u64>, ()> {
    let ms = amount.checked_mul(unit_ms).ok_or(())?;
    let at = (now as i128) + ms as i128;
    if at <= now as i128 {
        return Ok(None);
    }
    u64::try_from(at).map(Some).map_err(|_| ())
}

/// Lower-cases the command name into `buf`; `None` if it is too long to be one of ours.
pub fn lower<'b>(name: &[u8], buf: &'b mut [u8; 16]) -> Option<&'b [u8]> {
    let b = buf.get_mut(..name.len())?;
    b.copy_from_slice(name);
    b.make_ascii_lowercase();
    Some(b)
}

/// Runs one command against the store, writing its reply into `out`.
pub fn exec(st: &mut Store, now: u64, cmd: &Command<'_>, out: &mut impl Sink) -> Next {
    let mut buf = [0u8; 16];
    let name = cmd.name().unwrap_or_default();
    let Some(lname) = lower(name, &mut buf) else {
        unknown(out, cmd);
        return Next::Continue;
    };
    let argc = cmd.len();
    let arg = |i: usize| cmd.get(i).unwrap_or_default();
    macro_rules! arity {
        ($ok:expr, $name:expr) => {
            if !$ok {
                wrong_args(out, $name);
                return Next::Continue;
            }
        };
    }
    match lname {
        b"get" => {
            arity!(argc == 2, "get");
            let key = arg(1);
            match st.map.get(key) {
                Some(e) if e.expired(now) => {
                    st.remove(key);
                    resp::null_bulk(out);
                }
                Some(Entry {
                    value: Value::Str(v),
                    ..
                }) => resp::bulk(out, v),
                Some(_) => wrongtype(out),
                None => resp::null_bulk(out),
            }
        }
        b"set" => {
            arity!(argc >= 3, "set");
            let (mut nx, mut xx, mut keep_ttl) = (false, false, false);
            let mut expires: Option<(i64, i64)> = None; // (amount, ms per unit)
            let mut i = 3;
            while i < argc {
                let o = arg(i);
                if o.eq_ignore_ascii_case(b"nx") && !xx {
                    nx = true;
                } else if o.eq_ignore_ascii_case(b"xx") && !nx {
                    xx = true;
                } else if o.eq_ignore_ascii_case(b"keepttl") && expires.is_none() {
                    keep_ttl = true;
                } else if (o.eq_ignore_ascii_case(b"ex") || o.eq_ignore_ascii_case(b"px"))
                    && expires.is_none()
                    && !keep_ttl
                    && i + 1 < argc
                {
                    let unit = if o.eq_ignore_ascii_case(b"ex") {
                        1000
                    } else {
                        1
                    };
                    let Some(n) = int_arg(cmd.get(i + 1)) else {
                        not_integer(out);
                        return Next::Continue;
                    };
                    expires = Some((n, unit));
                    i += 1;
                } else {
                    syntax_error(out);
                    return Next::Continue;
                }
                i += 1;
            }
            let at = match expires {
                None => None,
                Some((n, unit)) => match deadline(now, n, unit) {
                    Ok(Some(t)) if n > 0 => Some(t),
                    _ => {
                        resp::error(out, "ERR invalid expire time in 'set' command");
                        return Next::Continue;
                    }
                },
            };
            if st.set(arg(1), arg(2), at, keep_ttl, nx, xx, now) {
                resp::ok(out);
            } else {
                resp::null_bulk(out);
            }
        }
        b"mget" => {
            arity!(argc >= 2, "mget");
            resp::array_header(&mut *out, argc - 1);
            for key in cmd.iter().skip(1) {
                match st.live(key, now) {
                    Some(Entry {
                        value: Value::Str(v),
                        ..
                    }) => resp::bulk(&mut *out, v),
                    _ => resp::null_bulk(&mut *out),
                }
            }
        }
        b"mset" => {
            arity!(argc >= 3 && argc % 2 == 1, "mset");
            for i in (1..argc).step_by(2) {
                st.set(arg(i), arg(i + 1), None, false, false, false, now);
            }
            resp::ok(out);
        }
        b"del" => {
            arity!(argc >= 2, "del");
            let n = cmd.iter().skip(1).filter(|k| st.remove(k)).count();
            resp::integer(out, n as i64);
        }
        b"exists" => {
            arity!(argc >= 2, "exists");
            let n = cmd
                .iter()
                .skip(1)
                .filter(|k| st.live(k, now).is_some())
                .count();
            resp::integer(out, n as i64);
        }
        b"incr" | b"decr" | b"incrby" | b"decrby" => {
            let by_arg = lname.len() > 4;
            let cname = std::str::from_utf8(lname).unwrap_or_default();
            arity!(argc == if by_arg { 3 } else { 2 }, cname);
            let delta = if by_arg {
                match int_arg(cmd.get(2)) {
                    Some(d) => d,
                    None => {
                        not_integer(out);
                        return Next::Continue;
                    }
                }
            } else {
                1
            };
            let delta = if lname[0] == b'd' {
                match delta.checked_neg() {
                    Some(d) => d,
                    None => {
                        resp::error(out, "ERR decrement would overflow");
                        return Next::Continue;
                    }
                }
            } else {
                delta
            };
            incr(st, arg(1), delta, now, out);
        }
        b"expire" | b"pexpire" => {
            let cname = std::str::from_utf8(lname).unwrap_or_default();
            arity!(argc >= 3, cname);
            expire(st, cmd, lname == b"pexpire", now, out);
        }
        b"ttl" | b"pttl" => {
            arity!(argc == 2, if lname == b"ttl" { "ttl" } else { "pttl" });
            let n = match st.live(arg(1), now) {
                None => -2,
                Some(Entry { expires: None, .. }) => -1,
                Some(Entry {
                    expires: Some(t), ..
                }) => {
                    let ms = t.saturating_sub(now) as i64;
                    if lname == b"ttl" {
                        (ms + 500) / 1000
                    } else {
                        ms
                    }
                }
            };
            resp::integer(out, n);
        }
        b"persist" => {
            arity!(argc == 2, "persist");
            let had = st.live(arg(1), now).is_some_and(|e| e.expires.is_some());
            if had {
                st.set_deadline(arg(1), None);
            }
            resp::integer(out, had as i64);
        }
        b"keys" => {
            arity!(argc == 2, "keys");
            let pat = arg(1);
            let keys: Vec<&[u8]> = st
                .map
                .iter()
                .filter(|(k, e)| !e.expired(now) && glob(pat, k))
                .map(|(k, _)| &k[..])
                .collect();
            resp::array_header(&mut *out, keys.len());
            for k in keys {
                resp::bulk(&mut *out, k);
            }
        }
        b"dbsize" => {
            arity!(argc == 1, "dbsize");
            resp::integer(out, st.map.len() as i64);
        }
        b"flushall" | b"flushdb" => {
            let cname = std::str::from_utf8(lname).unwrap_or_default();
            arity!(argc <= 2, cname);
            match cmd.get(1) {
                None => {}
                Some(m) if m.eq_ignore_ascii_case(b"sync") || m.eq_ignore_ascii_case(b"async") => {}
                Some(_) => {
                    syntax_error(out);
                    return Next::Continue;
                }
            }
            st.clear();
            resp::ok(out);
        }
        b"ping" => {
            arity!(argc <= 2, "ping");
            match cmd.get(1) {
                Some(m) => resp::bulk(out, m),
                None => resp::simple(out, b"PONG"),
            }
        }
        b"echo" => {
            arity!(argc == 2, "echo");
            resp::bulk(out, arg(1));
        }
        b"select" => {
            arity!(argc == 2, "select");
            match int_arg(cmd.get(1)) {
                Some(0) => resp::ok(out),
                Some(_) => resp::error(out, "ERR DB index is out of range"),
                None => not_integer(out),
            }
        }
        b"config" => {
            arity!(argc >= 2, "config");
            let sub = arg(1);
            if sub.eq_ignore_ascii_case(b"get") {
                arity!(argc >= 3, "config|get");
                let hits: Vec<&(&str, &str)> = CONFIG
                    .iter()
                    .filter(|(k, _)| {
                        cmd.iter()
                            .skip(2)
                            .any(|p| glob(&p.to_ascii_lowercase(), k.as_bytes()))
                    })
                    .collect();
                resp::array_header(&mut *out, hits.len() * 2);
                for (k, v) in hits {
                    resp::bulk(&mut *out, k.as_bytes());
                    resp::bulk(&mut *out, v.as_bytes());
                }
            } else if sub.eq_ignore_ascii_case(b"resetstat") {
                resp::ok(out);
            } else {
                let mut m = String::from("ERR unknown subcommand '");
                m.push_str(&String::from_utf8_lossy(&sub[..sub.len().min(128)]));
                m.push_str("'. Try CONFIG HELP.");
                resp::error(out, &m);
            }
        }
        b"command" => match cmd.get(1) {
            // redis-cli asks for COMMAND DOCS to drive its hints: none here.
            None => resp::array_header(out, 0),
            Some(s) if s.eq_ignore_ascii_case(b"count") => {
                resp::integer(out, COMMANDS.len() as i64)
            }
            Some(s) if s.eq_ignore_ascii_case(b"info") => {
                resp::array_header(&mut *out, argc - 2);
                for _ in 2..argc {
                    resp::null_array(&mut *out);
                }
            }
            Some(_) => resp::array_header(out, 0),
        },
        b"info" => {
            let text = format!(
                "# Server\r\nredis_version:7.0.0\r\nredis_mode:standalone\r\n\
                 server:wireloop-example\r\n\r\n# Keyspace\r\ndb0:keys={},expires={}\r\n",
                st.map.len(),
                st.with_ttl
            );
            resp::bulk(out, text.as_bytes());
        }
        b"quit" => {
            resp::ok(out);
            return Next::Quit;
        }
        b"type" => {
            arity!(argc == 2, "type");
            let t = st.live(arg(1), now).map_or("none", |e| e.value.type_name());
            resp::simple(out, t.as_bytes());
        }
        _ => {
            if let Some(&(name, arity)) = COMMANDS.iter().find(|(n, _)| n.as_bytes() == lname) {
                arity!(arity_fits(arity, argc), name);
            }
            let done = lists::exec(st, now, lname, cmd, out)
                || sets::exec(st, now, lname, cmd, out)
                || hashes::exec(st, now, lname, cmd, out)
                || zsets::exec(st, now, lname, cmd, out);
            if !done {
                unknown(out, cmd);
            }
        }
    }
    Next::Continue
}

/// INCR and friends: the value must be a decimal integer; the TTL is kept. No allocation
/// for an existing key.
fn incr(st: &mut Store, key: &[u8], delta: i64, now: u64, out: &mut impl Sink) {
    match st.map.get_mut(key) {
        Some(e) => {
            let live = !e.expired(now);
            let Value::Str(value) = &mut e.value else {
                if live {
                    return wrongtype(out);
                }
                st.remove(key);
                return incr(st, key, delta, now, out);
            };
            let cur = if live { parse_int(value) } else { Some(0) };
            let Some(cur) = cur else {
                not_integer(out);
                return;
            };
            let Some(n) = cur.checked_add(delta) else {
                resp::error(out, "ERR increment or decrement would overflow");
                return;
            };
            value.clear();
            // Formats straight into the value's buffer.
            let _ = write!(value, "{n}");
            if !live && e.expires.take().is_some() {
                st.with_ttl -= 1;
            }
            resp::integer(out, n);
        }
        None => {
            st.set(
                key,
                delta.to_string().as_bytes(),
                None,
                false,
                false,
                false,
                now,
            );
            resp::integer(out, delta);
        }
    }
}

/// EXPIRE / PEXPIRE key amount [NX|XX|GT|LT].
fn expire(st: &mut Store, cmd: &Command<'_>, ms: bool, now: u64, out: &mut impl Sink) {
    let name = if ms { "pexpire" } else { "expire" };
    let (mut nx, mut xx, mut gt, mut lt) = (false, false, false, false);
    for o in cmd.iter().skip(3) {
        if o.eq_ignore_ascii_case(b"nx") {
            nx = true;
        } else if o.eq_ignore_ascii_case(b"xx") {
            xx = true;
        } else if o.eq_ignore_ascii_case(b"gt") {
            gt = true;
        } else if o.eq_ignore_ascii_case(b"lt") {
            lt = true;
        } else {
            let mut m = String::from("ERR Unsupported option ");
            m.push_str(&String::from_utf8_lossy(&o[..o.len().min(64)]));
            resp::error(out, &m);
            return;
        }
    }
    if nx && (xx || gt || lt) {
        resp::error(
            out,
            "ERR NX and XX, GT or LT options at the same time are not compatible",
        );
        return;
    }
    if gt && lt {
        resp::error(
            out,
            "ERR GT and LT options at the same time are not compatible",
        );
        return;
    }
    let Some(amount) = int_arg(cmd.get(2)) else {
        not_integer(out);
        return;
    };
    let at = match deadline(now, amount, if ms { 1 } else { 1000 }) {
        Ok(at) => at,
        Err(()) => {
            resp::error(out, &format!("ERR invalid expire time in '{name}' command"));
            return;
        }
    };
    let key = cmd.get(1).unwrap_or_default();
    let Some(e) = st.live(key, now) else {
        resp::integer(out, 0);
        return;
    };
    // A missing TTL is an infinite one for GT and LT; a past deadline is the smallest.
    let cur = e.expires;
    let new = at.unwrap_or(0);
    let allowed = match cur {
        None => !(xx || gt),
        Some(c) => {
            let refused = nx || (gt && new <= c) || (lt && new >= c);
            !refused
        }
    };
    if !allowed {
        resp::integer(out, 0);
        return;
    }
    match at {
        Some(t) => st.set_deadline(key, Some(t)),
        None => {
            st.remove(key);
        }
    }
    resp::integer(out, 1);
}

#[cfg(test)]
mod tests {
    use super::*;
    use wireloop_middleware::codec::resp::RespDecoder;
    use wireloop_middleware::codec::Status;

    fn refused(line: &str) -> Option<String> {
        let input = format!("{line}\r\n");
        let mut dec = RespDecoder::new();
        let Ok(Status::Complete((cmd, _))) = dec.decode(input.as_bytes()) else {
            panic!("{line:?} does not decode");
        };
        let mut buf = [0u8; 16];
        let lname = lower(cmd.name().unwrap_or_default(), &mut buf).unwrap_or_default();
        refused_when_subscribed(lname, &cmd)
    }

    #[test]
    fn subscribed_mode_refuses_as_redis() {
        let msg = |full: &str| {
            Some(format!(
                "ERR Can't execute '{full}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / \
                 QUIT / RESET are allowed in this context"
            ))
        };
        assert_eq!(refused("GET k"), msg("get"));
        assert_eq!(refused("publish a b"), msg("publish"));
        assert_eq!(refused("CONFIG GET save"), msg("config|get"));
        assert_eq!(refused("COMMAND"), msg("command"));
        assert_eq!(refused("command COUNT"), msg("command|count"));
        // Allowed, or failing otherwise first (unknown, arity, unknown subcommand).
        for ok in [
            "PING",
            "QUIT",
            "RESET",
            "SUBSCRIBE a",
            "UNSUBSCRIBE",
            "PSUBSCRIBE a*",
            "PUNSUBSCRIBE",
            "GET",
            "FOO bar",
            "CONFIG",
            "CONFIG GET",
            "CONFIG FOO",
            "MSET a",
        ] {
            assert_eq!(refused(ok), None, "{ok}");
        }
    }
}
