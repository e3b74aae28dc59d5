//! Upstream groups: named sets of weighted peers with a balancer, health (passive: a
//! peer that keeps failing is avoided for a while; active: optional checks, see
//! [`health`](crate::health)) and, per peer, the keep-alive pool of idle connections
//! and the requests waiting at its connection limit. One group value lives on each loop
//! (clone the configured one per loop): counters, pools and estimates are the loop's
//! own, so nothing is locked; only the verdicts of active checks are shared by the
//! clones, through atomics.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wireloop::ConnId;

use crate::ClientId;
use wireloop_middleware::proxy_protocol::Version;
use wireloop_middleware::TlsClient;

use crate::balance::{Balance, Balancer, PeerLoad};
use crate::budget::{Budget, RetryBudget};
use crate::health::{Checker, HealthCheck, SharedHealth, Verdict};
use crate::key::HashKey;
use crate::peer::Peer;

/// Most peers in a group (a retry skips the peers already tried, tracked in 64 bits).
pub const MAX_PEERS: usize = 64;

/// Peer `i`'s bit in a set of tried peers (none beyond [`MAX_PEERS`]).
pub(crate) fn peer_bit(i: usize) -> u64 {
    if i < MAX_PEERS {
        1 << i
    } else {
        0
    }
}

/// Idle connections and waiting requests of one peer on this loop.
#[derive(Clone, Debug, Default)]
pub struct Pool {
    /// Idle keep-alive connections, most recently used last.
    pub idle: Vec<ConnId>,
    /// Client exchanges waiting for a connection (the peer is at its limit).
    pub waiting: VecDeque<ClientId>,
    /// HTTP/2 connections open to the peer (each carries many exchanges at once).
    pub h2: Vec<ConnId>,
}

/// The protocol a group's peers are spoken to in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UpstreamProtocol {
    /// HTTP/1.1: one exchange per connection at a time, idle connections pooled.
    #[default]
    Http1,
    /// HTTP/2: ALPN `h2` to an `https` peer, prior knowledge (h2c) to a plain one; many
    /// exchanges at once on each connection, up to the peer's concurrent-stream limit,
    /// so a few connections carry many clients' requests.
    H2,
}

impl UpstreamProtocol {
    /// `"http1"` (also `"http/1.1"`) or `"h2"` (also `"http2"`).
    pub fn parse(s: &str) -> Result<UpstreamProtocol, String> {
        match s {
            "http1" | "http/1.1" => Ok(UpstreamProtocol::Http1),
            "h2" | "http2" => Ok(UpstreamProtocol::H2),
            other => Err(format!(
                "protocol must be \"http1\" or \"h2\", not {other:?}"
            )),
        }
    }

    /// The ALPN protocol offered to an `https` peer.
    pub fn alpn(self) -> &'static [u8] {
        match self {
            UpstreamProtocol::Http1 => b"http/1.1",
            UpstreamProtocol::H2 => b"h2",
        }
    }
}

/// A named group of peers.
#[derive(Clone, Debug)]
pub struct Group {
    name: String,
    peers: Vec<Peer>,
    load: Vec<PeerLoad>,
    pools: Vec<Pool>,
    balance: Balance,
    balancer: Balancer,
    hash_key: HashKey,
    budget: Budget,
    /// Active checks: what they do, their shared verdicts, and (on the loop that runs
    /// them) their state.
    check: Option<HealthCheck>,
    shared: Option<Arc<SharedHealth>>,
    checker: Option<Checker>,
    /// A PROXY protocol header naming the client starts every connection to its peers.
    send_proxy: Option<Version>,
    protocol: UpstreamProtocol,
}

impl Group {
    /// A group `name` of `peers` spread by `balance`. At least one peer and at most
    /// [`MAX_PEERS`]. An `https` peer without a TLS client of its own gets one for its
    /// host name (webpki roots, ALPN `http/1.1`), so it is never dialed in the clear;
    /// without the `webpki-roots` feature that is an error (give the peer its own
    /// [`Peer::tls`] with `root_ca_pem`).
    pub fn new(name: &str, mut peers: Vec<Peer>, balance: Balance) -> Result<Group, String> {
        for p in peers.iter_mut().filter(|p| p.https && p.tls.is_none()) {
            let tls = TlsClient::builder()
                .server_name(&p.host)
                .alpn(&[b"http/1.1"])
                .build()
                .map_err(|e| format!("{}: {e}", p.url))?;
            p.tls = Some(tls);
            p.default_tls = true;
        }
        if peers.is_empty() {
            return Err(format!("upstream group {name:?} has no peers"));
        }
        if peers.len() > MAX_PEERS {
            return Err(format!(
                "upstream group {name:?} has {} peers (at most {MAX_PEERS})",
                peers.len()
            ));
        }
        let balancer = Balancer::new(&balance, peers.iter().map(|p| (p.dial.as_str(), p.weight)));
        Ok(Group {
            name: name.to_string(),
            load: peers.iter().map(|p| PeerLoad::new(p.weight)).collect(),
            pools: vec![Pool::default(); peers.len()],
            peers,
            balance,
            balancer,
            hash_key: HashKey::default(),
            budget: Budget::new(RetryBudget::default()),
            check: None,
            shared: None,
            checker: None,
            send_proxy: None,
            protocol: UpstreamProtocol::Http1,
        })
    }

