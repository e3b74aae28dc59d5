//! A Redis-compatible key-value server (strings only), on the RESP codec of
//! `wireloop-middleware`: redis-cli and redis-benchmark work against it.
//!
//! ```text
//! cargo run --release --example redis-server -- --port 6380
//! redis-cli -p 6380 set greeting hello
//! redis-benchmark -p 6380 -t set,get -n 100000 -P 16 -q
//! ```
//!
//! Commands: PING, ECHO, SET (EX/PX/NX/XX/KEEPTTL), GET, MGET, MSET, DEL, EXISTS,
//! INCR/DECR/INCRBY/DECRBY, EXPIRE/PEXPIRE (NX/XX/GT/LT), TTL/PTTL, PERSIST, KEYS (glob:
//! `*`, `?`, `[...]`, `\` escapes), DBSIZE, FLUSHALL/FLUSHDB, SELECT 0, CONFIG GET,
//! COMMAND (COUNT, DOCS, INFO), INFO, QUIT. Arrays of bulk strings and inline commands
//! (telnet) are both understood.
//!
//! # Pipelining
//!
//! Every command a read brought is executed in one `data` callback, in order, and the
//! replies are queued together, so they leave in one write. A client that pipelines
//! without reading its replies is held back: once the queued replies pass the server's
//! output high-water mark, execution stops (leaving the rest of the input unconsumed), the
//! loop stops reading, and execution resumes as the replies drain (`post_write`,
//! `writable`).
//!
//! # One keyspace over several loops
//!
//! With `--loops N` the connections are spread over N threads but the keyspace is one:
//! it sits behind a `Mutex`, taken once per `data` callback for the whole batch of
//! pipelined commands (not once per command). The alternative — a shard per loop, with
//! commands for keys of another shard forwarded to the owning loop and the replies put
//! back in order — needs a loop-to-loop message channel and per-connection reply
//! reordering, a lot of machinery for a 2-core machine; Redis itself executes commands
//! on one thread. With `--loops 1` (the default) the lock is never contended: one thread
//! takes it, once per read, and the expiry sweep runs on that same thread.
//!
//! # Expiry
//!
//! Keys with a TTL expire lazily (a command that touches an expired key sees it gone and
//! deletes it) and in a periodic sweep: a loop timer (`Control::every`, 100 ms) pops due
//! deadlines from a heap, a bounded number per run.

mod common;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use wireloop::{Action, Conn, Control, Error, Handler, Loops, Server};
use wireloop_middleware::codec::resp::{self, parse_int, Command, RespDecoder, RespLimits};
use wireloop_middleware::codec::{Sink, Status};

const USAGE: &str = "\
redis-server: a Redis-compatible key-value server (wireloop example)

USAGE:
    redis-server [OPTIONS]

OPTIONS:
    --port N            TCP port (default 6380; 0 = any free port)
    --bind ADDR         address to listen on (default 127.0.0.1; there is no AUTH)
    --unixsocket PATH   also listen on this unix socket
    --loops N           number of loops (default 1; -1 = one per core); the keyspace
                        is shared by all of them behind one lock
    --max-bulk BYTES    longest value or key a client may send (default 64 MiB)
    -h, --help          print this help

Logging goes to stderr; set WIRELOOP_LOG=debug for more. Ctrl-C stops gracefully.";

/// How often the expiry sweep runs, and how many deadlines it handles per run at most.
const SWEEP_EVERY: Duration = Duration::from_millis(100);
const SWEEP_BUDGET: usize = 20_000;

// ----- the keyspace ----------------------------------------------------------------------

/// A value and its deadline (milliseconds on the store's clock).
struct Entry {
    value: Vec<u8>,
    expires: Option<u64>,
}

impl Entry {
    #[inline]
    fn expired(&self, now: u64) -> bool {
        self.expires.is_some_and(|t| t <= now)
    }
}

