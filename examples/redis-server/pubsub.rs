//! Publish/subscribe across loops: SUBSCRIBE, UNSUBSCRIBE, PSUBSCRIBE, PUNSUBSCRIBE,
//! PUBLISH, and RESET's part, with the replies real Redis 7 sends over RESP2.
//!
//! # Who holds what
//!
//! One [`PubSub`] is shared by every loop: a registry of channel and pattern names, each
//! with its subscribers, behind one `Mutex`. A connection keeps its own names in its state
//! ([`Subscriptions`]), so UNSUBSCRIBE without arguments and the clean-up in `closed` need
//! no search. A subscribed connection is an [`Subscriber`] in the registry: its id, a
//! [`Handle`] and a small gate of its own (below).
//!
//! # Delivery
//!
//! PUBLISH takes the registry lock only to collect the receivers (cloned `Arc`s), encodes
//! the message once (`Bytes`, shared by every receiver without copying), and posts it to
//! each receiver with [`Handle::send`]: into the inbox of the receiver's loop, whichever
//! loop and listener it is on. That loop queues it on the connection like any other
//! output, so a TLS subscriber's messages are encrypted by its own TLS session.
//!
//! # Ordering
//!
//! A receiver's messages reach its loop through the inbox, while its replies are written
//! by its own callbacks, so a message published just before an UNSUBSCRIBE may arrive
//! after that command's reply. Inside subscribed mode clients expect messages between
//! replies; but once the last subscription is gone (UNSUBSCRIBE, PUNSUBSCRIBE, RESET) a
//! late message would be read as the answer to the client's next command. So leaving
//! subscribed mode closes the subscriber's gate (no message is posted after that), and
//! if messages may still be in the inbox the replies are held back: the connection posts
//! itself a wake behind those messages and stops executing commands; when `woken` comes,
//! every message is queued, the held replies follow, and execution resumes.
//!
//! # Slow subscribers: the bound
//!
//! `Handle::send` queues without limit, so the limit is kept here, like Redis's
//! `client-output-buffer-limit pubsub` hard limit (32 MiB by default, `--pubsub-limit`).
//! Each subscriber's gate counts the message bytes posted to it. Every 64 KiB of them the
//! publisher posts a wake behind the messages; when the subscriber's loop runs `woken`, the
//! messages before the wake are in the connection's output, so the output's length
//! (`Conn::output_len`: plaintext and TLS records not yet written) plus the bytes posted
//! since is exactly what the subscriber holds. A publisher never posts a message that
//! would take that (the output at the last check, plus everything posted since) past the
//! limit: the gate closes instead, and the subscriber's loop unsubscribes the connection
//! and closes it. So what a subscriber holds — its queued output and its messages still
//! in the inbox — stays under the limit, plus its own replies (bounded by the output
//! high-water mark, as for any client).

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use wireloop::{Bytes, ConnId, Handle};
use wireloop_middleware::codec::resp;
use wireloop_middleware::codec::Sink;

use crate::glob::glob;

/// A subscriber's backlog is checked every this many bytes of messages posted to it.
const CHECK_EVERY: u64 = 64 << 10;

/// Redis's default hard `client-output-buffer-limit` for pub/sub clients.
pub const DEFAULT_LIMIT: usize = 32 << 20;

/// A channel or pattern name, shared by the registry and the subscriber's own set.
type Name = Arc<[u8]>;

/// Takes a lock even if a thread panicked while holding it: the registry and the gates
/// stay consistent between statements, and the server should go on serving.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Every channel and pattern with at least one subscriber.
#[derive(Default)]
struct Registry {
    channels: HashMap<Name, Vec<Arc<Subscriber>>>,
    patterns: HashMap<Name, Vec<Arc<Subscriber>>>,
}

impl Registry {
    fn map(&mut self, pattern: bool) -> &mut HashMap<Name, Vec<Arc<Subscriber>>> {
        if pattern {
            &mut self.patterns
        } else {
            &mut self.channels
        }
    }

    fn remove(&mut self, pattern: bool, name: &[u8], who: &Arc<Subscriber>) {
        let map = self.map(pattern);
        if let Some(subs) = map.get_mut(name) {
            if let Some(i) = subs.iter().position(|s| Arc::ptr_eq(s, who)) {
                subs.swap_remove(i);
            }
            if subs.is_empty() {
                map.remove(name);
            }
        }
    }
}

/// The pub/sub registry of the whole server, shared by all loops.
pub struct PubSub {
    registry: Mutex<Registry>,
    /// Most bytes a subscriber may hold (see the module documentation); 0: no limit.
    limit: u64,
}

