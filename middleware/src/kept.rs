//! Kept drivers for the fuzz entry points (`fuzzing` modules): a driver (an epoll
//! instance, a waker, the loop's buffers) costs more to make than most inputs cost to
//! run, so the targets keep theirs between inputs ([`reuse`]): each input gets a fresh
//! connection on it, closed before the next input, and the driver itself is renewed every
//! [`RENEW`] inputs (its timer heap keeps the stale timers of closed connections until
//! they would fire) and after any panic.

use std::cell::RefCell;
use std::thread::LocalKey;

use wireloop::testing::Driver;
use wireloop::Handler;

/// How many inputs one kept driver serves before a fresh one replaces it.
pub(crate) const RENEW: u32 = 4096;

/// Kept drivers of one handler type, by configuration index (one thread's).
pub(crate) type Drivers<H> = RefCell<Vec<Option<(Driver<H>, u32)>>>;

/// Runs `run` on the kept driver number `index` of `slot` (made by `make` when there is
/// none yet, or when it has served [`RENEW`] inputs). The driver is out of its slot while
/// `run` runs, so a panic drops it and the next input starts on a fresh one. After `run`,
/// no connection may be left open: each input closes (or resets) what it opened.
pub(crate) fn reuse<H: Handler + 'static, R>(
    slot: &'static LocalKey<Drivers<H>>,
    index: usize,
    make: impl FnOnce() -> Driver<H>,
    run: impl FnOnce(&mut Driver<H>) -> R,
) -> R {
    let kept = slot.with(|s| s.borrow_mut().get_mut(index).and_then(Option::take));
    let (mut d, uses) = match kept {
        Some((d, uses)) if uses < RENEW => (d, uses),
        _ => (make(), 0),
    };
    let r = run(&mut d);
    assert_eq!(
        d.handle().stats().open,
        0,
        "a connection outlived its input"
    );
    slot.with(|s| {
        let mut s = s.borrow_mut();
        if s.len() <= index {
            s.resize_with(index + 1, || None);
        }
        s[index] = Some((d, uses + 1));
    });
    r
}

/// Ends the input's connection `c`: end-of-file if it is still open, then a reset if
/// even that left it open (a handler may keep a half-closed connection).
pub(crate) fn finish<H: Handler>(d: &mut Driver<H>, c: wireloop::ConnId) -> Vec<u8> {
    d.eof(c);
    let out = d.take_output(c);
    if d.is_open(c) {
        d.reset(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::panic::{catch_unwind, AssertUnwindSafe};

    use wireloop::{Action, Conn};

    use super::*;

    /// Answers `ok` to every read.
    struct Ack;

    impl Handler for Ack {
        type State = ();
        fn data(&mut self, conn: &mut Conn<'_, ()>) -> Action {
            conn.consume(conn.input().len());
            conn.write(b"ok");
            Action::None
        }
    }

    thread_local!(static KEPT: Drivers<Ack> = const { RefCell::new(Vec::new()) });

    /// One input: a connection, a read, its answer, the end.
    fn ack_once(d: &mut Driver<Ack>) -> Vec<u8> {
        let c = d.open(0);
        d.feed(c, b"x");
        let mut out = d.take_output(c);
        out.extend(finish(d, c));
        out
    }

    #[test]
    fn kept_driver_is_renewed_after_a_panic_and_after_renew_inputs() {
        let made = Cell::new(0);
        let make = || {
            made.set(made.get() + 1);
            Driver::new(Ack)
        };
        for _ in 0..3 {
            assert_eq!(reuse(&KEPT, 0, make, ack_once), b"ok");
        }
        assert_eq!(made.get(), 1, "one driver for inputs that end well");
        let r = catch_unwind(AssertUnwindSafe(|| {
            reuse(&KEPT, 0, make, |_| -> () { panic!("input failed") })
        }));
        assert!(r.is_err());
        reuse(&KEPT, 0, make, ack_once);
        assert_eq!(made.get(), 2, "a fresh driver after a panic");
        for _ in 0..RENEW {
            reuse(&KEPT, 0, make, ack_once);
        }
        assert_eq!(made.get(), 3, "a fresh driver after RENEW inputs");
        reuse(&KEPT, 1, make, ack_once);
        assert_eq!(made.get(), 4, "one driver per index");
    }

    #[test]
    fn a_connection_left_open_is_an_error() {
        let r = catch_unwind(|| {
            reuse(
                &KEPT,
                2,
                || Driver::new(Ack),
                |d| {
                    d.open(0);
                },
            )
        });
        assert!(r.is_err());
    }
}
