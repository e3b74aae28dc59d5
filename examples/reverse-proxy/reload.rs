//! Reloading without dropping anything: each configuration is served by a generation
//! of its own (a wireloop `Server` on its own thread). A reload (`SIGHUP`, or `POST
//! /reload` on the admin listener) reads the file again; if it is good, a new generation
//! takes over the listening sockets of the running one (`Handle::listeners`,
//! `Builder::inherit`: the ports never close), then the old generation shuts down
//! gracefully: its requests in flight finish on the configuration they started with, and
//! each of its keep-alive clients gets `Connection: close` on its next response and
//! reconnects to the new one. A bad file is refused with a log line naming its mistake,
//! and the running generation stays.

use std::sync::mpsc::{self, Receiver, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use wireloop::Handle;

/// What the main thread is told.
pub enum Event {
    /// Read the configuration again; the outcome goes to the sender, if any.
    Reload(Option<Sender<Result<String, String>>>),
    /// Shut down (a signal).
    Stop,
    /// A generation's server returned.
    Exited,
}

/// A running generation: its server's handle and thread, and what the next one reuses.
pub struct Generation<T> {
    pub handle: Handle,
    thread: JoinHandle<()>,
    /// What the program keeps of it (its groups, certificates, counters).
    pub kept: T,
}

impl<T> Generation<T> {
    /// Serves `serve` on a thread of its own (it blocks until the server stops); tells
    /// `events` when it returns.
    pub fn spawn(
        name: String,
        handle: Handle,
        kept: T,
        events: Sender<Event>,
        serve: impl FnOnce() -> Result<(), String> + Send + 'static,
    ) -> Result<Generation<T>, String> {
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || {
                if let Err(e) = serve() {
                    log::error!("{e}");
                }
                let _ = events.send(Event::Exited);
            })
            .map_err(|e| format!("cannot start a thread: {e}"))?;
        Ok(Generation {
            handle,
            thread,
            kept,
        })
    }

    fn finished(&self) -> bool {
        self.thread.is_finished()
    }

    fn join(self) {
        self.handle.shutdown();
        let _ = self.thread.join();
    }
}

/// `SIGHUP` asks for a reload, `SIGINT` and `SIGTERM` for a graceful shutdown.
pub fn on_signals(events: Sender<Event>) -> Result<(), String> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGHUP, SIGINT, SIGTERM])
        .map_err(|e| format!("cannot install the signal handlers: {e}"))?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                let ev = if sig == SIGHUP {
                    log::info!("SIGHUP: reloading the configuration");
                    Event::Reload(None)
                } else {
                    log::info!("signal received, shutting down");
                    Event::Stop
                };
                if events.send(ev).is_err() {
                    return;
                }
            }
        })
        .map_err(|e| format!("cannot start the signal thread: {e}"))?;
    Ok(())
}

/// Runs generations until a stop: `first` now, then on every reload the one `next`
/// builds from the running one (an `Err` refuses the reload and keeps the running one).
/// `swapped` hears of every new generation (the admin listener follows it). Returns once
/// every generation has stopped.
pub fn run<T>(
    first: Generation<T>,
    events: Receiver<Event>,
    mut next: impl FnMut(&Generation<T>) -> Result<Generation<T>, String>,
    mut swapped: impl FnMut(&Generation<T>),
) {
    let mut current = first;
    let mut draining: Vec<Generation<T>> = Vec::new();
    let mut count = 1u64;
    loop {
        match events.recv_timeout(Duration::from_secs(1)) {
            Ok(Event::Stop) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Ok(Event::Reload(reply)) => {
                let outcome = match next(&current) {
                    Ok(g) => {
                        count += 1;
                        swapped(&g);
                        let old = std::mem::replace(&mut current, g);
                        old.handle.shutdown();
                        draining.push(old);
                        let msg = format!(
                            "configuration {count} in service; the previous one drains \
                             ({} draining)",
                            draining.len()
                        );
                        log::info!("{msg}");
                        Ok(msg)
                    }
                    Err(e) => {
                        log::error!("reload refused, the running configuration stays: {e}");
                        Err(e)
                    }
                };
                if let Some(reply) = reply {
                    let _ = reply.send(outcome);
                }
            }
            Ok(Event::Exited) | Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
        // Reap the generations that finished draining.
        let (done, still): (Vec<_>, Vec<_>) = draining.into_iter().partition(|g| g.finished());
        draining = still;
        for g in done {
            g.join();
        }
        if current.finished() {
            log::error!("the server stopped");
            break;
        }
    }
    current.join();
    for g in draining {
        g.join();
    }
}
