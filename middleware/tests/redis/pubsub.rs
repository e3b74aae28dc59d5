//! Pub/sub and TLS of the `redis-server` example: the exact RESP2 bytes of every pub/sub
//! reply and of subscribed mode, `redis-cli` subscribers on both loops and both listeners
//! (plain and `--tls`) fed by a plain publisher, leaving subscribed mode while messages
//! are on their way, the slow-subscriber limit, and `redis-benchmark --tls`.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use super::common::{recv_until, ChildGuard, TempFile, TIMEOUT};
use super::{array, expect_eof, expect_reply, require, run, run_output, Redis};

/// Redis 7's error for a command subscribed mode does not allow.
fn refused(full: &str) -> String {
    format!(
        "-ERR Can't execute '{full}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / \
         RESET are allowed in this context\r\n"
    )
}

fn message(channel: &str, payload: &[u8]) -> Vec<u8> {
    array(&[b"message", channel.as_bytes(), payload])
}

/// `*3 kind name :count`, a (un)subscribe confirmation; `name` nil when `None`.
fn confirmation(kind: &str, name: Option<&str>, count: usize) -> Vec<u8> {
    let mut v = format!("*3\r\n${}\r\n{kind}\r\n", kind.len()).into_bytes();
    match name {
        Some(n) => v.extend(format!("${}\r\n{n}\r\n", n.len()).into_bytes()),
        None => v.extend(b"$-1\r\n"),
    }
    v.extend(format!(":{count}\r\n").into_bytes());
    v
}

/// Every pub/sub reply and subscribed mode's rules, byte for byte as Redis 7.0 sends
/// them over RESP2 (captured from redis-server 7.0.15).
#[test]
fn pubsub_replies_are_redis_resp2_bytes() {
    let r = Redis::start(&[]);
    let mut sub = r.connect();
    let mut publisher = r.connect();

    // Nothing to unsubscribe from: a nil name and a count of 0.
    sub.write_all(b"UNSUBSCRIBE\r\nPUNSUBSCRIBE\r\n").unwrap();
    let mut want = confirmation("unsubscribe", None, 0);
    want.extend(confirmation("punsubscribe", None, 0));
    expect_reply(&mut sub, &want);

    // One confirmation per name, a name given twice counted once.
    sub.write_all(&array(&[b"SUBSCRIBE", b"news", b"sport", b"news"]))
        .unwrap();
    sub.write_all(b"PSUBSCRIBE n*\r\n").unwrap();
    let mut want = confirmation("subscribe", Some("news"), 1);
    want.extend(confirmation("subscribe", Some("sport"), 2));
    want.extend(confirmation("subscribe", Some("news"), 2));
    want.extend(confirmation("psubscribe", Some("n*"), 3));
    expect_reply(&mut sub, &want);

    // PUBLISH counts every delivery: the channel's and the pattern's.
    publisher
        .write_all(&array(&[b"PUBLISH", b"news", b"hello \xff world"]))
        .unwrap();
    expect_reply(&mut publisher, b":2\r\n");
    let mut want = message("news", b"hello \xff world");
    want.extend(array(&[b"pmessage", b"n*", b"news", b"hello \xff world"]));
    expect_reply(&mut sub, &want);
    publisher.write_all(b"PUBLISH other x\r\n").unwrap();
    expect_reply(&mut publisher, b":0\r\n");
    publisher.write_all(b"PUBLISH sport\r\n").unwrap();
    expect_reply(
        &mut publisher,
        b"-ERR wrong number of arguments for 'publish' command\r\n",
    );

    // Subscribed mode: PING answers as a push; other commands are refused, after the
    // checks that come first in Redis (unknown command, number of arguments).
    sub.write_all(b"PING\r\nPING hi\r\nGET k\r\nCONFIG GET save\r\nPUBLISH news x\r\n")
        .unwrap();
    sub.write_all(b"GET\r\nNOPE a\r\nCOMMAND COUNT\r\n")
        .unwrap();
    let mut want = b"*2\r\n$4\r\npong\r\n$0\r\n\r\n*2\r\n$4\r\npong\r\n$2\r\nhi\r\n".to_vec();
    want.extend(refused("get").into_bytes());
    want.extend(refused("config|get").into_bytes());
    want.extend(refused("publish").into_bytes());
    want.extend(b"-ERR wrong number of arguments for 'get' command\r\n");
    want.extend(b"-ERR unknown command 'NOPE', with args beginning with: 'a' \r\n");
    want.extend(refused("command|count").into_bytes());
    expect_reply(&mut sub, &want);

    // Unsubscribing: a name not subscribed to is confirmed too; without names, every
    // channel goes (in name order here); then the pattern, and subscribed mode ends.
    sub.write_all(b"UNSUBSCRIBE weather\r\nUNSUBSCRIBE\r\n")
        .unwrap();
    let mut want = confirmation("unsubscribe", Some("weather"), 3);
    want.extend(confirmation("unsubscribe", Some("news"), 2));
    want.extend(confirmation("unsubscribe", Some("sport"), 1));
    expect_reply(&mut sub, &want);
    publisher.write_all(b"PUBLISH news again\r\n").unwrap();
    expect_reply(&mut publisher, b":1\r\n");
    expect_reply(&mut sub, &array(&[b"pmessage", b"n*", b"news", b"again"]));
    sub.write_all(b"PUNSUBSCRIBE\r\nGET k\r\nPING\r\n").unwrap();
    let mut want = confirmation("punsubscribe", Some("n*"), 0);
    want.extend(b"$-1\r\n+PONG\r\n");
    expect_reply(&mut sub, &want);

    // RESET leaves subscribed mode without confirmations.
    sub.write_all(b"SUBSCRIBE a\r\nRESET\r\nPUBLISH a x\r\nRESET x\r\n")
        .unwrap();
    let mut want = confirmation("subscribe", Some("a"), 1);
    want.extend(b"+RESET\r\n:0\r\n-ERR wrong number of arguments for 'reset' command\r\n");
    expect_reply(&mut sub, &want);

    // QUIT is allowed in subscribed mode; the unsubscribe on close leaves no receiver.
    sub.write_all(b"SUBSCRIBE a b\r\nQUIT\r\n").unwrap();
    let mut want = confirmation("subscribe", Some("a"), 1);
    want.extend(confirmation("subscribe", Some("b"), 2));
    want.extend(b"+OK\r\n");
    expect_reply(&mut sub, &want);
    expect_eof(&mut sub);
    publisher.write_all(b"PUBLISH a x\r\n").unwrap();
    expect_reply(&mut publisher, b":0\r\n");
    assert_eq!(
        r.cli(&["SSUBSCRIBE", "a"]).split('\'').nth(1),
        Some("SSUBSCRIBE")
    );
}

