//! The resolver thread without the `dns` feature: no async runtime. IP literals and
//! `localhost` are answered at once, names in `/etc/hosts` from it (read at each lookup),
//! and any other name by the C library (`getaddrinfo`, through std's `ToSocketAddrs`) on a
//! short-lived thread of its own. The resolver thread keeps every lookup's deadline and
//! answers `Timeout` when it passes; an answer that comes later is dropped.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, ToSocketAddrs};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::{
    dedup, interleave, ip_literal, Family, Reply, Request, ResolveError, ResolverConfig, STOPPED,
};

/// What the resolver thread receives.
enum Msg {
    Lookup(Request),
    /// A `getaddrinfo` thread's answer for lookup `id`.
    Done(u64, Result<Vec<IpAddr>, String>),
    Stop,
}

/// The resolver thread (see the module documentation). Dropping it stops the thread, which
/// answers every pending lookup "resolver stopped".
pub(crate) struct Resolver {
    requests: Sender<Msg>,
    thread: Option<JoinHandle<()>>,
}

impl Resolver {
    /// Spawns the thread "wireloop-dns". The config's timeout and attempts are the C
    /// library's business here (resolv.conf's `options`).
    pub(crate) fn start(_cfg: &ResolverConfig) -> io::Result<Resolver> {
        let (requests, incoming) = mpsc::channel();
        let done = requests.clone();
        let thread = thread::Builder::new()
            .name("wireloop-dns".to_string())
            .spawn(move || run(incoming, done))?;
        Ok(Resolver {
            requests,
            thread: Some(thread),
        })
    }

    /// Resolves `host` for `port`, keeping addresses of `family`, and answers through
    /// `reply` exactly once, within `deadline` (a `Timeout` when it passes). If the thread
    /// is gone, `reply` is called here with `Failed` "resolver stopped".
    pub(crate) fn resolve(
        &self,
        host: &str,
        port: u16,
        family: Family,
        deadline: Duration,
        reply: Reply,
    ) {
        let request = Request::new(host, port, family, deadline, reply);
        if let Err(mpsc::SendError(Msg::Lookup(request))) = self.requests.send(Msg::Lookup(request))
        {
            request.reply.send(Err(ResolveError::Failed {
                host: host.to_string(),
                reason: STOPPED.to_string(),
            }));
        }
    }
}

