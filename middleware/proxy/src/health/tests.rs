//! The active check state machine on a manual clock: scheduling, timeouts, rise and fall;
//! and the shared verdicts.

use std::time::{Duration, Instant};

use super::*;

fn check(interval_ms: u64, rise: u32, fall: u32) -> HealthCheck {
    HealthCheck {
        interval: Duration::from_millis(interval_ms),
        timeout: Duration::from_millis(interval_ms / 2),
        rise,
        fall,
        ..HealthCheck::http("/health").unwrap()
    }
}

const MS: Duration = Duration::from_millis(1);

#[test]
fn checks_are_due_once_per_interval_and_never_twice_at_once() {
    let t0 = Instant::now();
    let mut c = Checker::new(check(500, 2, 2), 2, t0);
    assert_eq!(c.due(t0), Some(0));
    assert_eq!(c.due(t0), Some(1));
    assert_eq!(c.due(t0), None, "both in flight");
    assert_eq!(c.next_event(), Some(t0 + 250 * MS), "their timeouts");
    assert_eq!(c.report(0, true, t0 + 10 * MS), None);
    // The next check of peer 0 starts an interval after the last one started.
    assert_eq!(c.due(t0 + 499 * MS), None);
    assert_eq!(c.next_event(), Some(t0 + 250 * MS));
    assert_eq!(c.report(1, true, t0 + 20 * MS), None);
    assert_eq!(c.next_event(), Some(t0 + 500 * MS));
    assert_eq!(c.due(t0 + 500 * MS), Some(0));
    // A report with nothing in flight changes nothing.
    assert_eq!(c.report(1, false, t0 + 500 * MS), None);
    assert!(c.is_healthy(1));
}

#[test]
fn fall_failures_in_a_row_take_a_peer_out_and_rise_successes_bring_it_back() {
    let t0 = Instant::now();
    let mut c = Checker::new(check(100, 2, 3), 1, t0);
    let mut t = t0;
    let mut step = |c: &mut Checker, ok: bool| {
        let due = c.due(t);
        assert_eq!(due, Some(0), "due at {:?}", t - t0);
        let v = c.report(0, ok, t + MS);
        t += 100 * MS;
        v
    };
    assert_eq!(step(&mut c, false), None);
    assert_eq!(step(&mut c, false), None);
    assert_eq!(step(&mut c, true), None, "a success resets the run");
    assert_eq!(step(&mut c, false), None);
    assert_eq!(step(&mut c, false), None);
    assert!(c.is_healthy(0));
    assert_eq!(step(&mut c, false), Some(Verdict::Down));
    assert!(!c.is_healthy(0));
    assert_eq!(step(&mut c, false), None);
    assert_eq!(step(&mut c, true), None);
    assert_eq!(step(&mut c, false), None, "a failure resets the run");
    assert_eq!(step(&mut c, true), None);
    assert_eq!(step(&mut c, true), Some(Verdict::Up));
    assert!(c.is_healthy(0));
}

#[test]
fn a_check_that_runs_out_of_time_is_overdue_then_reported_failed() {
    let t0 = Instant::now();
    let mut c = Checker::new(check(1000, 1, 1), 1, t0);
    assert_eq!(c.due(t0), Some(0));
    assert_eq!(c.overdue(t0 + 499 * MS), None);
    assert_eq!(c.overdue(t0 + 500 * MS), Some((0, None)));
    assert_eq!(c.report(0, false, t0 + 500 * MS), Some(Verdict::Down));
    assert_eq!(c.overdue(t0 + 600 * MS), None);
    // A slow check delays the next one past the interval: never two at once.
    assert_eq!(c.due(t0 + 999 * MS), None);
    assert_eq!(c.due(t0 + 1000 * MS), Some(0));
}

#[test]
fn shared_verdicts_and_one_checking_loop() {
    let s = SharedHealth::new(2);
    assert!(s.is_healthy(0) && s.is_healthy(1) && s.is_healthy(7));
    s.set(1, false);
    assert!(!s.is_healthy(1));
    assert!(s.claim(3));
    assert!(s.claim(3), "the owner keeps it");
    assert!(!s.claim(0));
}

