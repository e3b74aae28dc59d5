//! Host-name resolution that never stalls a loop.
//!
//! One thread per server ("wireloop-dns"), started lazily by its owner, answers lookups.
//! Every request is answered exactly once by calling its [`Reply`] callback on the resolver
//! thread (see `Resolver::resolve` for the one exception). IP literals are answered as
//! themselves and `localhost` (and names under it) with the loopback addresses, without any
//! query (RFC 6761).
//!
//! With the `dns` feature (on by default), the thread runs
//! [hickory-resolver](https://docs.rs/hickory-resolver) on a tokio `current_thread`
//! runtime (`hickory.rs`): each lookup is a task of its own, so many are in flight at once.
//! Without it (`system.rs`), no async runtime is built at all: names in `/etc/hosts` are
//! answered from it, and any other name by the C library's resolver (`getaddrinfo`, which
//! follows `/etc/nsswitch.conf` and `/etc/resolv.conf`) on a short-lived thread per lookup,
//! still bounded by the lookup's deadline.
//!
//! Address order for [`Family::Any`]: the AAAA and A lookups run in parallel and their
//! answers are interleaved, IPv6 first (v6, v4, v6, v4, ...; the longer list's tail comes
//! last), as RFC 8305 section 4 recommends; within a family, the server's order is kept.
//! Duplicates are removed, keeping the first. No RFC 6724 sorting is done.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

#[cfg(feature = "dns")]
mod hickory;
#[cfg(feature = "dns")]
pub(crate) use hickory::Resolver;
#[cfg(not(feature = "dns"))]
mod system;
#[cfg(not(feature = "dns"))]
pub(crate) use system::Resolver;

/// Which address families a lookup wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Family {
    /// IPv4 and IPv6 (A and AAAA, queried in parallel).
    Any,
    /// IPv4 only (A).
    V4,
    /// IPv6 only (AAAA).
    V6,
}

impl Family {
    /// Whether an address of this kind is wanted.
    fn accepts(self, ip: IpAddr) -> bool {
        match self {
            Family::Any => true,
            Family::V4 => ip.is_ipv4(),
            Family::V6 => ip.is_ipv6(),
        }
    }
}

/// Default per-query timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// Default number of attempts per query.
const DEFAULT_ATTEMPTS: usize = 2;
/// Reason given to callbacks of lookups abandoned because the resolver stopped.
const STOPPED: &str = "resolver stopped";

/// Where names are resolved: the system configuration (`/etc/resolv.conf`, `/etc/hosts`) by
/// default, or given nameservers.
///
/// Building one does no I/O: the system configuration is read when the resolver starts.
///
/// With the `dns` feature (default) names are resolved by hickory-resolver on the
/// resolver thread. Without it there is no DNS client and no async runtime: IP literals and
/// `localhost` are answered at once, names in `/etc/hosts` from it, and other names by the
/// C library's `getaddrinfo` on a thread per lookup, still within the dial's deadline;
/// [`nameservers`](Self::nameservers) then does not exist.
#[derive(Clone, Debug)]
// Without `dns`, the C library reads its own configuration: the fields are kept for the API.
#[cfg_attr(not(feature = "dns"), allow(dead_code))]
pub struct ResolverConfig {
    source: Source,
    timeout: Duration,
    attempts: usize,
}

/// The nameservers a [`ResolverConfig`] names.
#[derive(Clone, Debug)]
enum Source {
    /// `/etc/resolv.conf` and `/etc/hosts`.
    System,
    /// Exactly these servers, no hosts file.
    #[cfg(feature = "dns")]
    Nameservers(Vec<SocketAddr>),
}

impl ResolverConfig {
    /// System configuration (`/etc/resolv.conf` and `/etc/hosts`), read when the resolver
    /// starts.
    ///
    /// With the `dns` feature, nameservers, search domains and `ndots` come from
    /// `/etc/resolv.conf`; the timeout and
    /// attempts are this config's own (see [`timeout`](Self::timeout)), not resolv.conf's
    /// `options`. If `/etc/resolv.conf` can't be read or names no nameserver, a warning is
    /// logged and hickory's default options are used with the nameserver the C library
    /// assumes in that case, the local one (127.0.0.1:53 and \[::1\]:53); `/etc/hosts` is
    /// still used. `localhost` (and names under it) always resolves to the loopback
    /// addresses without any query (RFC 6761).
    pub fn system() -> ResolverConfig {
        ResolverConfig {
            source: Source::System,
            timeout: DEFAULT_TIMEOUT,
            attempts: DEFAULT_ATTEMPTS,
        }
    }

    /// Only these nameservers (UDP, falling back to TCP for truncated answers), no
    /// `/etc/hosts` and no search domains — for tests and special setups.
    ///
    /// With no address at all, every lookup fails.
    #[cfg(feature = "dns")]
    pub fn nameservers(addrs: impl IntoIterator<Item = SocketAddr>) -> ResolverConfig {
        ResolverConfig {
            source: Source::Nameservers(addrs.into_iter().collect()),
            timeout: DEFAULT_TIMEOUT,
            attempts: DEFAULT_ATTEMPTS,
        }
    }

