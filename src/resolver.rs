//! Host-name resolution that never stalls a loop.
//!
//! One thread per server ("wireloop-dns"), started lazily by its owner, runs
//! [hickory-resolver](https://docs.rs/hickory-resolver) on a tokio `current_thread` runtime.
//! Requests go in over a channel; each lookup is a task of its own on that runtime, so many
//! lookups are in flight at once. Every request is answered exactly once by calling its
//! [`Reply`] callback on the resolver thread (see [`Resolver::resolve`] for the one exception).
//!
//! Address order for [`Family::Any`]: the AAAA and A lookups run in parallel and their
//! answers are interleaved, IPv6 first (v6, v4, v6, v4, ...; the longer list's tail comes
//! last), as RFC 8305 section 4 recommends; within a family, the server's order is kept.
//! Duplicates are removed, keeping the first. No RFC 6724 sorting is done.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use hickory_resolver::config::{
    ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolveHosts,
    ResolverConfig as HickoryConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::NetError;
use hickory_resolver::proto::rr::{IntoName, Name, RData, RecordType};
use hickory_resolver::TokioResolver;
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};

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
#[derive(Clone, Debug)]
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
    Nameservers(Vec<SocketAddr>),
}

impl ResolverConfig {
    /// System configuration (`/etc/resolv.conf` and `/etc/hosts`), read when the resolver
    /// starts.
    ///
    /// Nameservers, search domains and `ndots` come from `/etc/resolv.conf`; the timeout and
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
    pub fn attempts(mut self, n: usize) -> Self {
        self.attempts = n.max(1);
        self
    }

    /// The hickory configuration and options for this config.
    fn hickory(&self) -> (HickoryConfig, ResolverOpts) {
        let (config, mut opts) = match &self.source {
            Source::System => system_conf(),
            Source::Nameservers(addrs) => {
                let servers = addrs.iter().map(|addr| name_server(*addr)).collect();
                let mut opts = ResolverOpts::default();
                opts.use_hosts_file = ResolveHosts::Never;
                (HickoryConfig::from_name_servers(servers), opts)
            }
        };
        opts.timeout = self.timeout;
        opts.attempts = self.attempts;
        // Unused: lookups ask for A and AAAA themselves (see `lookup_family`).
        opts.ip_strategy = LookupIpStrategy::Ipv6AndIpv4;
        (config, opts)
    }
}

impl Default for ResolverConfig {
    /// [`ResolverConfig::system`].
    fn default() -> Self {
        ResolverConfig::system()
    }
}

/// Reads `/etc/resolv.conf`, falling back (with a warning) to [`fallback_conf`].
fn system_conf() -> (HickoryConfig, ResolverOpts) {
    match hickory_resolver::system_conf::read_system_conf() {
        Ok(conf) => conf,
        Err(e) => {
            log::warn!(
                "DNS: cannot use /etc/resolv.conf ({e}); using the local nameserver \
                 (127.0.0.1:53, [::1]:53) with default options"
            );
            fallback_conf()
        }
    }
}

/// What the C library assumes without a usable resolv.conf: the local nameserver, plus
/// `/etc/hosts`, with hickory's default options.
fn fallback_conf() -> (HickoryConfig, ResolverOpts) {
    let local = [
        SocketAddr::from((Ipv4Addr::LOCALHOST, 53)),
        SocketAddr::from((Ipv6Addr::LOCALHOST, 53)),
    ];
    let servers = local.into_iter().map(name_server).collect();
    let mut opts = ResolverOpts::default();
    opts.use_hosts_file = ResolveHosts::Always;
    (HickoryConfig::from_name_servers(servers), opts)
}