/// The keyspace: the map, and a heap of deadlines for the sweep. The heap is lazy: a
/// deadline that was changed or removed stays in it until popped (and is then ignored),
/// and the heap is rebuilt when stale deadlines outnumber live ones.
struct Store {
    map: HashMap<Box<[u8]>, Entry>,
    deadlines: BinaryHeap<Reverse<(u64, Box<[u8]>)>>,
    /// Keys in `map` with a deadline.
    with_ttl: usize,
    epoch: Instant,
}

impl Store {
    fn new() -> Store {
        Store {
            map: HashMap::new(),
            deadlines: BinaryHeap::new(),
            with_ttl: 0,
            epoch: Instant::now(),
        }
    }

    /// Milliseconds since the store was made (the clock deadlines are on), from 1.
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    /// The live entry for `key`; an expired one is deleted.
    fn live(&mut self, key: &[u8], now: u64) -> Option<&mut Entry> {
        if self.map.get(key)?.expired(now) {
            self.remove(key);
            return None;
        }
        self.map.get_mut(key)
    }

    fn remove(&mut self, key: &[u8]) -> bool {
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
    fn set_deadline(&mut self, key: &[u8], at: Option<u64>) {
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
    fn set(
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
                if e.value.capacity() > 4 * value.len().max(64) {
                    e.value = value.to_vec();
                } else {
                    e.value.clear();
                    e.value.extend_from_slice(value);
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
                        value: value.to_vec(),
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
    fn sweep(&mut self, budget: usize) -> usize {
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

    fn clear(&mut self) {
        self.map.clear();
        self.deadlines.clear();
        self.with_ttl = 0;
    }
}

fn lock(store: &Mutex<Store>) -> MutexGuard<'_, Store> {
    // A panic while holding the lock cannot leave the map half-updated in a way that
    // matters more than losing the server: keep serving.
    store.lock().unwrap_or_else(|e| e.into_inner())
}

// ----- glob matching (KEYS, CONFIG GET) -----------------------------------------------------

/// Whether the class starting at `p[i] == b'['` matches `c`, and where the pattern goes
/// on after it. As Redis: `^` negates, `a-z` is a range (either order), `\` escapes, an
/// unterminated class ends with the pattern.
fn class(p: &[u8], mut i: usize, c: u8) -> (bool, usize) {
    i += 1;
    let neg = p.get(i) == Some(&b'^');
    if neg {
        i += 1;
    }
    let mut hit = false;
    while i < p.len() {
        match p[i] {
            b']' => {
                i += 1;
                return (hit != neg, i);
            }
            b'\\' if i + 1 < p.len() => {
                i += 1;
                hit |= p[i] == c;
            }
            lo if i + 2 < p.len() && p[i + 1] == b'-' => {
                let hi = p[i + 2];
                let (lo, hi) = if lo <= hi { (lo, hi) } else { (hi, lo) };
                hit |= (lo..=hi).contains(&c);
                i += 2;
            }
            b => hit |= b == c,
        }
        i += 1;
    }
    (hit != neg, i)
}

/// Redis's glob: `*`, `?`, `[...]`, `\x`. Greedy with one backtrack point, so the time is
/// at most pattern × subject even for patterns like `*a*a*a*b`.
fn glob(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() {
            let step = match p[pi] {
                b'*' => {
                    while p.get(pi) == Some(&b'*') {
                        pi += 1;
                    }
                    if pi == p.len() {
                        return true;
                    }
                    star = Some((pi, si));
                    continue;
                }
                b'?' => Some(pi + 1),
                b'[' => match class(p, pi, s[si]) {
                    (true, next) => Some(next),
                    (false, _) => None,
                },
                b'\\' if pi + 1 < p.len() => (p[pi + 1] == s[si]).then_some(pi + 2),
                b => (b == s[si]).then_some(pi + 1),
            };
            if let Some(next) = step {
                pi = next;
                si += 1;
                continue;
            }
        }
        match star {
            Some((sp, ss)) => {
                pi = sp;
                si = ss + 1;
                star = Some((sp, ss + 1));
            }
            None => return false,
        }
    }
    while p.get(pi) == Some(&b'*') {
        pi += 1;
    }
    pi == p.len()
}

// ----- commands ------------------------------------------------------------------------------

/// Commands this server knows (for `COMMAND COUNT`).
const COMMANDS: &[&str] = &[
    "ping", "echo", "set", "get", "mget", "mset", "del", "exists", "incr", "decr", "incrby",
    "decrby", "expire", "pexpire", "ttl", "pttl", "persist", "keys", "dbsize", "flushall",
    "flushdb", "select", "config", "command", "info", "quit",
];

/// `CONFIG GET` answers, for redis-benchmark and redis-cli.
const CONFIG: &[(&str, &str)] = &[
    ("save", ""),
    ("appendonly", "no"),
    ("databases", "1"),
    ("maxmemory", "0"),
];

/// What to do after a command.
#[derive(PartialEq, Eq)]
enum Next {
    Continue,
    Quit,
}

fn wrong_args(out: &mut impl Sink, name: &str) {
    let mut m = String::with_capacity(48);
    m.push_str("ERR wrong number of arguments for '");
    m.push_str(name);
    m.push_str("' command");
    resp::error(out, &m);
}

fn not_integer(out: &mut impl Sink) {
    resp::error(out, "ERR value is not an integer or out of range");
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
fn lower<'b>(name: &[u8], buf: &'b mut [u8; 16]) -> Option<&'b [u8]> {
    let b = buf.get_mut(..name.len())?;
    b.copy_from_slice(name);
    b.make_ascii_lowercase();
    Some(b)
}

/// Runs one command against the store, writing its reply into `out`.
fn exec(st: &mut Store, now: u64, cmd: &Command<'_>, out: &mut impl Sink) -> Next {
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
                Some(e) if !e.expired(now) => resp::bulk(out, &e.value),
                Some(_) => {
                    st.remove(key);
                    resp::null_bulk(out);
                }
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
                    Some(e) => resp::bulk(&mut *out, &e.value),
                    None => resp::null_bulk(&mut *out),
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
        _ => unknown(out, cmd),
    }
    Next::Continue
}

/// INCR and friends: the value must be a decimal integer; the TTL is kept. No allocation
/// for an existing key.
fn incr(st: &mut Store, key: &[u8], delta: i64, now: u64, out: &mut impl Sink) {
    match st.map.get_mut(key) {
        Some(e) => {
            let live = !e.expired(now);
            let cur = if live { parse_int(&e.value) } else { Some(0) };
            let Some(cur) = cur else {
                not_integer(out);
                return;
            };
            let Some(n) = cur.checked_add(delta) else {
                resp::error(out, "ERR increment or decrement would overflow");
                return;
            };
            e.value.clear();
            // Formats straight into the value's buffer.
            let _ = write!(e.value, "{n}");
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

// ----- the handler ---------------------------------------------------------------------------

/// How a run over a connection's input ended.
#[derive(PartialEq, Eq)]
enum Flow {
    /// Everything complete was executed (a partial command may remain).
    Done,
    /// Stopped with complete commands left: the replies are over the high-water mark.
    Paused,
    /// QUIT or a protocol error: close once the replies are written.
    Close,
}

/// Per connection: the decoder (it remembers a partial command) and whether the
/// connection is finished.
#[derive(Default)]
struct ConnState {
    dec: RespDecoder,
    paused: bool,
    quit: bool,
}

/// One per loop; the store is shared.
struct Redis {
    store: Arc<Mutex<Store>>,
    limits: RespLimits,
}

impl Redis {
    /// Executes every complete command in the input, up to the output high-water mark.
    fn run(&mut self, conn: &mut Conn<'_, ConnState>) -> Flow {
        if conn.state.quit {
            return Flow::Close;
        }
        let hwm = conn.output_high_water();
        // The decoder lives in the connection's state, which `split` cannot lend at the
        // same time as the input: borrow it out (moving a `Vec` header, no allocation).
        let mut dec = std::mem::take(&mut conn.state.dec);
        let (input, mut out) = conn.split();
        let mut used = 0;
        let mut flow = Flow::Done;
        let mut store: Option<(MutexGuard<'_, Store>, u64)> = None;
        loop {
            if out.len() > hwm {
                flow = Flow::Paused;
                break;
            }
            match dec.decode(&input[used..]) {
                Ok(Status::Complete((cmd, n))) => {
                    used += n;
                    if cmd.is_empty() {
                        continue;
                    }
                    let (st, now) = store.get_or_insert_with(|| {
                        let st = lock(&self.store);
                        let now = st.now_ms();
                        (st, now)
                    });
                    if exec(st, *now, &cmd, &mut out) == Next::Quit {
                        used = input.len();
                        flow = Flow::Close;
                        break;
                    }
                }
                Ok(Status::Partial) => break,
                Err(e) => {
                    log::debug!("protocol error: {e}");
                    e.write_reply(&mut out);
                    used = input.len();
                    flow = Flow::Close;
                    break;
                }
            }
        }
        drop(store);
        conn.consume(used);
        conn.state.dec = dec;
        conn.state.paused = flow == Flow::Paused;
        conn.state.quit = flow == Flow::Close;
        flow
    }
}

impl Handler for Redis {
    type State = ConnState;

    fn serving(&mut self, ctl: &mut Control<'_, ConnState>) -> Action {
        if ctl.loop_index() == 0 {
            let store = self.store.clone();
            ctl.every(SWEEP_EVERY, move |_| {
                let n = lock(&store).sweep(SWEEP_BUDGET);
                if n > 0 {
                    log::trace!("expired {n} keys");
                }
            });
        }
        Action::None
    }

    fn opened(&mut self, conn: &mut Conn<'_, ConnState>) -> Action {
        conn.state.dec = RespDecoder::with_limits(self.limits);
        Action::None
    }

    fn data(&mut self, conn: &mut Conn<'_, ConnState>) -> Action {
        match self.run(conn) {
            Flow::Close => Action::Close,
            _ => Action::None,
        }
    }

    fn eof(&mut self, conn: &mut Conn<'_, ConnState>) -> Action {
        // Answer what the client sent before it stopped sending, then close.
        match self.run(conn) {
            Flow::Paused => Action::None,
            _ => Action::Close,
        }
    }

    fn writable(&mut self, conn: &mut Conn<'_, ConnState>) -> Action {
        match self.run(conn) {
            Flow::Close => Action::Close,
            Flow::Done if conn.is_eof() => Action::Close,
            _ => Action::None,
        }
    }

    fn post_write(&mut self, conn: &mut Conn<'_, ConnState>, _written: usize) {
        // The socket took some replies without the loop pausing: go on with commands
        // left over when the high-water mark stopped the last run.
        if conn.state.paused {
            match self.run(conn) {
                Flow::Close => conn.close(),
                Flow::Done if conn.is_eof() => conn.close(),
                _ => {}
            }
        }
    }

    fn closed(&mut self, conn: &mut Conn<'_, ConnState>, err: Option<Error>) {
        if let Some(e) = err {
            log::debug!("connection {} closed: {e}", conn.id());
        }
    }
}

// ----- main ----------------------------------------------------------------------------------

struct Args {
    port: u16,
    bind: String,
    unixsocket: Option<String>,
    loops: i64,
    max_bulk: usize,
}

fn parse_args() -> Result<Args, lexopt::Error> {
    use lexopt::prelude::*;
    let mut args = Args {
        port: 6380,
        bind: "127.0.0.1".into(),
        unixsocket: None,
        loops: 1,
        max_bulk: RespLimits::default().max_bulk,
    };
    let mut p = lexopt::Parser::from_env();
    while let Some(arg) = p.next()? {
        match arg {
            Long("port") => args.port = p.value()?.parse()?,
            Long("bind") => args.bind = p.value()?.string()?,
            Long("unixsocket") => args.unixsocket = Some(p.value()?.string()?),
            Long("loops") => args.loops = p.value()?.parse()?,
            Long("max-bulk") => args.max_bulk = p.value()?.parse()?,
            Short('h') | Long("help") => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            _ => return Err(arg.unexpected()),
        }
    }
    Ok(args)
}

fn main() {
    common::init_logger();
    let args = parse_args().unwrap_or_else(|e| common::usage_error(e, USAGE));
    let host = if args.bind.contains(':') {
        format!(
            "[{}]",
            args.bind.trim_start_matches('[').trim_end_matches(']')
        )
    } else {
        args.bind.clone()
    };
    let limits = RespLimits {
        max_bulk: args.max_bulk,
        ..RespLimits::default()
    };
    // A command must fit in a connection's input buffer: room for one value at the
    // bulk limit plus the rest of the command.
    let mut builder = Server::builder()
        .loops(Loops::from_count(args.loops))
        .max_input(args.max_bulk.saturating_add(1 << 20));
    let tcp = format!("tcp://{host}:{}", args.port);
    for addr in std::iter::once(tcp).chain(args.unixsocket.map(|p| format!("unix://{p}"))) {
        builder = builder
            .listen(&addr)
            .unwrap_or_else(|e| common::usage_error(e, USAGE));
    }
    let server = builder.build().unwrap_or_else(|e| {
        log::error!("{e}");
        std::process::exit(1)
    });
    common::shutdown_on_signal(server.handle());
    for a in server.local_addrs() {
        log::info!("redis server serving {a} on {} loop(s)", server.num_loops());
    }
    let store = Arc::new(Mutex::new(Store::new()));
    let res = server.serve(|_| Redis {
        store: store.clone(),
        limits,
    });
    if let Err(e) = res {
        log::error!("{e}");
        std::process::exit(1);
    }
    log::info!("stopped");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        for (p, s, want) in [
            ("*", "", true),
            ("*", "abc", true),
            ("a*", "abc", true),
            ("a*", "bac", false),
            ("*c", "abc", true),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("h[ae]llo", "hello", true),
            ("h[ae]llo", "hallo", true),
            ("h[ae]llo", "hillo", false),
            ("h[^e]llo", "hallo", true),
            ("h[^e]llo", "hello", false),
            ("h[a-b]llo", "hbllo", true),
            ("h[b-a]llo", "hallo", true),
            ("h[a-b]llo", "hcllo", false),
            ("h\\*llo", "h*llo", true),
            ("h\\*llo", "hello", false),
            ("[\\]]", "]", true),
            ("a\\", "a\\", true),
            ("[abc", "b", true),
            (
                "*a*a*a*a*a*a*a*a*a*b",
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                false,
            ),
            ("user:*:name", "user:42:name", true),
            ("user:*:name", "user:42:age", false),
        ] {
            assert_eq!(glob(p.as_bytes(), s.as_bytes()), want, "{p:?} vs {s:?}");
        }
    }

    #[test]
    fn lazy_expiry_deletes_on_access() {
        let mut st = Store::new();
        let now = st.now_ms();
        st.set(b"k", b"v", Some(now + 10), false, false, false, now);
        assert!(st.live(b"k", now).is_some());
        assert_eq!((st.map.len(), st.with_ttl), (1, 1));
        assert!(st.live(b"k", now + 10).is_none());
        assert_eq!((st.map.len(), st.with_ttl), (0, 0));
    }

    #[test]
    fn sweep_and_compaction() {
        let mut st = Store::new();
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
