//! The resolver thread with the `dns` feature: hickory-resolver on a tokio
//! `current_thread` runtime, a task per lookup.

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

use super::{
    dedup, interleave, ip_literal, Family, Reply, Request, ResolveError, ResolverConfig, Source,
    STOPPED,
};

impl ResolverConfig {
    /// The hickory configuration and options for this config.
    pub(super) fn hickory(&self) -> (HickoryConfig, ResolverOpts) {
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

/// Reads `/etc/resolv.conf`, falling back (with a warning) to [`fallback_conf`].
fn system_conf() -> (HickoryConfig, ResolverOpts) {
    match hickory_resolver::system_conf::read_system_conf() {
        Ok(conf) => conf,
        Err(e) => {
            warn!(
                "DNS: cannot use /etc/resolv.conf ({e}); using the local nameserver \
                 (127.0.0.1:53, [::1]:53) with default options"
            );
            fallback_conf()
        }
    }
}

/// What the C library assumes without a usable resolv.conf: the local nameserver, plus
/// `/etc/hosts`, with hickory's default options.
pub(super) fn fallback_conf() -> (HickoryConfig, ResolverOpts) {
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
        let request = Request::new(host, port, family, deadline, reply);
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
    if let Some(ip) = ip_literal(host) {
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