/// A nameserver at `addr`, over UDP with TCP for truncated answers.
fn name_server(addr: SocketAddr) -> NameServerConfig {
    let mut udp = ConnectionConfig::udp();
    udp.port = addr.port();
    let mut tcp = ConnectionConfig::tcp();
    tcp.port = addr.port();
    NameServerConfig::new(addr.ip(), true, vec![udp, tcp])
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

/// The resolver thread.
///
/// Dropping it closes the request channel and joins the thread promptly (it does not wait for
/// outstanding queries): lookups still pending are abandoned and their callbacks are called,
/// on the resolver thread while it stops, with [`ResolveError::Failed`] and the reason
/// "resolver stopped". (If it is dropped on its own thread — by a callback — it is not
/// joined; the thread ends by itself right after.)
pub(crate) struct Resolver {
    requests: Option<UnboundedSender<Request>>,
    thread: Option<JoinHandle<()>>,
}

/// One lookup on its way to the resolver thread.
struct Request {
    port: u16,
    family: Family,
    /// `None`: the deadline is too far away to represent; no deadline.
    deadline: Option<Instant>,
    reply: Pending,
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

impl Resolver {
    /// Builds the runtime and the hickory resolver for `cfg` (reading the system
    /// configuration if it asks for it) and spawns the thread "wireloop-dns".
    pub(crate) fn start(cfg: &ResolverConfig) -> io::Result<Resolver> {
        let (config, opts) = cfg.hickory();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()?;
        let resolver = {
            let _context = runtime.enter();
            let mut builder =
                TokioResolver::builder_with_config(config, TokioRuntimeProvider::default());
            *builder.options_mut() = opts;
            builder
                .build()
                .map_err(|e| io::Error::other(format!("DNS resolver: {e}")))?
        };
        let (requests, incoming) = mpsc::unbounded_channel();
        let thread = thread::Builder::new()
            .name("wireloop-dns".to_string())
            .spawn(move || run(runtime, resolver, incoming))?;
        Ok(Resolver {
            requests: Some(requests),
            thread: Some(thread),
        })
    }

    /// Resolves `host` for `port`, keeping only addresses of `family`, and answers through
    /// `reply` exactly once, within `deadline` (measured from now; a
    /// [`ResolveError::Timeout`] when it passes).
    ///
    /// `host` is a DNS name (search domains of the system configuration apply to names that
    /// are not fully qualified); an IP literal (also bracketed IPv6) is answered as itself,
    /// or `NotFound` if it is not of `family`. Never blocks: the lookup runs as a task of its
    /// own on the resolver thread, which calls `reply`. If the thread is gone (it panicked),
    /// `reply` is called right here, on the caller's thread, with `Failed` "resolver stopped".
    pub(crate) fn resolve(
        &self,
        host: &str,
        port: u16,
        family: Family,
        deadline: Duration,
        reply: Reply,
    ) {
        let request = Request {
            port,
            family,
            deadline: Instant::now().checked_add(deadline),
            reply: Pending {
                host: host.to_string(),
                reply: Some(reply),
            },
        };
        let Some(requests) = &self.requests else {
            return; // Only during drop; `request` answers "resolver stopped" as it drops.
        };
        if let Err(mpsc::error::SendError(request)) = requests.send(request) {
            request.reply.send(Err(ResolveError::Failed {
                host: host.to_string(),
                reason: STOPPED.to_string(),
            }));
        }
    }
}

impl Drop for Resolver {
    fn drop(&mut self) {
        // Closing the channel ends the thread's request loop; it then drops its runtime and
        // with it every task still pending (each answering "resolver stopped").
        self.requests = None;
        if let Some(thread) = self.thread.take() {
            if thread.thread().id() != thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}

/// The resolver thread: spawns a task per request until the channel closes.
fn run(
    runtime: tokio::runtime::Runtime,
    resolver: TokioResolver,
    mut incoming: UnboundedReceiver<Request>,
) {
    let resolver = Arc::new(resolver);
    runtime.block_on(async {
        while let Some(request) = incoming.recv().await {
            tokio::spawn(answer(resolver.clone(), request));
        }
    });
    // Drops the pending tasks, whose `Pending` replies answer "resolver stopped".
    drop(runtime);
}

/// Performs one lookup and sends its answer.
async fn answer(resolver: Arc<TokioResolver>, request: Request) {
    let Request {
        port,
        family,
        deadline,
        reply,
    } = request;
    let result = lookup(&resolver, &reply.host, family, deadline)
        .await
        .map(|ips| {
            ips.into_iter()
                .map(|ip| SocketAddr::new(ip, port))
                .collect()
        })
        .map_err(|failure| failure.into_error(&reply.host));
    reply.send(result);
}

/// Why a lookup failed, before the host name is attached.
#[derive(Debug)]
enum Failure {
    NotFound,
    Timeout,
    Failed(String),
}

impl Failure {
    fn into_error(self, host: &str) -> ResolveError {
        let host = host.to_string();
        match self {
            Failure::NotFound => ResolveError::NotFound { host },
            Failure::Timeout => ResolveError::Timeout { host },
            Failure::Failed(reason) => ResolveError::Failed { host, reason },
        }
    }

    /// How much a failure says, for choosing between the A and AAAA lookups' failures.
    fn rank(&self) -> u8 {
        match self {
            Failure::NotFound => 0,
            Failure::Timeout => 1,
            Failure::Failed(_) => 2,
        }
    }

    fn from_net(e: &NetError) -> Failure {
        if e.is_nx_domain() || e.is_no_records_found() {
            return Failure::NotFound;
        }
        match e {
            NetError::Timeout => Failure::Timeout,
            NetError::Io(io) if io.kind() == io::ErrorKind::TimedOut => Failure::Timeout,
            other => Failure::Failed(other.to_string()),
        }
    }
}

/// The addresses of `host` of `family`, deduplicated, in the order described in the module
/// documentation.
async fn lookup(
    resolver: &TokioResolver,
    host: &str,
    family: Family,
    deadline: Option<Instant>,
) -> Result<Vec<IpAddr>, Failure> {
    let literal = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = literal.parse::<IpAddr>() {
        return if family.accepts(ip) {
            Ok(vec![ip])
        } else {
            Err(Failure::NotFound)
        };
    }
    if host.is_empty() {
        return Err(Failure::Failed("empty host name".to_string()));
    }
    let name = host
        .into_name()
        .map_err(|e| Failure::Failed(format!("invalid host name: {e}")))?;
    let ips = match family {
        Family::V4 => lookup_type(resolver, name, RecordType::A, deadline).await?,
        Family::V6 => lookup_type(resolver, name, RecordType::AAAA, deadline).await?,
        Family::Any => {
            let (v6, v4) = tokio::join!(
                lookup_type(resolver, name.clone(), RecordType::AAAA, deadline),
                lookup_type(resolver, name, RecordType::A, deadline),
            );
            match (v6, v4) {
                (Ok(v6), Ok(v4)) => interleave(v6, v4),
                (Ok(ips), Err(_)) | (Err(_), Ok(ips)) => ips,
                (Err(a), Err(b)) => return Err(if b.rank() > a.rank() { b } else { a }),
            }
        }
    };
    Ok(dedup(ips))
}

/// One query type's addresses, bounded by `deadline`.
async fn lookup_type(
    resolver: &TokioResolver,
    name: Name,
    rtype: RecordType,
    deadline: Option<Instant>,
) -> Result<Vec<IpAddr>, Failure> {
    let query = resolver.lookup(name, rtype);
    let result = match deadline {
        Some(deadline) => {
            match tokio::time::timeout_at(tokio::time::Instant::from_std(deadline), query).await {
                Ok(result) => result,
                Err(_elapsed) => return Err(Failure::Timeout),
            }
        }
        None => query.await,
    };
    let lookup = result.map_err(|e| Failure::from_net(&e))?;
    let ips: Vec<IpAddr> = lookup
        .answers()
        .iter()
        .filter_map(|record| match (&record.data, rtype) {
            (RData::A(a), RecordType::A) => Some(IpAddr::V4(a.0)),
            (RData::AAAA(aaaa), RecordType::AAAA) => Some(IpAddr::V6(aaaa.0)),
            _ => None, // CNAMEs on the way, records of another type.
        })
        .collect();
    if ips.is_empty() {
        return Err(Failure::NotFound);
    }
    Ok(ips)
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

#[cfg(test)]
#[path = "../tests/common/dns.rs"]
mod test_dns;

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::test_dns::TestDns;
    use super::*;

    /// Bound on any wait in these tests.
    const WAIT: Duration = Duration::from_secs(15);

    type Answer = Result<Vec<SocketAddr>, ResolveError>;

    fn resolve(r: &Resolver, host: &str, family: Family, deadline: Duration) -> Answer {
        let (tx, rx) = mpsc::channel();
        r.resolve(
            host,
            80,
            family,
            deadline,
            Box::new(move |a| drop(tx.send(a))),
        );
        rx.recv_timeout(WAIT).expect("no answer")
    }

    fn with_dns() -> (TestDns, Resolver) {
        let dns = TestDns::start();
        dns.add_a("v4.test.", Ipv4Addr::new(10, 0, 0, 4));
        dns.add_aaaa("v6.test.", Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 6));
        dns.add_a("both.test", Ipv4Addr::new(10, 0, 0, 1));
        dns.add_a("both.test", Ipv4Addr::new(10, 0, 0, 2));
        dns.add_a("both.test", Ipv4Addr::new(10, 0, 0, 1));
        dns.add_aaaa("both.test", Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1));
        dns.set_silent("silent.test");
        let cfg = ResolverConfig::nameservers([dns.addr()]);
        let resolver = Resolver::start(&cfg).expect("start resolver");
        (dns, resolver)
    }

    fn addrs(ips: &[IpAddr]) -> Vec<SocketAddr> {
        ips.iter().map(|ip| SocketAddr::new(*ip, 80)).collect()
    }

    fn not_found(host: &str) -> Answer {
        Err(ResolveError::NotFound {
            host: host.to_string(),
        })
    }

    #[test]
    fn families() {
        let (_dns, r) = with_dns();
        let d = Duration::from_secs(5);
        let v4: IpAddr = Ipv4Addr::new(10, 0, 0, 4).into();
        let v6: IpAddr = "fd00::6".parse().unwrap();
        assert_eq!(resolve(&r, "v4.test", Family::V4, d), Ok(addrs(&[v4])));
        assert_eq!(resolve(&r, "V4.Test.", Family::Any, d), Ok(addrs(&[v4])));
        assert_eq!(resolve(&r, "v4.test", Family::V6, d), not_found("v4.test"));
        assert_eq!(resolve(&r, "v6.test", Family::V6, d), Ok(addrs(&[v6])));
        assert_eq!(resolve(&r, "v6.test", Family::Any, d), Ok(addrs(&[v6])));
        assert_eq!(resolve(&r, "v6.test", Family::V4, d), not_found("v6.test"));
        let both = resolve(&r, "both.test", Family::Any, d);
        let expected = ["fd00::1", "10.0.0.1", "10.0.0.2"].map(|s| s.parse().unwrap());
        assert_eq!(
            both,
            Ok(addrs(&expected)),
            "interleaved, v6 first, deduplicated"
        );
        let both4 = resolve(&r, "both.test", Family::V4, d);
        assert_eq!(both4, Ok(addrs(&expected[1..])));
        assert_eq!(
            resolve(&r, "nope.test", Family::Any, d),
            not_found("nope.test")
        );
        assert_eq!(
            resolve(&r, "nope.test", Family::V4, d),
            not_found("nope.test")
        );
    }

    #[test]
    fn literals_and_bad_names() {
        let (dns, r) = with_dns();
        let d = Duration::from_secs(5);
        let one: IpAddr = Ipv4Addr::new(192, 0, 2, 1).into();
        assert_eq!(resolve(&r, "192.0.2.1", Family::Any, d), Ok(addrs(&[one])));
        assert_eq!(
            resolve(&r, "192.0.2.1", Family::V6, d),
            not_found("192.0.2.1")
        );
        let v6 = resolve(&r, "[::1]", Family::V6, d);
        assert_eq!(v6, Ok(addrs(&[Ipv6Addr::LOCALHOST.into()])));
        assert!(matches!(
            resolve(&r, "", Family::Any, d),
            Err(ResolveError::Failed { .. })
        ));
        let long = format!("{}.test", "x".repeat(70));
        let bad = resolve(&r, &long, Family::Any, d);
        assert!(matches!(bad, Err(ResolveError::Failed { .. })), "{bad:?}");
        assert_eq!(dns.queries(), 0, "none of these reaches the server");
    }

    #[test]
    fn silent_name_times_out_within_deadline() {
        let (dns, r) = with_dns();
        let start = Instant::now();
        let answer = resolve(&r, "silent.test", Family::Any, Duration::from_millis(300));
        let took = start.elapsed();
        assert_eq!(
            answer,
            Err(ResolveError::Timeout {
                host: "silent.test".to_string()
            })
        );
        assert!(took >= Duration::from_millis(300), "{took:?}");
        assert!(took < Duration::from_millis(1300), "{took:?}");
        assert!(dns.queries() >= 1);
    }

    #[test]
    fn hickory_timeouts_map_to_timeout() {
        let dns = TestDns::start();
        dns.set_silent("silent.test");
        let cfg = ResolverConfig::nameservers([dns.addr()])
            .timeout(Duration::from_millis(100))
            .attempts(2);
        let r = Resolver::start(&cfg).expect("start resolver");
        let start = Instant::now();
        let answer = resolve(&r, "silent.test", Family::V4, Duration::from_secs(10));
        assert!(
            matches!(answer, Err(ResolveError::Timeout { .. })),
            "{answer:?}"
        );
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn many_concurrent_lookups() {
        let (dns, r) = with_dns();
        for i in 0..200 {
            dns.add_a(
                &format!("h{i}.test"),
                Ipv4Addr::new(10, 1, (i / 256) as u8, i as u8),
            );
        }
        let (tx, rx) = mpsc::channel();
        let start = Instant::now();
        for i in 0..200usize {
            let tx = tx.clone();
            let family = if i % 2 == 0 { Family::V4 } else { Family::Any };
            r.resolve(
                &format!("h{i}.test"),
                1000 + i as u16,
                family,
                Duration::from_secs(10),
                Box::new(move |a| {
                    drop(tx.send((i, a, thread::current().name().map(String::from))))
                }),
            );
        }
        let mut seen = [false; 200];
        for _ in 0..200 {
            let (i, answer, thread) = rx.recv_timeout(WAIT).expect("answer");
            let ip = IpAddr::from(Ipv4Addr::new(10, 1, (i / 256) as u8, i as u8));
            assert_eq!(answer, Ok(vec![SocketAddr::new(ip, 1000 + i as u16)]));
            assert_eq!(thread.as_deref(), Some("wireloop-dns"));
            assert!(!seen[i], "answered twice");
            seen[i] = true;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
        assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());
    }

    #[test]
    fn drop_joins_promptly_and_answers_pending() {
        let (_dns, r) = with_dns();
        let (tx, rx) = mpsc::channel();
        for _ in 0..5 {
            let tx = tx.clone();
            r.resolve(
                "silent.test",
                80,
                Family::Any,
                Duration::from_secs(30),
                Box::new(move |a| drop(tx.send(a))),
            );
        }
        thread::sleep(Duration::from_millis(100));
        let start = Instant::now();
        drop(r);
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "{:?}",
            start.elapsed()
        );
        for _ in 0..5 {
            let answer = rx.recv_timeout(Duration::from_millis(100)).expect("answer");
            assert_eq!(
                answer,
                Err(ResolveError::Failed {
                    host: "silent.test".to_string(),
                    reason: "resolver stopped".to_string()
                })
            );
        }
    }

    #[test]
    fn drop_on_own_thread_does_not_deadlock() {
        let (_dns, r) = with_dns();
        let shared = Arc::new(std::sync::Mutex::new(Some(r)));
        let (tx, rx) = mpsc::channel();
        let inner = shared.clone();
        let guard = shared.lock().unwrap();
        guard.as_ref().unwrap().resolve(
            "v4.test",
            80,
            Family::V4,
            Duration::from_secs(5),
            Box::new(move |a| {
                drop(inner.lock().unwrap().take()); // The resolver drops on its own thread.
                drop(tx.send(a));
            }),
        );
        drop(guard);
        assert!(rx.recv_timeout(WAIT).expect("answer").is_ok());
    }

    #[test]
    fn system_config_resolves_localhost_without_network() {
        let r = Resolver::start(&ResolverConfig::system()).expect("start resolver");
        let d = Duration::from_secs(5);
        let v4 = resolve(&r, "localhost", Family::V4, d).expect("localhost");
        assert!(
            v4.contains(&SocketAddr::from(([127, 0, 0, 1], 80))),
            "{v4:?}"
        );
        assert!(v4.iter().all(|a| a.is_ipv4()));
        let any = resolve(&r, "localhost", Family::Any, d).expect("localhost");
        assert!(any.iter().all(|a| a.ip().is_loopback()), "{any:?}");
        assert!(any.iter().any(|a| a.is_ipv4()), "{any:?}");
    }

    #[test]
    fn config_defaults() {
        let cfg = ResolverConfig::default();
        assert!(matches!(cfg.source, Source::System));
        assert_eq!((cfg.timeout, cfg.attempts), (Duration::from_secs(2), 2));
        let cfg = ResolverConfig::nameservers([]).attempts(0);
        assert_eq!(cfg.attempts, 1);
    }

    #[test]
    fn fallback_is_the_local_nameserver() {
        let (config, opts) = fallback_conf();
        let servers: Vec<(IpAddr, Vec<u16>)> = config
            .name_servers()
            .iter()
            .map(|s| (s.ip, s.connections.iter().map(|c| c.port).collect()))
            .collect();
        let local4 = IpAddr::from(Ipv4Addr::LOCALHOST);
        let local6 = IpAddr::from(Ipv6Addr::LOCALHOST);
        assert_eq!(servers, [(local4, vec![53, 53]), (local6, vec![53, 53])]);
        assert_eq!(opts.use_hosts_file, ResolveHosts::Always);
    }

    #[test]
    fn resolver_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Resolver>();
        check::<ResolverConfig>();
    }

    #[test]
    fn no_nameservers_fails() {
        let r = Resolver::start(&ResolverConfig::nameservers([])).expect("start resolver");
        let answer = resolve(&r, "a.test", Family::Any, Duration::from_secs(5));
        assert!(
            matches!(answer, Err(ResolveError::Failed { .. })),
            "{answer:?}"
        );
    }

    #[test]
    fn interleave_and_dedup() {
        let ip = |n: u8| IpAddr::from([10, 0, 0, n]);
        let out = interleave(vec![ip(1), ip(2), ip(3)], vec![ip(4)]);
        assert_eq!(out, [ip(1), ip(4), ip(2), ip(3)]);
        assert_eq!(
            dedup(vec![ip(1), ip(2), ip(1), ip(2), ip(3)]),
            [ip(1), ip(2), ip(3)]
        );
    }

    #[test]
    fn display_names_the_host() {
        let e = ResolveError::Failed {
            host: "x.test".to_string(),
            reason: "boom".to_string(),
        };
        assert_eq!(e.to_string(), "cannot resolve \"x.test\": boom");
        let e = ResolveError::Timeout {
            host: "x.test".to_string(),
        };
        assert!(e.to_string().contains("x.test"));
    }
}