/// A subscribed connection, as publishers see it.
pub struct Subscriber {
    id: ConnId,
    handle: Handle,
    gate: Mutex<Gate>,
}

/// What publishers and the subscriber's loop agree on about one subscriber.
#[derive(Default)]
struct Gate {
    /// Messages may be posted (the connection is subscribed and not being dropped).
    open: bool,
    /// A publisher found it over the limit: its loop drops it at the next wake.
    overflow: bool,
    /// Message bytes posted, in total.
    posted: u64,
    /// `posted` as of the last wake the loop handled: those bytes are all queued.
    confirmed: u64,
    /// The connection's output length at that wake.
    base: u64,
    /// `posted` when each wake still on its way was posted, oldest first.
    marks: VecDeque<u64>,
}

impl Subscriber {
    /// Posts a wake behind what was posted so far; the caller holds the gate.
    fn mark(&self, g: &mut Gate) {
        g.marks.push_back(g.posted);
        self.handle.wake(self.id);
    }

    /// Posts `msg` to the subscriber unless its gate is closed or it would go over
    /// `limit`. Returns whether it was posted.
    fn deliver(&self, msg: &Bytes, limit: u64) -> bool {
        let mut g = lock(&self.gate);
        if !g.open {
            return false;
        }
        let len = msg.len() as u64;
        if limit > 0 && g.base + (g.posted - g.confirmed) + len > limit {
            g.open = false;
            g.overflow = true;
            self.mark(&mut g);
            return false;
        }
        // Posted under the gate, so the queue order matches `posted` and the marks.
        if !self.handle.send(self.id, msg.clone()) {
            return false;
        }
        g.posted += len;
        if g.marks.is_empty() && g.posted - g.confirmed >= CHECK_EVERY {
            self.mark(&mut g);
        }
        true
    }
}

/// A connection's subscriptions, kept in its state.
#[derive(Default)]
pub struct Subscriptions {
    /// The connection in the registry, made at its first subscription.
    me: Option<Arc<Subscriber>>,
    channels: BTreeSet<Name>,
    patterns: BTreeSet<Name>,
    /// Left subscribed mode with messages possibly on their way: waiting for them.
    draining: bool,
    /// Replies held back until the messages have arrived.
    held: Vec<u8>,
}

impl Subscriptions {
    /// Channels and patterns subscribed to: the count in Redis's replies.
    pub fn count(&self) -> usize {
        self.channels.len() + self.patterns.len()
    }

    /// In subscribed mode (RESP2): only (P)SUBSCRIBE, (P)UNSUBSCRIBE, PING, QUIT and RESET
    /// are allowed.
    pub fn is_subscribed(&self) -> bool {
        self.count() > 0
    }

    /// Waiting for messages posted before it left subscribed mode: no command runs.
    pub fn is_draining(&self) -> bool {
        self.draining
    }

    /// The replies held back while draining, to be written now.
    pub fn take_held(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.held)
    }

    fn set(&mut self, pattern: bool) -> &mut BTreeSet<Name> {
        if pattern {
            &mut self.patterns
        } else {
            &mut self.channels
        }
    }
}

/// What a wake of a connection meant to pub/sub.
#[derive(Debug, PartialEq, Eq)]
pub enum Woken {
    /// Nothing to do.
    Nothing,
    /// The messages it waited for are queued: write the held replies, go on.
    Drained,
    /// Over the limit (this many bytes were queued at the check): it was unsubscribed,
    /// close it.
    Overflow(u64),
}

/// `*3 kind name count`, Redis's (un)subscribe confirmation; `name` nil when there was
/// nothing to unsubscribe from.
fn confirmation(out: &mut impl Sink, kind: &[u8], name: Option<&[u8]>, count: usize) {
    resp::array_header(&mut *out, 3);
    resp::bulk(&mut *out, kind);
    match name {
        Some(n) => resp::bulk(&mut *out, n),
        None => resp::null_bulk(&mut *out),
    }
    resp::integer(&mut *out, count as i64);
}

/// `*3 message channel payload`, as one buffer for every receiver.
pub fn message(channel: &[u8], payload: &[u8]) -> Bytes {
    let mut v = Vec::with_capacity(channel.len() + payload.len() + 48);
    resp::array_header(&mut v, 3);
    resp::bulk(&mut v, b"message");
    resp::bulk(&mut v, channel);
    resp::bulk(&mut v, payload);
    Bytes::from(v)
}

