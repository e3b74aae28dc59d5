//! Per-client limits of the HTTP proxy: concurrent connections and a request rate per
//! client IP address (the one a PROXY protocol header named, if any).
//!
//! - **Connections per IP**: a client over the limit has its new connection closed at
//!   once, before any request (its other connections are untouched).
//! - **Requests per second per IP**: a token bucket per address that holds one second's
//!   worth of requests (the burst) and refills continuously; a request finding it empty
//!   is answered `429 Too Many Requests` with `Retry-After` (whole seconds until a token
//!   is there) and never reaches an upstream.
//!
//! The state is shared by every clone of a [`Limits`] (so by every loop of a server
//! whose proxies were made from one [`Settings`](crate::Settings)), behind one mutex
//! taken once per connection and once per request. It holds an entry per address with
//! a connection open or a bucket not yet full again, at most [`MAX_TRACKED`]: past that,
//! entries of quiet addresses are dropped, and if none is, new addresses are not limited
//! until some are (the limiter never grows without bound, nor refuses everyone).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Most client addresses tracked at once.
pub const MAX_TRACKED: usize = 100_000;

/// What one address has: open connections and its bucket.
#[derive(Clone, Copy, Debug)]
struct Entry {
    conns: u32,
    tokens: f64,
    refilled: Instant,
}

/// Per-client-IP limits (see the module docs). `Limits::default()` limits nothing.
#[derive(Clone, Debug, Default)]
pub struct Limits {
    /// Requests a second per client address (the bucket holds as many); `None`: no limit.
    pub requests_per_second_per_ip: Option<u32>,
    /// Connections open at once per client address; `None`: no limit.
    pub connections_per_ip: Option<u32>,
    state: Arc<Mutex<HashMap<IpAddr, Entry>>>,
}

impl Limits {
    /// Limits of `rate` requests a second and `conns` connections per client address.
    pub fn new(rate: Option<u32>, conns: Option<u32>) -> Limits {
        Limits {
            requests_per_second_per_ip: rate.filter(|&r| r > 0),
            connections_per_ip: conns.filter(|&c| c > 0),
            state: Arc::default(),
        }
    }

    /// Whether any limit is set.
    pub fn is_on(&self) -> bool {
        self.requests_per_second_per_ip.is_some() || self.connections_per_ip.is_some()
    }

    fn map(&self) -> MutexGuard<'_, HashMap<IpAddr, Entry>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A connection from `ip` opened at `now`: `Some(true)` if it is within the
    /// connection limit and was counted (call [`disconnected`](Limits::disconnected) when
    /// it closes), `Some(false)` if it is over the limit, `None` if it is let in without
    /// being counted (no connection limit, or the table is full of busy addresses).
    pub fn connected(&self, ip: IpAddr, now: Instant) -> Option<bool> {
        let max = self.connections_per_ip?;
        let burst = self.burst();
        let mut map = self.map();
        let e = entry(&mut map, ip, now, burst, self.requests_per_second_per_ip)?;
        if e.conns >= max {
            return Some(false);
        }
        e.conns += 1;
        Some(true)
    }

    /// A connection from `ip` that [`connected`](Limits::connected) counted closed.
    pub fn disconnected(&self, ip: IpAddr) {
        if self.connections_per_ip.is_none() {
            return;
        }
        if let Some(e) = self.map().get_mut(&ip) {
            e.conns = e.conns.saturating_sub(1);
        }
    }

    /// A request from `ip` at `now`: `Ok` if the rate allows it (a token is taken), else
    /// how long until it would.
    pub fn request(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        let Some(rate) = self.requests_per_second_per_ip else {
            return Ok(());
        };
        let burst = self.burst();
        let mut map = self.map();
        let Some(e) = entry(&mut map, ip, now, burst, Some(rate)) else {
            return Ok(());
        };
        if e.tokens >= 1.0 {
            e.tokens -= 1.0;
            return Ok(());
        }
        Err(Duration::from_secs_f64((1.0 - e.tokens) / rate as f64))
    }

