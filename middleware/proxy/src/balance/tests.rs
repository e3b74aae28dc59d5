//! Balancing quality without sockets: round-robin's spread, consistent hashing's
//! stability when a peer leaves, and p2c-ewma's avoidance of a slow peer on a manual
//! clock.

use std::time::{Duration, Instant};

use super::*;

fn peers(weights: &[u32]) -> Vec<PeerLoad> {
    weights.iter().map(|&w| PeerLoad::new(w)).collect()
}

const ALL: &dyn Fn(usize) -> bool = &|_| true;

#[test]
fn round_robin_spreads_evenly_within_5_percent() {
    let p = peers(&[1, 1, 1]);
    let mut b = Balancer::new(&Balance::RoundRobin, [("a", 1), ("b", 1), ("c", 1)]);
    let mut n = [0usize; 3];
    for _ in 0..3000 {
        n[b.pick(&p, 0, ALL).unwrap()] += 1;
    }
    for c in n {
        assert!((950..=1050).contains(&c), "{n:?}");
    }
}

#[test]
fn round_robin_honours_weights_and_eligibility() {
    let p = peers(&[3, 1]);
    let mut b = RoundRobin::default();
    let order: Vec<usize> = (0..8).map(|_| b.pick(&p, ALL).unwrap()).collect();
    assert_eq!(order.iter().filter(|&&i| i == 0).count(), 6, "{order:?}");
    // Smooth: never three of one peer in a row with 3:1.
    assert!(
        !order.windows(4).any(|w| w.iter().all(|&i| i == 0)),
        "{order:?}"
    );
    let only_b = |i: usize| i == 1;
    assert_eq!(b.pick(&p, &only_b), Some(1));
    assert_eq!(b.pick(&p, &|_| false), None);
}

#[test]
fn least_conn_prefers_the_least_busy_per_weight() {
    let mut p = peers(&[1, 1, 2]);
    p[0].busy = 3;
    p[1].busy = 1;
    p[2].busy = 3; // 1.5 per unit of weight
    let mut b = LeastConn::default();
    assert_eq!(b.pick(&p, ALL), Some(1));
    p[1].busy = 2;
    assert_eq!(b.pick(&p, ALL), Some(2));
    // Ties rotate.
    let idle = peers(&[1, 1, 1]);
    let picks: Vec<_> = (0..3).map(|_| b.pick(&idle, ALL).unwrap()).collect();
    let mut sorted = picks.clone();
    sorted.sort();
    assert_eq!(sorted, [0, 1, 2], "{picks:?}");
}

#[test]
fn consistent_hashing_moves_about_one_nth_of_the_keys_when_a_peer_leaves() {
    let names = ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80", "10.0.0.4:80"];
    let full = Ketama::new(names.iter().map(|n| (*n, 1)));
    let fewer = Ketama::new(names[..3].iter().map(|n| (*n, 1)));
    let keys = 10_000u64;
    let mut moved = 0;
    let mut on_removed = 0;
    let mut spread = [0usize; 4];
    for k in 0..keys {
        let key = hash_bytes(format!("user-{k}").as_bytes());
        let before = full.pick(key, ALL).unwrap();
        let after = fewer.pick(key, ALL).unwrap();
        spread[before] += 1;
        if before == 3 {
            on_removed += 1;
        } else if before != after {
            moved += 1;
        }
    }
    // Only the removed peer's keys move; the others stay where they were.
    assert_eq!(moved, 0, "keys of remaining peers moved");
    // About 1/N of the keys were on the removed peer.
    let share = on_removed as f64 / keys as f64;
    assert!((0.15..0.35).contains(&share), "share {share}");
    for s in spread {
        assert!(s > 1500, "uneven ring {spread:?}");
    }
    // A peer that is down is skipped; the key returns to it when it is back.
    let key = (0..)
        .map(|k| hash_bytes(format!("k{k}").as_bytes()))
        .find(|&k| full.pick(k, ALL) == Some(0))
        .unwrap();
    let not0 = |i: usize| i != 0;
    assert_ne!(full.pick(key, &not0), Some(0));
    assert_eq!(full.pick(key, ALL), Some(0));
}

/// Three peers, one ten times slower; requests arrive every millisecond and each takes its
/// peer's latency, observed on completion on a manual clock.
#[test]
fn p2c_ewma_sends_under_20_percent_to_a_peer_10x_slower() {
    let latency = [
        Duration::from_millis(2),
        Duration::from_millis(2),
        Duration::from_millis(20),
    ];
    let mut p = peers(&[1, 1, 1]);
    let mut b = Balancer::P2cEwma(P2c::with_seed(7));
    let t0 = Instant::now();
    let mut inflight: Vec<(Instant, usize)> = Vec::new();
    let mut n = [0usize; 3];
    for step in 0..3000u64 {
        let now = t0 + Duration::from_millis(step);
        inflight.retain(|&(done, i)| {
            if done <= now {
                p[i].busy -= 1;
                p[i].ewma.observe(latency[i], done);
                false
            } else {
                true
            }
        });
        let i = b.pick(&p, 0, ALL).unwrap();
        n[i] += 1;
        p[i].busy += 1;
        inflight.push((now + latency[i], i));
    }
    let slow = n[2] as f64 / 3000.0;
    assert!(slow < 0.20, "slow peer got {:.1}% ({n:?})", slow * 100.0);
    assert!(n[0] > 900 && n[1] > 900, "{n:?}");
}

#[test]
fn peak_ewma_jumps_up_and_decays_down() {
    let t0 = Instant::now();
    let mut e = Ewma::default();
    assert_eq!(e.nanos(), DEFAULT_RTT.as_nanos() as f64);
    e.observe(Duration::from_millis(1), t0);
    e.observe(Duration::from_millis(50), t0 + Duration::from_millis(1));
    assert_eq!(e.nanos(), 50e6);
    e.observe(Duration::from_millis(1), t0 + DECAY * 3);
    assert!(e.nanos() < 5e6, "{}", e.nanos());
}

#[test]
fn balance_names_parse() {
    assert_eq!(Balance::parse("least-conn"), Ok(Balance::LeastConn));
    assert_eq!(Balance::parse("p2c-ewma"), Ok(Balance::P2cEwma));
    assert!(Balance::parse("fastest").is_err());
}