/// `*4 pmessage pattern channel payload`.
pub fn pmessage(pattern: &[u8], channel: &[u8], payload: &[u8]) -> Bytes {
    let mut v = Vec::with_capacity(pattern.len() + channel.len() + payload.len() + 64);
    resp::array_header(&mut v, 4);
    resp::bulk(&mut v, b"pmessage");
    resp::bulk(&mut v, pattern);
    resp::bulk(&mut v, channel);
    resp::bulk(&mut v, payload);
    Bytes::from(v)
}

/// PING in subscribed mode: `*2 pong <argument or empty>`.
pub fn pong(out: &mut impl Sink, arg: Option<&[u8]>) {
    resp::array_header(&mut *out, 2);
    resp::bulk(&mut *out, b"pong");
    resp::bulk(&mut *out, arg.unwrap_or_default());
}

/// Receivers of one PUBLISH, collected under the registry lock: the subscriber and, for
/// a pattern subscription, the pattern. Kept per loop to reuse its allocation.
pub type Targets = Vec<(Arc<Subscriber>, Option<Name>)>;

impl PubSub {
    /// An empty registry; subscribers may hold at most `limit` bytes (0: no limit).
    pub fn new(limit: usize) -> PubSub {
        PubSub {
            registry: Mutex::new(Registry::default()),
            limit: limit as u64,
        }
    }