impl Drop for Resolver {
    fn drop(&mut self) {
        let _ = self.requests.send(Msg::Stop);
        if let Some(thread) = self.thread.take() {
            if thread.thread().id() != thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}

/// The resolver thread's loop: lookups in, answers out, deadlines kept.
fn run(incoming: Receiver<Msg>, done: Sender<Msg>) {
    let mut pending: HashMap<u64, Request> = HashMap::new();
    let mut deadlines: BinaryHeap<Reverse<(Instant, u64)>> = BinaryHeap::new();
    let mut next_id = 0u64;
    loop {
        let msg = match deadlines.peek() {
            Some(Reverse((at, _))) => {
                incoming.recv_timeout(at.saturating_duration_since(Instant::now()))
            }
            None => incoming.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match msg {
            Ok(Msg::Lookup(request)) => {
                if request.reply.host.is_empty() {
                    answer(request, Err("empty host name".to_string()));
                    continue;
                }
                match immediate(&request.reply.host, request.family) {
                    Some(ips) => answer(request, Ok(ips)),
                    None => {
                        next_id += 1;
                        let id = next_id;
                        let host = request.reply.host.clone();
                        let tx = done.clone();
                        let spawned = thread::Builder::new()
                            .name("wireloop-dns-lookup".to_string())
                            .spawn(move || drop(tx.send(Msg::Done(id, getaddrinfo(&host)))));
                        if let Err(e) = spawned {
                            answer(request, Err(format!("cannot start a lookup: {e}")));
                            continue;
                        }
                        if let Some(at) = request.deadline {
                            deadlines.push(Reverse((at, id)));
                        }
                        pending.insert(id, request);
                    }
                }
            }
            Ok(Msg::Done(id, result)) => {
                if let Some(request) = pending.remove(&id) {
                    answer(request, result);
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                let now = Instant::now();
                while let Some(Reverse((at, id))) = deadlines.peek().copied() {
                    if at > now {
                        break;
                    }
                    deadlines.pop();
                    if let Some(request) = pending.remove(&id) {
                        let host = request.reply.host.clone();
                        request.reply.send(Err(ResolveError::Timeout { host }));
                    }
                }
            }
            // Dropping `pending` answers every lookup left "resolver stopped".
            Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// The loopback addresses for `localhost` and names under it (RFC 6761), which are never
/// looked up.
fn localhost(host: &str) -> Option<Vec<IpAddr>> {
    let h = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    if h == "localhost" || h.ends_with(".localhost") {
        Some(vec![Ipv6Addr::LOCALHOST.into(), Ipv4Addr::LOCALHOST.into()])
    } else {
        None
    }
}

/// Sends `result`, filtered to the request's family, in the module's order.
fn answer(request: Request, result: Result<Vec<IpAddr>, String>) {
    let host = request.reply.host.clone();
    let reply = match result {
        Err(reason) if reason == NOT_FOUND => Err(ResolveError::NotFound { host }),
        Err(reason) => Err(ResolveError::Failed { host, reason }),
        Ok(ips) => {
            let (v6, v4): (Vec<IpAddr>, Vec<IpAddr>) = ips
                .into_iter()
                .filter(|ip| request.family.accepts(*ip))
                .partition(|ip| ip.is_ipv6());
            let ips = dedup(interleave(v6, v4));
            if ips.is_empty() {
                Err(ResolveError::NotFound { host })
            } else {
                let port = request.port;
                Ok(ips.into_iter().map(|ip| (ip, port).into()).collect())
            }
        }
    };
    request.reply.send(reply);
}

/// The reason `getaddrinfo` gives for a name with no address, normalised.
const NOT_FOUND: &str = "not found";

/// What needs no lookup: an IP literal, `localhost`, a name in `/etc/hosts` with an
/// address of `family`.
fn immediate(host: &str, family: Family) -> Option<Vec<IpAddr>> {
    if let Some(ip) = ip_literal(host) {
        return Some(vec![ip]);
    }
    if let Some(ips) = localhost(host) {
        return Some(ips);
    }
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    let ips = hosts_lookup(&hosts, host);
    ips.iter().any(|ip| family.accepts(*ip)).then_some(ips)
}

/// The addresses `hosts` (the text of an `/etc/hosts`) gives `name`.
fn hosts_lookup(hosts: &str, name: &str) -> Vec<IpAddr> {
    let name = name.strip_suffix('.').unwrap_or(name);
    let mut ips = Vec::new();
    for line in hosts.lines() {
        let line = line.split('#').next().unwrap_or_default();
        let mut words = line.split_whitespace();
        let Some(ip) = words.next().and_then(|w| w.parse::<IpAddr>().ok()) else {
            continue;
        };
        if words.any(|w| w.eq_ignore_ascii_case(name)) {
            ips.push(ip);
        }
    }
    ips
}

/// The C library's answer for `host` (blocking: runs on a thread of its own).
fn getaddrinfo(host: &str) -> Result<Vec<IpAddr>, String> {
    match (host, 0u16).to_socket_addrs() {
        Ok(addrs) => Ok(addrs.map(|a| a.ip()).collect()),
        Err(e) => {
            let msg = e.to_string();
            let gone = ["not known", "No address associated", "no address"];
            if gone.iter().any(|g| msg.contains(g)) {
                Err(NOT_FOUND.to_string())
            } else {
                Err(msg)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::super::resolve_blocking;
    use super::*;

    type Answer = Result<Vec<SocketAddr>, ResolveError>;

    fn resolve(r: &Resolver, host: &str, family: Family, deadline: Duration) -> Answer {
        resolve_blocking(r, host, family, deadline)
    }

    #[test]
    fn literals_localhost_and_failures_without_dns() {
        let r = Resolver::start(&ResolverConfig::system()).expect("start");
        let d = Duration::from_secs(5);
        let at = |s: &str| vec![s.parse::<SocketAddr>().unwrap()];
        assert_eq!(
            resolve(&r, "10.0.0.1", Family::Any, d),
            Ok(at("10.0.0.1:80"))
        );
        assert_eq!(resolve(&r, "[::1]", Family::V6, d), Ok(at("[::1]:80")));
        let nf = |h: &str| {
            Err(ResolveError::NotFound {
                host: h.to_string(),
            })
        };
        assert_eq!(resolve(&r, "[::1]", Family::V4, d), nf("[::1]"));
        assert_eq!(
            resolve(&r, "LocalHost.", Family::V4, d),
            Ok(at("127.0.0.1:80"))
        );
        assert_eq!(
            resolve(&r, "a.localhost", Family::Any, d),
            Ok([at("[::1]:80"), at("127.0.0.1:80")].concat())
        );
        assert!(matches!(
            resolve(&r, "", Family::Any, d),
            Err(ResolveError::Failed { .. })
        ));
        // A name nobody has: some error (no such host, or the deadline when the system's
        // nameserver does not answer), within the deadline.
        let start = Instant::now();
        let got = resolve(
            &r,
            "no-such-host.invalid",
            Family::Any,
            Duration::from_secs(2),
        );
        assert!(got.is_err(), "{got:?}");
        assert!(
            start.elapsed() < Duration::from_secs(4),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn dropping_the_resolver_stops_its_thread() {
        let r = Resolver::start(&ResolverConfig::system()).expect("start");
        let d = Duration::from_secs(5);
        assert!(resolve(&r, "127.0.0.1", Family::Any, d).is_ok());
        drop(r); // joins the thread: a hang here fails the test run
    }

    #[test]
    fn hosts_file_lines() {
        let hosts = "127.0.0.1 localhost\n# 10.0.0.9 gone\n10.0.0.1 app App.local # c\n\
                     fd00::1 app\nnot-an-ip app\n";
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(hosts_lookup(hosts, "APP"), [ip("10.0.0.1"), ip("fd00::1")]);
        assert_eq!(hosts_lookup(hosts, "app.local."), [ip("10.0.0.1")]);
        assert!(hosts_lookup(hosts, "gone").is_empty());
    }
}