    /// Checks the peers actively with `check` (see [`health`](crate::health)). Clones
    /// made after this share the verdicts; one loop runs the checks.
    pub fn with_health_check(mut self, check: HealthCheck) -> Result<Group, String> {
        check
            .validate()
            .map_err(|e| format!("upstream group {:?}: {e}", self.name))?;
        self.shared = Some(Arc::new(SharedHealth::new(self.peers.len())));
        self.check = Some(check);
        self.checker = None;
        Ok(self)
    }

    /// Starts every connection to the group's peers with a PROXY protocol header of
    /// `version` naming the client (the one a received header named, if any) and the
    /// address it connected to. Such a connection carries one client's requests only:
    /// it is not pooled for others (as haproxy's `send-proxy` makes a connection
    /// private).
    pub fn with_send_proxy(mut self, version: Version) -> Group {
        self.send_proxy = Some(version);
        self
    }

    /// Speaks `protocol` to the peers. An `https` peer whose TLS client the group made
    /// (see [`new`](Group::new)) gets one offering the protocol's ALPN; a peer given its
    /// own must offer it (`h2` for [`UpstreamProtocol::H2`]).
    pub fn with_protocol(mut self, protocol: UpstreamProtocol) -> Result<Group, String> {
        if protocol != self.protocol {
            for p in self.peers.iter_mut().filter(|p| p.https && p.default_tls) {
                let tls = TlsClient::builder()
                    .server_name(&p.host)
                    .alpn(&[protocol.alpn()])
                    .build()
                    .map_err(|e| format!("{}: {e}", p.url))?;
                p.tls = Some(tls);
            }
        }
        self.protocol = protocol;
        Ok(self)
    }

    /// The protocol spoken to the peers.
    pub fn protocol(&self) -> UpstreamProtocol {
        self.protocol
    }

    /// The PROXY protocol version its connections start with, if any.
    pub fn send_proxy(&self) -> Option<Version> {
        self.send_proxy
    }

    /// Its active health check, if it has one.
    pub fn health_check(&self) -> Option<&HealthCheck> {
        self.check.as_ref()
    }

    /// Sets how many retries the group allows (default [`RetryBudget::default`]: 20 % of
    /// its requests plus 10 a second, per loop).
    pub fn with_retry_budget(mut self, budget: RetryBudget) -> Group {
        self.budget = Budget::new(budget);
        self
    }

    /// Its retry budget.
    pub fn retry_budget(&self) -> &RetryBudget {
        self.budget.config()
    }

    /// A request was sent to the group (it adds to the retry budget).
    pub(crate) fn count_request(&mut self) {
        self.budget.deposit();
    }

    /// Whether the retry budget allows a retry at `now`.
    pub(crate) fn retry_allowed(&mut self, now: Instant) -> bool {
        self.budget.available(now)
    }

    /// Spends a retry of the budget at `now`; `false` if it is spent.
    pub(crate) fn spend_retry(&mut self, now: Instant) -> bool {
        self.budget.withdraw(now)
    }

    /// Sets what consistent hashing hashes (with [`Balance::Hash`]).
    pub fn with_hash_key(mut self, key: HashKey) -> Group {
        self.hash_key = key;
        self
    }

    /// The group's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its balancing mode.
    pub fn balance(&self) -> &Balance {
        &self.balance
    }

    /// What its hash key is made of.
    pub fn hash_key(&self) -> &HashKey {
        &self.hash_key
    }

    /// Its peers.
    pub fn peers(&self) -> &[Peer] {
        &self.peers
    }

    /// Peer `i`'s load on this loop.
    pub fn load(&self, i: usize) -> &PeerLoad {
        &self.load[i]
    }

    /// Peer `i`'s load, mutably.
    pub fn load_mut(&mut self, i: usize) -> &mut PeerLoad {
        &mut self.load[i]
    }

    /// Peer `i`'s pool on this loop.
    pub fn pool(&mut self, i: usize) -> &mut Pool {
        &mut self.pools[i]
    }

    /// All pools (to look for a connection or a waiting client).
    pub fn pools_mut(&mut self) -> &mut [Pool] {
        &mut self.pools
    }