#[test]
fn bad_checks_are_refused() {
    assert!(HealthCheck::http("health").is_err());
    assert!(HealthCheck::http("/a b").is_err());
    let mut c = HealthCheck::tcp();
    assert!(c.validate().is_ok());
    c.rise = 0;
    assert!(c.validate().is_err());
    let mut h = HealthCheck::http("/h").unwrap();
    h.kind = CheckKind::Http {
        path: "/h".into(),
        expect: (300, 200),
    };
    assert!(h.validate().is_err());
}

fn two_peers() -> crate::Group {
    let peers = vec![
        crate::Peer::parse("http://127.0.0.1:1").unwrap(),
        crate::Peer::parse("http://127.0.0.1:2").unwrap(),
    ];
    crate::Group::new("g", peers, crate::Balance::RoundRobin).unwrap()
}

#[test]
fn passive_failures_in_a_row_mark_a_peer_down_for_the_down_time() {
    let mut g = two_peers();
    let t0 = Instant::now();
    let down = Duration::from_secs(10);
    assert!(!g.record_failure(0, t0, 2, down));
    g.record_success(0);
    assert!(!g.record_failure(0, t0, 2, down), "the run was reset");
    assert!(g.record_failure(0, t0, 2, down));
    assert!(!g.is_healthy(0, t0) && g.is_healthy(1, t0));
    assert_eq!(g.healthy_count(t0), 1);
    for _ in 0..4 {
        assert_eq!(g.pick(0, t0, 0), Some(1));
    }
    assert_eq!(g.pick(0, t0, 0b10), None, "the only healthy peer was tried");
    assert!(g.record_failure(1, t0, 1, down));
    assert_eq!((g.healthy_count(t0), g.pick(0, t0, 0)), (0, None));
    assert!(!g.any_up(t0 + down - MS));
    assert_eq!(g.healthy_count(t0 + down), 2, "the down time is over");
    // max_fails 0: failures never mark a peer down.
    for _ in 0..10 {
        assert!(!g.record_failure(0, t0 + down, 0, down));
    }
    assert!(g.is_healthy(0, t0 + down));
}

#[test]
fn the_only_peer_of_a_group_is_never_marked_down_by_failures() {
    let mut g = crate::Group::new(
        "one",
        vec![crate::Peer::parse("http://127.0.0.1:1").unwrap()],
        crate::Balance::RoundRobin,
    )
    .unwrap();
    let t0 = Instant::now();
    for _ in 0..10 {
        assert!(!g.record_failure(0, t0, 1, Duration::from_secs(10)));
    }
    assert!(g.is_healthy(0, t0));
    assert_eq!(g.pick(0, t0, 0), Some(0));
}

#[test]
fn active_verdicts_are_shared_by_the_clones_of_a_group() {
    let t0 = Instant::now();
    let check = HealthCheck {
        fall: 1,
        ..HealthCheck::tcp()
    };
    let g = two_peers().with_health_check(check).unwrap();
    let (mut on_loop0, mut on_loop1) = (g.clone(), g.clone());
    assert!(on_loop1.checker(1, t0).is_some(), "the first loop to ask");
    assert!(on_loop0.checker(0, t0).is_none(), "runs the checks alone");
    let c = on_loop1.checker(1, t0).unwrap();
    assert_eq!(c.due(t0), Some(0));
    assert_eq!(c.report(0, false, t0), Some(Verdict::Down));
    on_loop1.publish(0, Verdict::Down);
    assert!(!on_loop0.is_healthy(0, t0) && on_loop0.is_healthy(1, t0));
    assert_eq!(on_loop0.pick(0, t0, 0), Some(1));
    on_loop1.publish(0, Verdict::Up);
    assert_eq!(on_loop0.healthy_count(t0), 2);
    // A group configured anew has verdicts of its own.
    let other = two_peers().with_health_check(HealthCheck::tcp()).unwrap();
    assert!(other.is_healthy(0, t0));
}
