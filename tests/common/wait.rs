//! Waiting for a condition with a deadline. Shared by the integration tests of the
//! workspace's crates (`middleware/proxy/tests/common` includes this file).

use std::time::{Duration, Instant};

/// Polls `cond` until it holds or `timeout` passes; returns whether it held. For state
/// that is only observable by polling (counters), never as a substitute for an event.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}