    /// Whether peer `i` is healthy at `now`: not marked down by failures
    /// ([`record_failure`](Group::record_failure)) and not failing its active checks.
    pub fn is_healthy(&self, i: usize, now: Instant) -> bool {
        self.load.get(i).is_some_and(|l| l.is_up(now))
            && self.shared.as_ref().is_none_or(|s| s.is_healthy(i))
    }

    /// How many peers are healthy at `now`.
    pub fn healthy_count(&self, now: Instant) -> usize {
        (0..self.peers.len())
            .filter(|&i| self.is_healthy(i, now))
            .count()
    }

    /// Chooses a healthy peer for a request with hash `key` at `now`, skipping the peers
    /// in `tried` (bit `i` for peer `i`). `None` when no untried peer is healthy.
    pub fn pick(&mut self, key: u64, now: Instant, tried: u64) -> Option<usize> {
        let load = &self.load;
        let shared = self.shared.as_deref();
        let ok = |i: usize| {
            (i >= MAX_PEERS || tried & (1 << i) == 0)
                && load[i].is_up(now)
                && shared.is_none_or(|s| s.is_healthy(i))
        };
        self.balancer.pick(load, key, &ok)
    }

    /// Whether some peer is healthy at `now`.
    pub fn any_up(&self, now: Instant) -> bool {
        (0..self.peers.len()).any(|i| self.is_healthy(i, now))
    }

    /// Marks peer `i` down for `down_time` from `now`. `true` if it was up.
    pub fn mark_down(&mut self, i: usize, now: Instant, down_time: Duration) -> bool {
        let l = &mut self.load[i];
        let was_up = l.is_up(now);
        l.down_until = Some(now + down_time);
        was_up
    }

    /// Peer `i` failed at `now` (a connect failure, no response head in time): after
    /// `max_fails` failures in a row (0: never) it is marked down for `down_time`.
    /// `true` if that happened now. A group's only peer is never marked down (as in
    /// nginx): there is no other peer to send its requests to, and one slow request
    /// must not turn every other into a 503; active checks can still take it out.
    pub fn record_failure(
        &mut self,
        i: usize,
        now: Instant,
        max_fails: u32,
        down_time: Duration,
    ) -> bool {
        let l = &mut self.load[i];
        l.fails = l.fails.saturating_add(1);
        if max_fails == 0 || l.fails < max_fails || self.peers.len() == 1 {
            return false;
        }
        l.fails = 0;
        self.mark_down(i, now, down_time)
    }

    /// Peer `i` answered: its run of failures ends.
    pub fn record_success(&mut self, i: usize) {
        self.load[i].fails = 0;
    }

    /// The state of the group's active checks if loop `loop_index` runs them (the first
    /// loop to ask does, and keeps doing so); made at `now` on first use.
    pub fn checker(&mut self, loop_index: usize, now: Instant) -> Option<&mut Checker> {
        let check = self.check.as_ref()?;
        if !self.shared.as_ref()?.claim(loop_index) {
            return None;
        }
        let n = self.peers.len();
        Some(
            self.checker
                .get_or_insert_with(|| Checker::new(check.clone(), n, now)),
        )
    }

    /// Publishes an active check's verdict on peer `i` to every loop.
    pub fn publish(&self, i: usize, verdict: Verdict) {
        if let Some(s) = &self.shared {
            s.set(i, verdict == Verdict::Up);
        }
    }

    /// Records peer `i`'s time to first response byte (for p2c-ewma).
    /// Only `p2c-ewma` reads the estimate: other balancers skip its update (an `exp`
    /// per response).
    pub fn observe(&mut self, i: usize, rtt: Duration, now: Instant) {
        if matches!(self.balance, Balance::P2cEwma) {
            self.load[i].ewma.observe(rtt, now);
        }
    }

    /// Forgets client `id` wherever it waits; `true` if it was waiting.
    pub fn forget_waiting(&mut self, id: ClientId) -> bool {
        let mut found = false;
        for p in &mut self.pools {
            p.waiting.retain(|w| {
                found |= *w == id;
                *w != id
            });
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::balance::DEFAULT_RTT;

    #[test]
    fn only_p2c_ewma_keeps_latency_estimates() {
        let now = Instant::now();
        let peers = || vec![Peer::raw("127.0.0.1:1"), Peer::raw("127.0.0.1:2")];
        let mut rr = Group::new("rr", peers(), Balance::RoundRobin).unwrap();
        let mut p2c = Group::new("p2c", peers(), Balance::P2cEwma).unwrap();
        for g in [&mut rr, &mut p2c] {
            g.observe(1, Duration::from_millis(40), now);
        }
        let default = DEFAULT_RTT.as_nanos() as f64;
        assert_eq!(rr.load(1).ewma.nanos(), default);
        assert_eq!(p2c.load(1).ewma.nanos(), 40e6);
        assert_eq!(p2c.load(0).ewma.nanos(), default);
    }
}
