//! Access logs that never block the loop: a policy formats one line per finished request
//! ([`Format::Combined`] or [`Format::Json`], with an RFC 3339 timestamp, the upstream
//! peer, upstream and total time) and hands it to an [`AccessLog`], whose own thread
//! writes it. When the writer falls behind (a slow disk, a full pipe) lines are dropped
//! rather than the loop held up, and the count of dropped lines is written once it
//! catches up.

use std::fmt::Write as _;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Lines queued for the writer thread before new ones are dropped.
pub const QUEUE: usize = 16 * 1024;

/// The line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Apache's combined format, then the upstream peer, upstream time and total time
    /// in seconds: `ip - - [05/Dec/2026:23:59:01 +0000] "GET / HTTP/1.1" 200 12 "-" "curl/8"
    /// 127.0.0.1:9001 0.002 0.003`.
    Combined,
    /// One JSON object per line.
    Json,
}

impl Format {
    /// Parses `combined` or `json`.
    pub fn parse(s: &str) -> Result<Format, String> {
        match s {
            "combined" => Ok(Format::Combined),
            "json" => Ok(Format::Json),
            _ => Err(format!("unknown access log format {s:?} (combined, json)")),
        }
    }
}

/// One finished request, as an access log line shows it.
#[derive(Clone, Copy, Debug)]
pub struct Entry<'a> {
    /// When the request ended.
    pub time: SystemTime,
    /// The client's address.
    pub client_ip: &'a str,
    /// Method, target and version (`HTTP/1.1`).
    pub method: &'a str,
    /// The request target.
    pub target: &'a str,
    /// `HTTP/1.0`, `HTTP/1.1` or `HTTP/2.0`.
    pub version: &'a str,
    /// The status answered.
    pub status: u16,
    /// Response body bytes sent.
    pub bytes: u64,
    /// `Referer`, if any.
    pub referer: Option<&'a str>,
    /// `User-Agent`, if any.
    pub user_agent: Option<&'a str>,
    /// The upstream peer that answered (`None`: the proxy answered).
    pub upstream: Option<&'a str>,
    /// From the request going upstream to the response head.
    pub upstream_time: Option<Duration>,
    /// From the request head to the end.
    pub total_time: Duration,
}

impl Entry<'_> {
    /// The entry as one line in `format` (with its newline), into `out`.
    pub fn write(&self, format: Format, out: &mut String) {
        match format {
            Format::Combined => self.combined(out),
            Format::Json => self.json(out),
        }
        out.push('\n');
    }

    fn combined(&self, out: &mut String) {
        let quoted = |s: Option<&str>, out: &mut String| {
            out.push('"');
            escape(s.unwrap_or("-"), false, out);
            out.push('"');
        };
        let _ = write!(out, "{} - - [", self.client_ip);
        clf_time(self.time, out);
        out.push_str("] \"");
        escape(self.method, false, out);
        out.push(' ');
        escape(self.target, false, out);
        let _ = write!(out, " {}\" {} {} ", self.version, self.status, self.bytes);
        quoted(self.referer, out);
        out.push(' ');
        quoted(self.user_agent, out);
        let _ = write!(
            out,
            " {} {} {:.3}",
            self.upstream.unwrap_or("-"),
            self.upstream_time
                .map_or("-".to_string(), |d| format!("{:.3}", d.as_secs_f64())),
            self.total_time.as_secs_f64()
        );
    }

    fn json(&self, out: &mut String) {
        let field = |name: &str, v: Option<&str>, out: &mut String| {
            let _ = write!(out, ",\"{name}\":");
            match v {
                Some(v) => {
                    out.push('"');
                    escape(v, true, out);
                    out.push('"');
                }
                None => out.push_str("null"),
            }
        };
        out.push_str("{\"time\":\"");
        rfc3339(self.time, out);
        out.push('"');
        field("client", Some(self.client_ip), out);
        field("method", Some(self.method), out);
        field("target", Some(self.target), out);
        field("version", Some(self.version), out);
        let _ = write!(out, ",\"status\":{},\"bytes\":{}", self.status, self.bytes);
        field("referer", self.referer, out);
        field("user_agent", self.user_agent, out);
        field("upstream", self.upstream, out);
        match self.upstream_time {
            Some(d) => {
                let _ = write!(out, ",\"upstream_time\":{:.6}", d.as_secs_f64());
            }
            None => out.push_str(",\"upstream_time\":null"),
        }
        let _ = write!(
            out,
            ",\"total_time\":{:.6}}}",
            self.total_time.as_secs_f64()
        );
    }
}

/// Appends `s` with what could break the line escaped: `"`, `\` and control bytes (as
/// `\uXXXX` in JSON, `\xXX` otherwise).
fn escape(s: &str, json: bool, out: &mut String) {
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = if json {
                    write!(out, "\\u{:04x}", c as u32)
                } else {
                    write!(out, "\\x{:02x}", c as u32)
                };
            }
            c => out.push(c),
        }
    }
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Splits `t` into UTC date, time of day (seconds) and milliseconds.
fn parts(t: SystemTime) -> ((i64, u32, u32), u64, u32) {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    (
        civil((secs / 86_400) as i64),
        secs % 86_400,
        d.subsec_millis(),
    )
}

/// Appends `t` in RFC 3339, UTC, with milliseconds: `2026-12-05T23:59:01.123Z`.
pub fn rfc3339(t: SystemTime, out: &mut String) {
    let ((y, m, d), s, ms) = parts(t);
    let _ = write!(
        out,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    );
}

/// Appends `t` as the common log format does: `05/Dec/2026:23:59:01 +0000`.
fn clf_time(t: SystemTime, out: &mut String) {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let ((y, m, d), s, _) = parts(t);
    let _ = write!(
        out,
        "{d:02}/{}/{y:04}:{:02}:{:02}:{:02} +0000",
        MONTHS[(m - 1) as usize],
        s / 3600,
        s / 60 % 60,
        s % 60
    );
}

/// A writer thread for access log lines (clone it into every loop's policy).
#[derive(Clone, Debug)]
pub struct AccessLog {
    tx: SyncSender<String>,
    dropped: Arc<AtomicU64>,
    format: Format,
}

impl AccessLog {
    /// Starts a thread writing lines of `format` to `out` (stdout, a file).
    pub fn start(format: Format, mut out: impl Write + Send + 'static) -> AccessLog {
        let (tx, rx) = sync_channel::<String>(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let seen = dropped.clone();
        std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || {
                let mut reported = 0;
                while let Ok(first) = rx.recv() {
                    // Everything waiting, then one flush: lines are never held back.
                    let mut line = Some(first);
                    while let Some(l) = line {
                        let lost = seen.load(Ordering::Relaxed);
                        if lost > reported {
                            let _ =
                                writeln!(out, "# access log: {} lines dropped", lost - reported);
                            reported = lost;
                        }
                        if out.write_all(l.as_bytes()).is_err() {
                            return;
                        }
                        line = rx.try_recv().ok();
                    }
                    let _ = out.flush();
                }
            })
            .expect("spawn the access log thread");
        AccessLog {
            tx,
            dropped,
            format,
        }
    }

    /// Its format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Queues `entry`'s line; never blocks (a full queue drops it and counts it).
    pub fn log(&self, entry: &Entry<'_>) {
        let mut line = String::with_capacity(256);
        entry.write(self.format, &mut line);
        match self.tx.try_send(line) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Lines dropped so far because the writer fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests;