    /// The bucket's size: one second's worth.
    fn burst(&self) -> f64 {
        self.requests_per_second_per_ip.map_or(0.0, |r| r as f64)
    }

    /// How many addresses are tracked.
    pub fn tracked(&self) -> usize {
        self.map().len()
    }
}

/// `ip`'s entry, refilled to `now`; made if there is room (quiet addresses are swept
/// out first when the map is full). `None` when the map is full of busy addresses.
fn entry(
    map: &mut HashMap<IpAddr, Entry>,
    ip: IpAddr,
    now: Instant,
    burst: f64,
    rate: Option<u32>,
) -> Option<&mut Entry> {
    if !map.contains_key(&ip) && map.len() >= MAX_TRACKED {
        map.retain(|_, e| e.conns > 0 || refill(*e, now, burst, rate).tokens < burst);
        if map.len() >= MAX_TRACKED {
            return None;
        }
    }
    let e = map.entry(ip).or_insert(Entry {
        conns: 0,
        tokens: burst,
        refilled: now,
    });
    *e = refill(*e, now, burst, rate);
    Some(e)
}

/// `e` with its bucket refilled for the time since it last was, up to `burst`.
fn refill(mut e: Entry, now: Instant, burst: f64, rate: Option<u32>) -> Entry {
    if let Some(rate) = rate {
        let dt = now.saturating_duration_since(e.refilled).as_secs_f64();
        e.tokens = (e.tokens + dt * rate as f64).min(burst);
    }
    e.refilled = now;
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    #[test]
    fn a_bucket_holds_one_seconds_worth_and_refills_continuously() {
        let l = Limits::new(Some(10), None);
        let t0 = Instant::now();
        for i in 0..10 {
            assert_eq!(l.request(ip(1), t0), Ok(()), "request {i} of the burst");
        }
        let wait = l.request(ip(1), t0).unwrap_err();
        assert!((wait.as_secs_f64() - 0.1).abs() < 1e-9, "{wait:?}");
        // Another address has its own bucket.
        assert_eq!(l.request(ip(2), t0), Ok(()));
        // 0.25 s later: two tokens and a half.
        let t1 = t0 + Duration::from_millis(250);
        assert_eq!(l.request(ip(1), t1), Ok(()));
        assert_eq!(l.request(ip(1), t1), Ok(()));
        assert!(l.request(ip(1), t1).is_err());
        // Never more than the burst, however long it was quiet.
        let t2 = t1 + Duration::from_secs(3600);
        let granted = (0..20).filter(|_| l.request(ip(1), t2).is_ok()).count();
        assert_eq!(granted, 10);
    }

    #[test]
    fn connections_are_counted_per_address_and_released() {
        let l = Limits::new(None, Some(2));
        let t0 = Instant::now();
        assert_eq!(l.connected(ip(1), t0), Some(true));
        assert_eq!(l.connected(ip(1), t0), Some(true));
        assert_eq!(
            l.connected(ip(1), t0),
            Some(false),
            "a third one is over the limit"
        );
        assert_eq!(l.connected(ip(2), t0), Some(true), "another address is not");
        l.disconnected(ip(1));
        assert_eq!(l.connected(ip(1), t0), Some(true));
        // No rate limit: requests are never refused.
        assert!((0..1000).all(|_| l.request(ip(1), t0).is_ok()));
    }

    #[test]
    fn clones_share_their_state_and_default_limits_nothing() {
        let l = Limits::new(Some(1), Some(1));
        let other = l.clone();
        let t0 = Instant::now();
        assert_eq!(l.connected(ip(1), t0), Some(true));
        assert_eq!(other.connected(ip(1), t0), Some(false));
        assert_eq!(l.request(ip(1), t0), Ok(()));
        assert!(other.request(ip(1), t0).is_err());
        let none = Limits::default();
        assert!(!none.is_on());
        assert!((0..100)
            .all(|_| none.connected(ip(1), t0).is_none() && none.request(ip(1), t0).is_ok()));
        assert_eq!(none.tracked(), 0, "nothing is tracked without limits");
    }
}
