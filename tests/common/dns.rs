//! A real (tiny) DNS server for tests: UDP on 127.0.0.1, on a plain std thread, answering
//! A and AAAA queries from a table the test fills in.
//!
//! Unknown names get NXDOMAIN; a known name asked for a type it has no record of gets
//! NOERROR with no answers; "silent" names are never answered. Answers too big for the
//! query's UDP payload size are sent truncated (TC), but there is no TCP listener, so keep
//! record sets small.
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use hickory_proto::op::{Edns, Message, Metadata, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA};
use hickory_proto::rr::{RData, Record, RecordType};

/// TTL of every answer, in seconds, unless [`TestDns::set_ttl`] says otherwise.
const TTL: u32 = 60;
/// How often the server thread looks at its stop flag.
const POLL: Duration = Duration::from_millis(50);

/// The records a [`TestDns`] serves, by normalised name.
#[derive(Default)]
struct Zone {
    a: HashMap<String, Vec<Ipv4Addr>>,
    aaaa: HashMap<String, Vec<Ipv6Addr>>,
    silent: HashSet<String>,
    /// TTL of every answer (`None`: [`TTL`]).
    ttl: Option<u32>,
}

/// A DNS server on 127.0.0.1 (UDP) serving on a thread of its own; dropping it stops and
/// joins the thread.
pub struct TestDns {
    addr: SocketAddr,
    zone: Arc<Mutex<Zone>>,
    queries: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TestDns {
    /// Binds 127.0.0.1:0 and starts serving an empty zone.
    pub fn start() -> TestDns {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind test DNS socket");
        socket
            .set_read_timeout(Some(POLL))
            .expect("set test DNS read timeout");
        let addr = socket.local_addr().expect("test DNS local address");
        let zone = Arc::new(Mutex::new(Zone::default()));
        let queries = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (zone, queries, stop) = (zone.clone(), queries.clone(), stop.clone());
            std::thread::Builder::new()
                .name("test-dns".to_string())
                .spawn(move || serve(socket, &zone, &queries, &stop))
                .expect("spawn test DNS thread")
        };
        TestDns {
            addr,
            zone,
            queries,
            stop,
            thread: Some(thread),
        }
    }

    /// The server's address (127.0.0.1, UDP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Adds an A record (more than one per name is fine). Names match case-insensitively,
    /// with or without the trailing dot.
    pub fn add_a(&self, name: &str, ip: Ipv4Addr) {
        self.zone().a.entry(normalise(name)).or_default().push(ip);
    }

    /// Replaces `name`'s A records with `ips`.
    pub fn set_a(&self, name: &str, ips: &[Ipv4Addr]) {
        self.zone().a.insert(normalise(name), ips.to_vec());
    }

    /// The TTL of every answer from now on, in seconds (60 by default).
    pub fn set_ttl(&self, secs: u32) {
        self.zone().ttl = Some(secs);
    }

    /// Adds an AAAA record (more than one per name is fine).
    pub fn add_aaaa(&self, name: &str, ip: Ipv6Addr) {
        self.zone()
            .aaaa
            .entry(normalise(name))
            .or_default()
            .push(ip);
    }

    /// Queries for `name` (any type) are counted but never answered.
    pub fn set_silent(&self, name: &str) {
        self.zone().silent.insert(normalise(name));
    }

    /// How many queries (datagrams) the server has received.
    pub fn queries(&self) -> usize {
        self.queries.load(Ordering::SeqCst)
    }

    fn zone(&self) -> MutexGuard<'_, Zone> {
        self.zone
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for TestDns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Lower case, without a trailing dot.
fn normalise(name: &str) -> String {
    let name = name.strip_suffix('.').unwrap_or(name);
    name.to_ascii_lowercase()
}

/// The server loop: one datagram in, at most one out, until told to stop.
fn serve(socket: UdpSocket, zone: &Mutex<Zone>, queries: &AtomicUsize, stop: &AtomicBool) {
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::SeqCst) {
        let (len, peer) = match socket.recv_from(&mut buf) {
            Ok(received) => received,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // A previous answer's peer went away (ICMP port unreachable): not our problem.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
            Err(e) => panic!("test DNS recv: {e}"),
        };
        queries.fetch_add(1, Ordering::SeqCst);
        let Ok(request) = Message::from_vec(&buf[..len]) else {
            continue; // Not DNS; ignore it.
        };
        let zone = zone.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let Some(response) = respond(&request, &zone) else {
            continue;
        };
        drop(zone);
        if let Ok(bytes) = response.to_vec() {
            let _ = socket.send_to(&bytes, peer);
        }
    }
}

/// The answer to `request`, or `None` to stay silent.
fn respond(request: &Message, zone: &Zone) -> Option<Message> {
    let mut response = Message::response(request.metadata.id, request.metadata.op_code);
    response.metadata = Metadata::response_from_request(&request.metadata);
    response.metadata.authoritative = true;
    response.metadata.recursion_available = true;
    response.add_queries(request.queries.iter().cloned());
    let limit = match &request.edns {
        Some(edns) => {
            let mut ours = Edns::new();
            ours.set_max_payload(edns.max_payload().max(512));
            response.set_edns(ours);
            edns.max_payload().max(512)
        }
        None => 512,
    };

    let ttl = zone.ttl.unwrap_or(TTL);
    let mut known = request.queries.is_empty();
    for query in &request.queries {
        let key = normalise(&query.name().to_ascii());
        if zone.silent.contains(&key) {
            return None;
        }
        let a = zone.a.get(&key);
        let aaaa = zone.aaaa.get(&key);
        known |= a.is_some() || aaaa.is_some();
        let name = query.name().clone();
        match query.query_type() {
            RecordType::A => {
                for ip in a.into_iter().flatten() {
                    response.add_answer(Record::from_rdata(name.clone(), ttl, RData::A(A(*ip))));
                }
            }
            RecordType::AAAA => {
                for ip in aaaa.into_iter().flatten() {
                    response.add_answer(Record::from_rdata(
                        name.clone(),
                        ttl,
                        RData::AAAA(AAAA(*ip)),
                    ));
                }
            }
            _ => {}
        }
    }
    if !known {
        response.metadata.response_code = ResponseCode::NXDomain;
    }
    match response.to_vec() {
        Ok(bytes) if bytes.len() > usize::from(limit) => Some(response.truncate()),
        _ => Some(response),
    }
}