/// A `redis-cli` in subscribe mode: its standard output, line by line.
struct Subscriber {
    _child: ChildGuard,
    lines: mpsc::Receiver<String>,
    name: String,
}

impl Subscriber {
    /// Starts `redis-cli -p PORT [tls args] (p)subscribe NAME` and waits for the
    /// confirmation.
    fn start(port: u16, tls: &[&str], kind: &str, name: &str) -> Subscriber {
        let child = Command::new("redis-cli")
            .args(["-p", &port.to_string()])
            .args(tls)
            .args([kind, name])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-cli");
        let mut guard = ChildGuard(Some(child));
        let out = guard.child().stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let s = Subscriber {
            _child: guard,
            lines,
            name: format!("{kind} {name} {tls:?}"),
        };
        s.expect(&[kind, name, "1"]);
        s
    }

    /// The next lines are exactly `want`.
    #[track_caller]
    fn expect(&self, want: &[&str]) {
        for w in want {
            let (got, _) = recv_until(&self.lines, TIMEOUT, &self.name, |l| Some(l.clone()));
            assert_eq!(&got, w, "{}", self.name);
        }
    }
}

/// The loop of the connection a debug line names ("connection L:K.G (listener I) ...").
fn loop_and_listener(line: &str) -> Option<(usize, usize)> {
    let rest = line.split("connection ").nth(1)?;
    let lp = rest.split(':').next()?.parse().ok()?;
    let listener = rest
        .split("(listener ")
        .nth(1)?
        .split(')')
        .next()?
        .parse()
        .ok()?;
    Some((lp, listener))
}

