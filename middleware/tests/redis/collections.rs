//! Lists, sets, hashes and sorted sets of the `redis-server` example: the exact RESP2
//! bytes Redis 7.0 answers (checked against redis-server 7.0.15), WRONGTYPE, the
//! `--max-elements` limit, the command list in `--help`, and redis-benchmark's whole
//! default suite (`-q -n 20000`) run to the end without an error, after which the
//! keyspace holds what the suite's commands leave.

use std::io::Write;
use std::time::Duration;

use super::{array, binary, expect_reply, require, run_output, Redis};

/// Sends each command and checks its reply, byte for byte.
fn exchange(r: &Redis, pairs: &[(&[&str], &str)]) {
    let mut s = r.connect();
    for (cmd, want) in pairs {
        let args: Vec<&[u8]> = cmd.iter().map(|a| a.as_bytes()).collect();
        s.write_all(&array(&args)).expect("send");
        expect_reply(&mut s, want.as_bytes());
    }
}

const WRONGTYPE: &str = "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";

#[test]
fn lists_reply_as_redis() {
    let r = Redis::start(&[]);
    exchange(
        &r,
        &[
            (&["LPOP", "nol"], "$-1\r\n"),
            (&["LPOP", "nol", "2"], "*-1\r\n"),
            (&["RPUSH", "l", "a", "b", "c"], ":3\r\n"),
            (&["LPOP", "l", "0"], "*0\r\n"),
            (
                &["LPOP", "l", "-1"],
                "-ERR value is out of range, must be positive\r\n",
            ),
            (&["LPUSH", "l", "z"], ":4\r\n"),
            (
                &["LRANGE", "l", "0", "-1"],
                "*4\r\n$1\r\nz\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n",
            ),
            (
                &["LRANGE", "l", "-2", "100"],
                "*2\r\n$1\r\nb\r\n$1\r\nc\r\n",
            ),
            (&["LRANGE", "l", "3", "1"], "*0\r\n"),
            (
                &["LRANGE", "l", "x", "1"],
                "-ERR value is not an integer or out of range\r\n",
            ),
            (&["LINDEX", "l", "-1"], "$1\r\nc\r\n"),
            (&["LINDEX", "l", "9"], "$-1\r\n"),
            (&["LLEN", "l"], ":4\r\n"),
            (&["RPOP", "l", "2"], "*2\r\n$1\r\nc\r\n$1\r\nb\r\n"),
            (&["LPOP", "l", "5"], "*2\r\n$1\r\nz\r\n$1\r\na\r\n"),
            (&["EXISTS", "l"], ":0\r\n"),
            (
                &["LPUSH", "l"],
                "-ERR wrong number of arguments for 'lpush' command\r\n",
            ),
            (&["SET", "s", "v"], "+OK\r\n"),
            (&["LPUSH", "s", "x"], WRONGTYPE),
            (&["RPUSH", "l", "x"], ":1\r\n"),
            (&["GET", "l"], WRONGTYPE),
            (&["INCR", "l"], WRONGTYPE),
            (&["MGET", "l", "s"], "*2\r\n$-1\r\n$1\r\nv\r\n"),
            (&["TYPE", "l"], "+list\r\n"),
            (&["SET", "l", "now a string"], "+OK\r\n"),
            (&["TYPE", "l"], "+string\r\n"),
        ],
    );
}

#[test]
fn sets_and_hashes_reply_as_redis() {
    let r = Redis::start(&[]);
    exchange(
        &r,
        &[
            (&["SPOP", "nos"], "$-1\r\n"),
            (&["SPOP", "nos", "3"], "*0\r\n"),
            (
                &["SPOP", "nos", "-1"],
                "-ERR value is out of range, must be positive\r\n",
            ),
            (&["SADD", "s", "a", "a", "b"], ":2\r\n"),
            (&["SCARD", "s"], ":2\r\n"),
            (&["SISMEMBER", "s", "a"], ":1\r\n"),
            (&["SREM", "s", "a", "zz"], ":1\r\n"),
            (&["SMEMBERS", "s"], "*1\r\n$1\r\nb\r\n"),
            (&["SPOP", "s", "0"], "*0\r\n"),
            (&["SPOP", "s"], "$1\r\nb\r\n"),
            (&["EXISTS", "s"], ":0\r\n"),
            (&["TYPE", "s"], "+none\r\n"),
            (
                &["HSET", "h", "a"],
                "-ERR wrong number of arguments for 'hset' command\r\n",
            ),
            (&["HSET", "h", "a", "1", "b", "2"], ":2\r\n"),
            (&["HSET", "h", "a", "3", "c", "4"], ":1\r\n"),
            (&["HGET", "h", "a"], "$1\r\n3\r\n"),
            (&["HGET", "h", "zz"], "$-1\r\n"),
            (&["HLEN", "h"], ":3\r\n"),
            (&["HEXISTS", "h", "c"], ":1\r\n"),
            (&["HDEL", "h", "a", "b", "zz"], ":2\r\n"),
            (&["HGETALL", "h"], "*2\r\n$1\r\nc\r\n$1\r\n4\r\n"),
            (&["TYPE", "h"], "+hash\r\n"),
            (&["SADD", "h", "x"], WRONGTYPE),
            (&["HDEL", "h", "c"], ":1\r\n"),
            (&["EXISTS", "h"], ":0\r\n"),
        ],
    );
}