    /// Most bytes a subscriber may hold (0: no limit).
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// SUBSCRIBE (or PSUBSCRIBE with `pattern`) `names`: one confirmation each, with the
    /// connection's count of subscriptions after it.
    pub fn subscribe<'a>(
        &self,
        subs: &mut Subscriptions,
        id: ConnId,
        handle: &Handle,
        names: impl Iterator<Item = &'a [u8]>,
        pattern: bool,
        out: &mut impl Sink,
    ) {
        let me = subs
            .me
            .get_or_insert_with(|| {
                Arc::new(Subscriber {
                    id,
                    handle: handle.clone(),
                    gate: Mutex::default(),
                })
            })
            .clone();
        {
            // Open before registering, so no message published from then on is missed.
            let mut g = lock(&me.gate);
            g.open = !g.overflow;
        }
        let kind: &[u8] = if pattern { b"psubscribe" } else { b"subscribe" };
        let mut reg = lock(&self.registry);
        for name in names {
            if !subs.set(pattern).contains(name) {
                let n: Name = name.into();
                subs.set(pattern).insert(n.clone());
                reg.map(pattern).entry(n).or_default().push(me.clone());
            }
            confirmation(out, kind, Some(name), subs.count());
        }
    }

    /// UNSUBSCRIBE (or PUNSUBSCRIBE with `pattern`) `names`, or every channel (pattern)
    /// when there are none: one confirmation each, into `reply`; then see
    /// [`settle`](PubSub::settle).
    pub fn unsubscribe<'a>(
        &self,
        subs: &mut Subscriptions,
        names: impl ExactSizeIterator<Item = &'a [u8]>,
        pattern: bool,
        reply: &mut Vec<u8>,
    ) {
        let kind: &[u8] = if pattern {
            b"punsubscribe"
        } else {
            b"unsubscribe"
        };
        let mut reg = lock(&self.registry);
        let mut one = |subs: &mut Subscriptions, reg: &mut Registry, name: &[u8]| {
            if subs.set(pattern).remove(name) {
                if let Some(me) = &subs.me {
                    reg.remove(pattern, name, me);
                }
            }
            confirmation(&mut *reply, kind, Some(name), subs.count());
        };
        if names.len() > 0 {
            for name in names {
                one(subs, &mut reg, name);
            }
        } else if subs.set(pattern).is_empty() {
            confirmation(reply, kind, None, subs.count());
        } else {
            let all: Vec<Name> = subs.set(pattern).iter().cloned().collect();
            for name in all {
                one(subs, &mut reg, &name);
            }
        }
    }

    /// RESET's part: every subscription dropped, without confirmations.
    pub fn unsubscribe_all(&self, subs: &mut Subscriptions) {
        let Some(me) = subs.me.clone() else {
            return;
        };
        let mut reg = lock(&self.registry);
        for (pattern, names) in [
            (false, std::mem::take(&mut subs.channels)),
            (true, std::mem::take(&mut subs.patterns)),
        ] {
            for name in names {
                reg.remove(pattern, &name, &me);
            }
        }
    }

    /// After a command that may have ended subscribed mode (`was_subscribed` before it):
    /// its `reply` goes to `out` now, or, if messages may still be on their way to the
    /// connection, is held back until they have arrived ([`Woken::Drained`]); then
    /// [`Subscriptions::is_draining`] holds and no further command may run.
    pub fn settle(
        &self,
        subs: &mut Subscriptions,
        was_subscribed: bool,
        reply: &[u8],
        out: &mut impl Sink,
    ) {
        if was_subscribed && !subs.is_subscribed() {
            if let Some(me) = &subs.me {
                let mut g = lock(&me.gate);
                g.open = false;
                if g.posted != g.confirmed || !g.marks.is_empty() {
                    me.mark(&mut g);
                    subs.draining = true;
                    subs.held.extend_from_slice(reply);
                    return;
                }
            }
        }
        out.put(reply);
    }

    /// PUBLISH `payload` on `channel`: posted to every subscriber of the channel and of
    /// each matching pattern; returns how many received it.
    pub fn publish(&self, channel: &[u8], payload: &[u8], targets: &mut Targets) -> usize {
        targets.clear();
        {
            let reg = lock(&self.registry);
            if let Some(subs) = reg.channels.get(channel) {
                targets.extend(subs.iter().map(|s| (s.clone(), None)));
            }
            for (p, subs) in &reg.patterns {
                if glob(p, channel) {
                    targets.extend(subs.iter().map(|s| (s.clone(), Some(p.clone()))));
                }
            }
        }
        // Encoded once per channel and once per pattern (a pattern's receivers are
        // consecutive), outside the lock.
        let mut msg: Option<Bytes> = None;
        let mut pmsg: Option<(Name, Bytes)> = None;
        let mut n = 0;
        for (sub, pattern) in targets.drain(..) {
            let m = match pattern {
                None => msg.get_or_insert_with(|| message(channel, payload)).clone(),
                Some(p) => match &pmsg {
                    Some((q, m)) if Arc::ptr_eq(q, &p) => m.clone(),
                    _ => {
                        let m = pmessage(&p, channel, payload);
                        pmsg = Some((p, m.clone()));
                        m
                    }
                },
            };
            if sub.deliver(&m, self.limit) {
                n += 1;
            }
        }
        n
    }

    /// `woken` for a connection: a wake posted by pub/sub (a backlog check, the end of a
    /// drain, an overflow) has arrived, so every message posted before it is in the
    /// output, which holds `output_len` bytes.
    pub fn woken(&self, subs: &mut Subscriptions, output_len: usize) -> Woken {
        let Some(me) = subs.me.clone() else {
            return Woken::Nothing;
        };
        let mut g = lock(&me.gate);
        let Some(mark) = g.marks.pop_front() else {
            return Woken::Nothing;
        };
        g.confirmed = mark;
        g.base = output_len as u64;
        let backlog = g.base + (g.posted - mark);
        let over = g.overflow || (self.limit > 0 && backlog > self.limit);
        let last = g.marks.is_empty();
        if over {
            g.open = false;
            drop(g);
            self.forget(subs);
            return Woken::Overflow(backlog);
        }
        if subs.draining && last {
            subs.draining = false;
            return Woken::Drained;
        }
        Woken::Nothing
    }

    /// The connection is closing: every subscription is dropped, no message is posted
    /// to it any more.
    pub fn forget(&self, subs: &mut Subscriptions) {
        if let Some(me) = &subs.me {
            lock(&me.gate).open = false;
        }
        self.unsubscribe_all(subs);
        subs.draining = false;
        subs.held = Vec::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_as_redis_sends_them() {
        assert_eq!(
            &message(b"ch", b"hello")[..],
            b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhello\r\n"
        );
        assert_eq!(
            &pmessage(b"c*", b"ch", b"")[..],
            b"*4\r\n$8\r\npmessage\r\n$2\r\nc*\r\n$2\r\nch\r\n$0\r\n\r\n"
        );
        let mut v = Vec::new();
        pong(&mut v, None);
        pong(&mut v, Some(b"hi"));
        assert_eq!(
            v,
            b"*2\r\n$4\r\npong\r\n$0\r\n\r\n*2\r\n$4\r\npong\r\n$2\r\nhi\r\n"
        );
        let mut v = Vec::new();
        confirmation(&mut v, b"subscribe", Some(b"news"), 1);
        confirmation(&mut v, b"unsubscribe", None, 0);
        assert_eq!(
            v,
            b"*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n\
              *3\r\n$11\r\nunsubscribe\r\n$-1\r\n:0\r\n"
        );
    }
}
