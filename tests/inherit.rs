//! A server takes over another one's listening sockets (`Handle::listeners`,
//! `Builder::inherit`): the port never closes, new connections reach the new server,
//! the old one's connections finish on it, and the sockets close with the last server.

mod common;

use std::io::{Read, Write};

use common::{unique_sock_path, Client, TestServer};
use wireloop::{Action, Conn, Handler, Server};

/// Answers every read with its name and what it read, and finishes what it has before
/// a shutdown closes it.
struct Named(&'static str);

impl Handler for Named {
    type State = ();
    fn data(&mut self, conn: &mut Conn<'_, ()>) -> Action {
        let n = conn.input().len();
        let (input, mut out) = conn.split();
        out.write(self.0.as_bytes());
        out.write(input);
        conn.consume(n);
        Action::None
    }
    fn draining(&mut self, _conn: &mut Conn<'_, ()>) -> bool {
        true
    }
}

fn ask(c: &mut Client, what: &[u8]) -> Vec<u8> {
    c.write_all(what).unwrap();
    let mut buf = vec![0; 1 + what.len()];
    c.read_exact(&mut buf).unwrap();
    buf
}

fn take_over(addrs: &[&str], loops: usize) {
    let mut b = Server::builder().loops(wireloop::Loops::Fixed(loops));
    for a in addrs {
        b = b.listen(a).unwrap();
    }
    let old = TestServer::start(b.build().unwrap(), |_| Named("A"));
    let mut kept = Client::connect(old.addr(0)).unwrap();
    assert_eq!(ask(&mut kept, b"1"), b"A1");

    // The new server listens on the same addresses (port 0 included: the address as
    // written), from the old one's sockets.
    let mut b = Server::builder().loops(wireloop::Loops::Fixed(loops));
    for a in addrs {
        b = b.listen(a).unwrap();
    }
    let listeners = old.handle.listeners().unwrap();
    assert_eq!(listeners.len(), addrs.len());
    let new = b.inherit(listeners).build().unwrap();
    assert_eq!(new.local_addrs(), &old.addrs[..], "the same sockets");
    let new = TestServer::start(new, |_| Named("B"));

    // While both run, a new connection reaches one or the other, never a refusal. The
    // old one's connection goes on being served by it while it drains.
    for i in 0..20u8 {
        let mut c = Client::connect(new.addr(0)).unwrap();
        let got = ask(&mut c, &[b'a' + i]);
        assert!(
            got == [b'A', b'a' + i] || got == [b'B', b'a' + i],
            "{got:?}"
        );
    }
    old.handle.shutdown();
    assert!(
        old.handle.listeners().is_err(),
        "no listeners to take over once shutdown began"
    );
    assert_eq!(ask(&mut kept, b"2"), b"A2", "kept on the old server");
    drop(kept);
    old.stop().unwrap();
    for addr in &new.addrs {
        let mut c = Client::connect(addr).unwrap();
        assert_eq!(
            ask(&mut c, b"3"),
            b"B3",
            "served after the old server stopped"
        );
    }

    // With the last server gone the sockets are closed: nothing accepts.
    let addrs = new.addrs.clone();
    new.stop().unwrap();
    for addr in &addrs {
        assert!(Client::connect(addr).is_err(), "{addr:?} still accepts");
    }
}

#[test]
fn a_new_server_takes_over_tcp_listeners() {
    take_over(
        &["tcp://127.0.0.1:0", "tcp://127.0.0.1:0?reuseport=true"],
        2,
    );
}

#[test]
fn a_new_server_takes_over_a_unix_listener_and_its_path() {
    let path = unique_sock_path("inherit");
    let addr = format!("unix://{}", path.display());
    take_over(&[&addr], 1);
    assert!(!path.exists(), "the path is removed with the last server");
}

#[test]
fn addresses_not_inherited_are_bound_and_sockets_not_taken_are_closed() {
    let old = TestServer::start(
        Server::builder()
            .listen("tcp://127.0.0.1:0")
            .unwrap()
            .listen("tcp://127.0.0.1:0?reuseport=true")
            .unwrap()
            .build()
            .unwrap(),
        |_| Named("A"),
    );
    // The new server keeps only the first address, and adds one of its own.
    let path = unique_sock_path("inherit-new");
    let new = Server::builder()
        .listen("tcp://127.0.0.1:0")
        .unwrap()
        .listen(&format!("unix://{}", path.display()))
        .unwrap()
        .inherit(old.handle.listeners().unwrap())
        .build()
        .unwrap();
    let new_addrs = new.local_addrs().to_vec();
    assert_eq!(new_addrs[0], old.addrs[0]);
    let dropped = old.addrs[1].clone();
    let new = TestServer::start(new, |_| Named("B"));
    old.stop().unwrap();
    assert!(
        Client::connect(&dropped).is_err(),
        "the listener the new server did not take closed with the old server"
    );
    for addr in &new_addrs {
        let mut c = Client::connect(addr).unwrap();
        assert_eq!(ask(&mut c, b"x"), b"Bx");
    }
    new.stop().unwrap();
}
