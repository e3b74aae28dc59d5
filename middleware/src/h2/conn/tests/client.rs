//! The client role against our own server role, in memory: bytes shuttled between two
//! [`Connection`]s until both are quiet.

use std::time::{Duration, Instant};

use super::super::super::frame::ErrorCode;
use super::super::super::hpack::Field;
use super::super::SendError;
use super::{own, Config, Connection, Ev};

/// A client and a server connection wired together.
pub(super) struct Pair {
    pub(super) client: Connection,
    pub(super) server: Connection,
    now: Instant,
    to_server: Vec<u8>,
    to_client: Vec<u8>,
    /// Events not yet looked at.
    pub(super) cev: Vec<Ev>,
    pub(super) sev: Vec<Ev>,
}

impl Pair {
    pub(super) fn new(client: Config, server: Config) -> Pair {
        let now = Instant::now();
        let mut p = Pair {
            client: Connection::client(client, now),
            server: Connection::server(server, now),
            now,
            to_server: Vec::new(),
            to_client: Vec::new(),
            cev: Vec::new(),
            sev: Vec::new(),
        };
        p.pump();
        assert_eq!(p.cev, vec![Ev::Settings]);
        assert_eq!(p.sev, vec![Ev::Settings]);
        p.cev.clear();
        p.sev.clear();
        p
    }

    /// Moves bytes both ways until neither side has output left (bounded).
    pub(super) fn pump(&mut self) {
        for _ in 0..10_000 {
            self.now += Duration::from_millis(1);
            let c = self.client.output().to_vec();
            self.client.consume_output(c.len());
            self.to_server.extend_from_slice(&c);
            let s = self.server.output().to_vec();
            self.server.consume_output(s.len());
            self.to_client.extend_from_slice(&s);
            if c.is_empty() && s.is_empty() {
                return;
            }
            let sev = &mut self.sev;
            let n = self
                .server
                .recv(&self.to_server, self.now, &mut |e| sev.push(own(e)))
                .expect("server");
            self.to_server.drain(..n);
            let cev = &mut self.cev;
            let n = self
                .client
                .recv(&self.to_client, self.now, &mut |e| cev.push(own(e)))
                .expect("client");
            self.to_client.drain(..n);
        }
        panic!("no quiet after 10,000 rounds");
    }

    pub(super) fn get(&mut self, path: &str, end: bool) -> Result<u32, SendError> {
        self.client.send_request(&request("GET", path), end)
    }
}

pub(super) fn request<'a>(method: &'a str, path: &'a str) -> Vec<Field<'a>> {
    vec![
        Field::new(b":method", method.as_bytes()),
        Field::new(b":scheme", b"http"),
        Field::new(b":authority", b"example.com"),
        Field::new(b":path", path.as_bytes()),
    ]
}

fn owned(f: &[(&str, &str)]) -> Vec<(Vec<u8>, Vec<u8>)> {
    f.iter()
        .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect()
}

#[test]
fn request_response_with_trailers_both_ways() {
    let mut p = Pair::new(Config::default(), Config::default());
    let mut req = request("POST", "/grpc.Svc/Call");
    req.push(Field::new(b"te", b"trailers"));
    let id = p.client.send_request(&req, false).unwrap();
    assert_eq!(id, 1);
    assert_eq!(p.client.send_data(id, b"ping", false), Ok(4));
    p.client
        .send_trailers(id, &[Field::new(b"x-sum", b"1")])
        .unwrap();
    p.pump();
    assert!(matches!(p.sev[0], Ev::Request { stream: 1, .. }));
    assert_eq!(p.sev[1], Ev::Data(1, b"ping".to_vec(), false));
    assert_eq!(p.sev[2], Ev::Trailers(1, owned(&[("x-sum", "1")])));
    p.server.send_headers(1, 100, &[], false).unwrap();
    p.server
        .send_headers(
            1,
            200,
            &[Field::new(b"content-type", b"application/grpc")],
            false,
        )
        .unwrap();
    p.server.send_data(1, b"pong", false).unwrap();
    p.server
        .send_trailers(1, &[Field::new(b"grpc-status", b"0")])
        .unwrap();
    p.pump();
    assert_eq!(
        p.cev,
        vec![
            Ev::Informational(1, 100),
            Ev::Response {
                stream: 1,
                status: 200,
                fields: owned(&[("content-type", "application/grpc")]),
                end: false
            },
            Ev::Data(1, b"pong".to_vec(), false),
            Ev::Trailers(1, owned(&[("grpc-status", "0")])),
        ]
    );
    assert_eq!(p.client.open_streams(), 0);
    assert_eq!(p.server.open_streams(), 0);
    assert!(p.client.idle_since().is_some());
}