/// Subscribers on both loops, plain and TLS, channel and pattern; a plain publisher: every
/// subscriber gets every message, exactly, in order, including the TLS ones on the loop
/// that did not run the PUBLISH (checked from the server's log, not assumed from the
/// round-robin balancing).
#[test]
fn subscribers_on_both_loops_plain_and_tls() {
    require("redis-cli");
    let cert = TempFile::with_contents("redis-cert", b"");
    let cert_path = cert.path().to_str().unwrap().to_string();
    let r = Redis::start_tls(&["--loops", "2", "--cert-out", &cert_path]);
    let tls = r.tlsport.expect("TLS port");
    let insecure = ["--tls", "--insecure"];
    // The generated certificate verifies for 127.0.0.1 (the one written by --cert-out).
    let verified = ["--tls", "--cacert", &cert_path];
    // Started one after the other, so round-robin puts consecutive ones on both loops.
    let subs = [
        Subscriber::start(tls, &insecure, "subscribe", "news"),
        Subscriber::start(tls, &verified, "subscribe", "news"),
        Subscriber::start(r.port, &[], "subscribe", "news"),
        Subscriber::start(r.port, &[], "subscribe", "news"),
    ];
    let pattern = Subscriber::start(tls, &insecure, "psubscribe", "n*");
    let (_, seen) = recv_until(&r.logs, TIMEOUT, "five subscriptions logged", {
        let mut n = 0;
        move |l: &String| {
            n += l.contains(" subscribed to ") as usize;
            (n == 5).then_some(())
        }
    });
    let tls_loops: Vec<usize> = seen
        .iter()
        .filter(|l| l.contains(" subscribed to "))
        .filter_map(|l| loop_and_listener(l))
        .filter(|&(_, listener)| listener == 1)
        .map(|(lp, _)| lp)
        .collect();
    assert_eq!(tls_loops.len(), 3, "{seen:?}");
    assert!(
        tls_loops.contains(&0) && tls_loops.contains(&1),
        "TLS subscribers on both loops: {seen:?}"
    );

    let long = "0123456789abcdef".repeat(4096); // 64 KiB: several TLS records
    let payloads = ["hello world", "über ✓", "", &long, "last"];
    for p in payloads {
        assert_eq!(r.cli(&["PUBLISH", "news", p]), "5", "receivers of {p:.20}");
        let (line, _) = recv_until(&r.logs, TIMEOUT, "the PUBLISH logged", |l: &String| {
            l.contains(" published to news").then(|| l.clone())
        });
        let (publisher_loop, listener) = loop_and_listener(&line).expect("publisher");
        assert_eq!(listener, 0, "a plain publisher: {line}");
        assert!(
            tls_loops.iter().any(|&l| l != publisher_loop),
            "a TLS subscriber on another loop than {line}"
        );
    }
    for s in &subs {
        for p in payloads {
            s.expect(&["message", "news", p]);
        }
    }
    for p in payloads {
        pattern.expect(&["pmessage", "n*", "news", p]);
    }
    // A message only the pattern matches.
    assert_eq!(r.cli(&["PUBLISH", "nested", "deep"]), "1");
    pattern.expect(&["pmessage", "n*", "nested", "deep"]);
    drop(subs);
    drop(pattern);
    // Once redis-cli is gone its connection closes and is unsubscribed.
    let deadline = std::time::Instant::now() + TIMEOUT;
    while r.cli(&["PUBLISH", "news", "anyone?"]) != "0" {
        assert!(
            std::time::Instant::now() < deadline,
            "subscribers left behind"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One RESP2 reply as a test reads it.
#[derive(Debug, PartialEq)]
enum Reply {
    Line(String),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Reply>),
}

fn read_reply(r: &mut impl BufRead) -> Reply {
    let mut line = String::new();
    r.read_line(&mut line).expect("a reply");
    let line = line.trim_end();
    match line.as_bytes().first() {
        Some(b'$') => {
            let n: i64 = line[1..].parse().expect("bulk length");
            if n < 0 {
                return Reply::Bulk(None);
            }
            let mut v = vec![0; n as usize + 2];
            r.read_exact(&mut v).expect("bulk");
            v.truncate(n as usize);
            Reply::Bulk(Some(v))
        }
        Some(b'*') => {
            let n: usize = line[1..].parse().expect("array length");
            Reply::Array((0..n).map(|_| read_reply(r)).collect())
        }
        Some(_) => Reply::Line(line.to_string()),
        None => panic!("the connection closed"),
    }
}

fn bulk(s: &str) -> Reply {
    Reply::Bulk(Some(s.as_bytes().to_vec()))
}

/// Leaving subscribed mode while publishers on both loops keep a channel busy: after the
/// last unsubscribe confirmation, the next reply is the next command's, never a late
/// message (which a client would take for that reply).
#[test]
fn no_message_after_leaving_subscribed_mode() {
    let r = Redis::start(&["--loops", "2"]);
    let stop = Arc::new(AtomicBool::new(false));
    let publishers: Vec<_> = (0..2)
        .map(|_| {
            let (stop, mut s) = (stop.clone(), r.connect());
            std::thread::spawn(move || {
                let batch = b"PUBLISH busy payload\r\n".repeat(100);
                let mut replies = BufReader::new(s.try_clone().unwrap());
                let mut line = String::new();
                while !stop.load(Ordering::Relaxed) {
                    s.write_all(&batch).unwrap();
                    for _ in 0..100 {
                        line.clear();
                        replies.read_line(&mut line).unwrap();
                        assert!(line.starts_with(':'), "{line:?}");
                    }
                }
            })
        })
        .collect();
    let mut s = r.connect();
    let mut replies = BufReader::new(s.try_clone().unwrap());
    let mut messages = 0;
    for _ in 0..300 {
        s.write_all(b"SUBSCRIBE busy\r\n").unwrap();
        let want = Reply::Array(vec![
            bulk("subscribe"),
            bulk("busy"),
            Reply::Line(":1".into()),
        ]);
        assert_eq!(
            read_reply(&mut replies),
            want,
            "nothing before the confirmation"
        );
        s.write_all(b"UNSUBSCRIBE\r\n").unwrap();
        loop {
            match read_reply(&mut replies) {
                Reply::Array(a) if a.first() == Some(&bulk("message")) => messages += 1,
                other => {
                    let want = vec![bulk("unsubscribe"), bulk("busy"), Reply::Line(":0".into())];
                    assert_eq!(other, Reply::Array(want));
                    break;
                }
            }
        }
        s.write_all(b"GET k\r\n").unwrap();
        assert_eq!(read_reply(&mut replies), Reply::Bulk(None), "GET's reply");
    }
    stop.store(true, Ordering::Relaxed);
    for p in publishers {
        p.join().expect("publisher");
    }
    assert!(messages > 0, "the publishers never reached the subscriber");
}

/// A subscriber that reads nothing is dropped once it holds --pubsub-limit bytes:
/// PUBLISH stops counting it, the server says why, and the subscriber gets exactly the
/// messages it was counted for, then EOF.
#[test]
fn slow_subscriber_is_dropped_at_the_limit() {
    let r = Redis::start(&["--loops", "2", "--pubsub-limit", "1048576"]);
    let mut sub = r.connect();
    sub.write_all(b"SUBSCRIBE slow\r\n").unwrap();
    expect_reply(&mut sub, &confirmation("subscribe", Some("slow"), 1));
    let mut publisher = r.connect();
    let payload = vec![b'x'; 64 << 10];
    let cmd = array(&[b"PUBLISH", b"slow", &payload]);
    // The kernel's socket buffers take a few MiB before the server holds anything.
    let mut sent = 0;
    loop {
        publisher.write_all(&cmd).unwrap();
        let mut reply = [0u8; 4];
        publisher.read_exact(&mut reply).unwrap();
        match &reply {
            b":1\r\n" => sent += 1,
            b":0\r\n" => break,
            other => panic!("PUBLISH: {:?}", String::from_utf8_lossy(other)),
        }
        assert!(sent < 1024, "still a receiver after 64 MiB");
    }
    // The subscriber reads from now on: the close flushes what was queued within the
    // server's close linger, which a reader that waits (a busy machine) could outlast.
    let reader = std::thread::spawn(move || {
        let mut rest = Vec::new();
        sub.read_to_end(&mut rest).expect("EOF");
        rest
    });
    recv_until(&r.logs, TIMEOUT, "the drop logged", |l: &String| {
        l.contains("too slow for its messages").then_some(())
    });
    // Every message PUBLISH counted it for arrives, then EOF.
    let one = message("slow", &payload);
    let rest = reader.join().expect("reader");
    assert_eq!(rest.len(), sent * one.len(), "{sent} messages counted");
    assert!(rest.chunks(one.len()).all(|m| m == one), "messages intact");
    // Others are served as before.
    let mut again = r.connect();
    again.write_all(b"SUBSCRIBE slow\r\n").unwrap();
    expect_reply(&mut again, &confirmation("subscribe", Some("slow"), 1));
    publisher.write_all(b"PUBLISH slow hi\r\n").unwrap();
    expect_reply(&mut publisher, b":1\r\n");
    expect_reply(&mut again, &message("slow", b"hi"));
}

/// redis-benchmark over TLS (Debian's redis-tools is built with TLS), with and without
/// pipelining, and the keys it wrote are there for a plain client.
#[test]
fn redis_benchmark_over_tls() {
    require("redis-benchmark");
    let r = Redis::start_tls(&["--loops", "2"]);
    let tls = r.tlsport.expect("TLS port").to_string();
    for extra in [&[][..], &["-P", "16"][..]] {
        let mut args = vec!["-p", &tls, "--tls", "--insecure"];
        args.extend_from_slice(&["-t", "set,get", "-n", "5000", "-c", "8", "-q"]);
        args.extend_from_slice(extra);
        let out = run_output("redis-benchmark", &args, None, Duration::from_secs(60));
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "redis-benchmark failed: {text}");
        for t in ["SET", "GET"] {
            assert!(
                text.split(['\r', '\n'])
                    .any(|l| l.starts_with(&format!("{t}: ")) && l.contains("requests per second")),
                "no {t} result in {text:?}"
            );
        }
        assert!(
            !text.to_lowercase().contains("error"),
            "errors in the benchmark output: {text:?}"
        );
    }
    assert_eq!(r.cli(&["GET", "key:__rand_int__"]).len(), 3);
    let tls_get = run(
        "redis-cli",
        &["-p", &tls, "--tls", "--insecure", "GET", "key:__rand_int__"],
        None,
    );
    assert_eq!(tls_get.len(), 3);
}