#[test]
fn sorted_sets_reply_as_redis() {
    let r = Redis::start(&[]);
    exchange(
        &r,
        &[
            (
                &["ZADD", "z", "0.1", "a", "1e21", "c", "-inf", "d"],
                ":3\r\n",
            ),
            (
                &["ZRANGE", "z", "0", "-1", "WITHSCORES"],
                "*6\r\n$1\r\nd\r\n$4\r\n-inf\r\n$1\r\na\r\n$19\r\n0.10000000000000001\r\n\
                 $1\r\nc\r\n$5\r\n1e+21\r\n",
            ),
            (&["ZPOPMIN", "z"], "*2\r\n$1\r\nd\r\n$4\r\n-inf\r\n"),
            (
                &["ZPOPMIN", "z", "-1"],
                "-ERR value is out of range, must be positive\r\n",
            ),
            (&["ZPOPMIN", "nokey"], "*0\r\n"),
            (
                &["ZADD", "z", "nan", "x"],
                "-ERR value is not a valid float\r\n",
            ),
            (&["ZADD", "z", "1", "a", "2"], "-ERR syntax error\r\n"),
            (
                &["ZADD", "z", "NX", "XX", "1", "a"],
                "-ERR XX and NX options at the same time are not compatible\r\n",
            ),
            (
                &["ZADD", "z", "GT", "NX", "1", "a"],
                "-ERR GT, LT, and/or NX options at the same time are not compatible\r\n",
            ),
            (
                &["ZADD", "z", "INCR", "1", "a"],
                "$18\r\n1.1000000000000001\r\n",
            ),
            (&["ZADD", "z", "CH", "5", "a", "7", "new"], ":2\r\n"),
            (&["ZADD", "z", "GT", "1", "a"], ":0\r\n"),
            (&["ZINCRBY", "z", "1.5", "a"], "$3\r\n6.5\r\n"),
            (&["ZSCORE", "z", "a"], "$3\r\n6.5\r\n"),
            (&["ZSCORE", "z", "nobody"], "$-1\r\n"),
            (&["ZCARD", "z"], ":3\r\n"),
            (&["ZPOPMAX", "z"], "*2\r\n$1\r\nc\r\n$5\r\n1e+21\r\n"),
            (&["ZREM", "z", "a", "zz"], ":1\r\n"),
            (&["ZRANGE", "z", "0", "-1"], "*1\r\n$3\r\nnew\r\n"),
            (&["TYPE", "z"], "+zset\r\n"),
            (&["LPUSH", "z", "x"], WRONGTYPE),
        ],
    );
}

#[test]
fn collections_are_limited_by_max_elements() {
    let r = Redis::start(&["--max-elements", "3"]);
    let full = "-ERR the collection would hold more than 3 elements (--max-elements)\r\n";
    exchange(
        &r,
        &[
            (&["RPUSH", "l", "a", "b", "c", "d"], full),
            (&["EXISTS", "l"], ":0\r\n"),
            (&["RPUSH", "l", "a", "b", "c"], ":3\r\n"),
            (&["LPUSH", "l", "x"], full),
            (&["SADD", "s", "a", "b", "c", "d"], full),
            (&["SCARD", "s"], ":3\r\n"),
            (&["SADD", "s", "a"], ":0\r\n"),
            (&["HSET", "h", "a", "1", "b", "2", "c", "3", "d", "4"], full),
            (&["ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d"], full),
            (&["ZCARD", "z"], ":3\r\n"),
            (&["ZADD", "z", "9", "a"], ":0\r\n"),
        ],
    );
}

#[test]
fn help_lists_the_commands() {
    let out = run_output(
        binary().to_str().expect("path"),
        &["--help"],
        None,
        Duration::from_secs(10),
    );
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{help}");
    for c in [
        "PING",
        "SET",
        "GET",
        "INCR",
        "LPUSH",
        "RPUSH",
        "LPOP",
        "RPOP",
        "LRANGE",
        "SADD",
        "SPOP",
        "HSET",
        "ZADD",
        "ZPOPMIN",
        "MSET",
        "PUBLISH",
        "SUBSCRIBE",
    ] {
        assert!(
            help.split_whitespace().any(|w| w == c),
            "--help does not list {c}: {help}"
        );
    }
}

#[test]
fn redis_benchmark_default_suite_runs_to_the_end() {
    require("redis-benchmark");
    let r = Redis::start(&[]);
    let port = r.port.to_string();
    let out = run_output(
        "redis-benchmark",
        &["-p", &port, "-q", "-n", "20000"],
        None,
        Duration::from_secs(240),
    );
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "redis-benchmark failed: {text}");
    let results: Vec<&str> = text
        .split(['\r', '\n'])
        .filter(|l| l.contains("requests per second"))
        .collect();
    for t in [
        "PING_INLINE",
        "PING_MBULK",
        "SET",
        "GET",
        "INCR",
        "LPUSH",
        "RPUSH",
        "LPOP",
        "RPOP",
        "SADD",
        "HSET",
        "SPOP",
        "ZADD",
        "ZPOPMIN",
        "LRANGE_100",
        "LRANGE_300",
        "LRANGE_500",
        "LRANGE_600",
        "MSET",
    ] {
        assert!(
            results
                .iter()
                .any(|l| l.starts_with(&format!("{t}:")) || l.starts_with(&format!("{t} ("))),
            "no {t} result in {results:?}"
        );
    }
    assert!(
        !text.to_lowercase().contains("error"),
        "errors in the benchmark output: {text:?}"
    );
    // What the suite leaves: 20000 INCRs on one counter, one list of 20000 (pushed
    // 60000, popped 40000), the set and sorted set popped empty, one hash field.
    assert_eq!(r.cli(&["GET", "counter:__rand_int__"]), "20000");
    assert_eq!(r.cli(&["LLEN", "mylist"]), "20000");
    assert_eq!(r.cli(&["EXISTS", "myset", "myzset"]), "0");
    assert_eq!(r.cli(&["HLEN", "myhash"]), "1");
}