#[test]
fn server_calls_on_a_client_and_bad_requests_are_refused() {
    let mut p = Pair::new(Config::default(), Config::default());
    assert_eq!(
        p.client.send_headers(1, 200, &[], true),
        Err(SendError::WrongRole)
    );
    assert_eq!(
        p.server.send_request(&request("GET", "/"), true),
        Err(SendError::WrongRole)
    );
    assert_eq!(p.server.available_streams(), 0);
    let mut bad = request("GET", "/");
    bad.push(Field::new(b"connection", b"close"));
    assert_eq!(p.client.send_request(&bad, true), Err(SendError::Invalid));
    assert_eq!(
        p.client.send_request(&request("GET", ""), true),
        Err(SendError::Invalid)
    );
    assert_eq!(
        p.client.send_request(&[Field::new(b":path", b"/")], true),
        Err(SendError::Invalid)
    );
    assert!(p.client.output().is_empty());
    // Nothing was used up: the next stream is still 1.
    assert_eq!(p.get("/", true), Ok(1));
}

/// Streams carry bodies four times the initial windows both ways, all at once.
#[test]
fn many_streams_with_large_bodies_both_ways() {
    const N: usize = 20;
    const LEN: usize = 4 * 65_535;
    let mut p = Pair::new(Config::default(), Config::default());
    let body: Vec<u8> = (0..LEN).map(|i| (i % 251) as u8).collect();
    let mut ids = Vec::new();
    for _ in 0..N {
        ids.push(
            p.client
                .send_request(&request("PUT", "/up"), false)
                .unwrap(),
        );
    }
    let mut sent = vec![0usize; N];
    let mut answered = [0usize; N];
    let mut got_req = [0usize; N];
    let mut got_resp = vec![0usize; N];
    let mut done = [false; N];
    for _ in 0..5_000 {
        for (i, &id) in ids.iter().enumerate() {
            if sent[i] < LEN {
                sent[i] += p.client.send_data(id, &body[sent[i]..], true).unwrap();
            }
            if got_req[i] == LEN && answered[i] < LEN {
                if answered[i] == 0 && p.server.send_capacity(id) == 0 {
                    let _ = p.server.send_headers(id, 200, &[], false);
                }
                answered[i] += p.server.send_data(id, &body[answered[i]..], true).unwrap();
            }
        }
        p.pump();
        for e in std::mem::take(&mut p.sev) {
            if let Ev::Data(id, d, _) = e {
                let i = ids.iter().position(|&x| x == id).unwrap();
                assert_eq!(&d[..], &body[got_req[i]..got_req[i] + d.len()]);
                got_req[i] += d.len();
                p.server.release(id, d.len());
            }
        }
        for e in std::mem::take(&mut p.cev) {
            match e {
                Ev::Data(id, d, end) => {
                    let i = ids.iter().position(|&x| x == id).unwrap();
                    assert_eq!(&d[..], &body[got_resp[i]..got_resp[i] + d.len()]);
                    got_resp[i] += d.len();
                    done[i] |= end;
                    p.client.release(id, d.len());
                }
                Ev::Response { status, .. } => assert_eq!(status, 200),
                Ev::Writable(_) => {}
                e => panic!("{e:?}"),
            }
        }
        if done.iter().all(|&d| d) {
            assert!(got_resp.iter().all(|&n| n == LEN));
            assert_eq!(p.client.open_streams(), 0);
            return;
        }
    }
    panic!("not done: sent {sent:?} got {got_resp:?}");
}