    /// Per-query timeout: how long one query waits for a server's answer before it is tried
    /// again (default 2 s). Each lookup also has a deadline of its own, which bounds the
    /// whole lookup regardless.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }

    /// How many times a query is tried before the lookup fails (default 2; at least 1).
    /// Without the `dns` feature the C library's resolver decides (resolv.conf's
    /// `attempts`), and this is not used.
    pub fn attempts(mut self, n: usize) -> Self {
        self.attempts = n.max(1);
        self
    }
}

impl Default for ResolverConfig {
    /// [`ResolverConfig::system`].
    fn default() -> Self {
        ResolverConfig::system()
    }
}

/// Why a lookup failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ResolveError {
    /// The name does not exist (NXDOMAIN), or has no address of the wanted family.
    NotFound {
        /// The name looked up.
        host: String,
    },
    /// No answer before the lookup's deadline (or before every attempt timed out).
    Timeout {
        /// The name looked up.
        host: String,
    },
    /// Anything else: an invalid name, a server failure or refusal, a network error, or the
    /// resolver stopped before answering.
    Failed {
        /// The name looked up.
        host: String,
        /// What went wrong.
        reason: String,
    },
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResolveError::NotFound { host } => {
                write!(
                    f,
                    "cannot resolve {host:?}: no such host (or no address of the wanted family)"
                )
            }
            ResolveError::Timeout { host } => {
                write!(f, "cannot resolve {host:?}: timed out")
            }
            ResolveError::Failed { host, reason } => {
                write!(f, "cannot resolve {host:?}: {reason}")
            }
        }
    }
}

impl std::error::Error for ResolveError {}

/// Receives the answer to one lookup, on the resolver thread.
pub(crate) type Reply = Box<dyn FnOnce(Result<Vec<SocketAddr>, ResolveError>) + Send>;

/// One lookup on its way to the resolver thread.
struct Request {
    port: u16,
    family: Family,
    /// `None`: the deadline is too far away to represent; no deadline.
    deadline: Option<Instant>,
    reply: Pending,
}

impl Request {
    /// A lookup of `host` for `port` answered through `reply` within `deadline` from now.
    fn new(host: &str, port: u16, family: Family, deadline: Duration, reply: Reply) -> Request {
        Request {
            port,
            family,
            deadline: Instant::now().checked_add(deadline),
            reply: Pending {
                host: host.to_string(),
                reply: Some(reply),
            },
        }
    }
}

/// A resolver's answer, waited for (at most 15 s): for the tests of both resolvers.
#[cfg(test)]
fn resolve_blocking(
    r: &Resolver,
    host: &str,
    family: Family,
    deadline: Duration,
) -> Result<Vec<SocketAddr>, ResolveError> {
    let (tx, rx) = std::sync::mpsc::channel();
    r.resolve(
        host,
        80,
        family,
        deadline,
        Box::new(move |a| drop(tx.send(a))),
    );
    rx.recv_timeout(Duration::from_secs(15)).expect("no answer")
}

/// A reply not yet sent: dropping it answers "resolver stopped", so every request is
/// answered exactly once whatever happens to its task.
struct Pending {
    host: String,
    reply: Option<Reply>,
}

impl Pending {
    fn send(mut self, result: Result<Vec<SocketAddr>, ResolveError>) {
        if let Some(reply) = self.reply.take() {
            reply(result);
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(reply) = self.reply.take() {
            reply(Err(ResolveError::Failed {
                host: std::mem::take(&mut self.host),
                reason: STOPPED.to_string(),
            }));
        }
    }
}

/// The address an IP literal (also a bracketed IPv6 one) names.
fn ip_literal(host: &str) -> Option<IpAddr> {
    let literal = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    literal.parse().ok()
}

/// `first[0], second[0], first[1], second[1], ...`, then the longer list's tail.
fn interleave(first: Vec<IpAddr>, second: Vec<IpAddr>) -> Vec<IpAddr> {
    let mut out = Vec::with_capacity(first.len() + second.len());
    let mut first = first.into_iter();
    let mut second = second.into_iter();
    loop {
        match (first.next(), second.next()) {
            (None, None) => return out,
            (a, b) => out.extend(a.into_iter().chain(b)),
        }
    }
}

/// Removes repeated addresses, keeping the first of each.
fn dedup(ips: Vec<IpAddr>) -> Vec<IpAddr> {
    let mut out: Vec<IpAddr> = Vec::with_capacity(ips.len());
    for ip in ips {
        if !out.contains(&ip) {
            out.push(ip);
        }
    }
    out
}

#[cfg(all(test, feature = "dns"))]
#[path = "../../tests/common/dns.rs"]
mod test_dns;

#[cfg(all(test, feature = "dns"))]
mod tests;