#[test]
fn max_concurrent_streams_is_respected() {
    let server = Config {
        max_concurrent_streams: 3,
        ..Config::default()
    };
    let mut p = Pair::new(Config::default(), server);
    assert_eq!(p.client.available_streams(), 3);
    for id in [1, 3, 5] {
        assert_eq!(p.get("/", true), Ok(id));
    }
    assert!(!p.client.can_open());
    assert_eq!(p.get("/", true), Err(SendError::StreamLimit));
    p.pump();
    p.server.send_headers(3, 204, &[], true).unwrap();
    p.pump();
    assert!(p.cev.contains(&Ev::Response {
        stream: 3,
        status: 204,
        fields: vec![],
        end: true
    }));
    assert_eq!(p.client.available_streams(), 1);
    assert_eq!(p.get("/", true), Ok(7));
    p.pump();
    assert!(
        p.sev.iter().all(|e| !matches!(e, Ev::Reset(..))),
        "{:?}",
        p.sev
    );
}

#[test]
fn resets_both_ways() {
    let mut p = Pair::new(Config::default(), Config::default());
    let a = p.get("/a", false).unwrap();
    let b = p.get("/b", true).unwrap();
    p.pump();
    p.client.reset(a, ErrorCode::CANCEL).unwrap();
    p.server.reset(b, ErrorCode::INTERNAL_ERROR).unwrap();
    p.pump();
    assert!(p.sev.contains(&Ev::Reset(a, ErrorCode::CANCEL, true)));
    assert!(p
        .cev
        .contains(&Ev::Reset(b, ErrorCode::INTERNAL_ERROR, true)));
    assert_eq!(
        p.client.send_data(a, b"x", true),
        Err(SendError::UnknownStream)
    );
    assert_eq!(p.client.open_streams(), 0);
    assert_eq!(p.server.open_streams(), 0);
}

/// GOAWAY mid-way: the streams the server saw finish, the ones in flight behind it are
/// reported unprocessed (retryable), and no new stream opens.
#[test]
fn goaway_reports_unprocessed_streams() {
    let mut p = Pair::new(Config::default(), Config::default());
    let a = p.get("/a", true).unwrap();
    let b = p.get("/b", true).unwrap();
    p.pump();
    // The server goes away; two more requests cross its GOAWAY on the wire.
    p.server.go_away(ErrorCode::NO_ERROR, b"bye");
    let c = p.get("/c", true).unwrap();
    let d = p.get("/d", true).unwrap();
    p.pump();
    assert_eq!(
        p.cev,
        vec![
            Ev::GoAway(b, ErrorCode::NO_ERROR),
            Ev::Unprocessed(c),
            Ev::Unprocessed(d)
        ]
    );
    assert_eq!(p.get("/e", true), Err(SendError::GoingAway));
    assert_eq!(p.client.available_streams(), 0);
    p.cev.clear();
    for id in [a, b] {
        p.server.send_headers(id, 200, &[], true).unwrap();
    }
    p.pump();
    assert_eq!(p.cev.len(), 2, "{:?}", p.cev);
    assert_eq!(p.client.open_streams(), 0);
    assert!(p.server.is_done());
}

#[test]
fn refused_stream_is_unprocessed() {
    let mut p = Pair::new(Config::default(), Config::default());
    let a = p.get("/a", true).unwrap();
    p.pump();
    p.server.reset(a, ErrorCode::REFUSED_STREAM).unwrap();
    p.pump();
    assert_eq!(p.cev, vec![Ev::Unprocessed(a)]);
}

#[test]
fn client_shutdown_lets_streams_finish() {
    let mut p = Pair::new(Config::default(), Config::default());
    let a = p.get("/a", true).unwrap();
    p.client.shutdown();
    assert_eq!(p.get("/b", true), Err(SendError::GoingAway));
    p.pump();
    assert!(p.sev.contains(&Ev::GoAway(0, ErrorCode::NO_ERROR)));
    assert!(!p.client.is_done());
    p.server.send_headers(a, 200, &[], true).unwrap();
    p.pump();
    assert!(p.client.is_done());
}

#[test]
fn head_response_with_content_length_has_no_body() {
    let mut p = Pair::new(Config::default(), Config::default());
    let a = p.client.send_request(&request("HEAD", "/"), true).unwrap();
    p.pump();
    p.server
        .send_headers(a, 200, &[Field::new(b"content-length", b"1000")], true)
        .unwrap();
    p.pump();
    assert!(
        matches!(
            p.cev[0],
            Ev::Response {
                status: 200,
                end: true,
                ..
            }
        ),
        "{:?}",
        p.cev
    );
}
