//! Tests of the connection state machine, driven by a raw frame writer and reader
//! playing the client ([`Peer`]).

mod basic;
mod client;
mod client_limits;
mod flow;
mod limits;
mod states;

use std::time::{Duration, Instant};

use super::super::frame::{decode, encode, ErrorCode, Frame, Setting, Status, PREFACE};
use super::super::hpack::{Decoder, Encoder, Field};
use super::{Config, ConnError, Connection, Event};

/// An event, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Ev {
    Request {
        stream: u32,
        method: Vec<u8>,
        path: Option<Vec<u8>>,
        fields: Vec<(Vec<u8>, Vec<u8>)>,
        end: bool,
    },
    Response {
        stream: u32,
        status: u16,
        fields: Vec<(Vec<u8>, Vec<u8>)>,
        end: bool,
    },
    Informational(u32, u16),
    Unprocessed(u32),
    Data(u32, Vec<u8>, bool),
    Trailers(u32, Vec<(Vec<u8>, Vec<u8>)>),
    Reset(u32, ErrorCode, bool),
    GoAway(u32, ErrorCode),
    Settings,
    Writable(u32),
}

/// A frame the server sent, owned; header blocks decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Out {
    Headers {
        stream: u32,
        end: bool,
        fields: Vec<(Vec<u8>, Vec<u8>)>,
    },
    Data(u32, Vec<u8>, bool),
    Rst(u32, ErrorCode),
    GoAway(u32, ErrorCode),
    Settings(Vec<Setting>),
    SettingsAck,
    Ping([u8; 8]),
    PingAck([u8; 8]),
    WindowUpdate(u32, u32),
}

fn fields<'a>(it: impl Iterator<Item = Field<'a>>) -> Vec<(Vec<u8>, Vec<u8>)> {
    it.map(|f| (f.name.to_vec(), f.value.to_vec())).collect()
}

/// The client side of a connection under test.
pub(super) struct Peer {
    pub(super) conn: Connection,
    pub(super) now: Instant,
    enc: Encoder,
    dec: Decoder,
    /// Bytes written by the peer and not consumed by the server yet.
    pending: Vec<u8>,
}

impl Peer {
    /// A server connection with `cfg`, after the client preface and an empty SETTINGS;
    /// the server's preface frames are read and checked away.
    pub(super) fn new(cfg: Config) -> Peer {
        let now = Instant::now();
        let mut p = Peer {
            conn: Connection::server(cfg, now),
            now,
            enc: Encoder::new(),
            dec: Decoder::new(4096),
            pending: Vec::new(),
        };
        let mut b = PREFACE.to_vec();
        encode::settings(&mut b, []);
        encode::settings_ack(&mut b);
        assert_eq!(p.send(&b).unwrap(), vec![Ev::Settings]);
        let out = p.read();
        assert!(matches!(out[0], Out::Settings(_)), "{out:?}");
        assert!(out.contains(&Out::SettingsAck), "{out:?}");
        p
    }

    pub(super) fn default() -> Peer {
        Peer::new(Config::default())
    }

    pub(super) fn tick(&mut self, d: Duration) {
        self.now += d;
    }

    /// Feeds bytes; returns the events. Everything whole must be consumed (a partial
    /// frame is kept for the next call).
    pub(super) fn send(&mut self, bytes: &[u8]) -> Result<Vec<Ev>, ConnError> {
        self.pending.extend_from_slice(bytes);
        let mut evs = Vec::new();
        let n = self
            .conn
            .recv(&self.pending, self.now, &mut |e| evs.push(own(e)))?;
        self.pending.drain(..n);
        Ok(evs)
    }

    /// Encodes a header block with the client's HPACK encoder.
    pub(super) fn block(&mut self, fields: &[(&str, &str)]) -> Vec<u8> {
        let mut b = Vec::new();
        self.enc.encode(
            fields
                .iter()
                .map(|(n, v)| Field::new(n.as_bytes(), v.as_bytes())),
            &mut b,
        );
        b
    }

    /// A HEADERS frame (one frame, END_HEADERS) with `fields`.
    pub(super) fn headers(&mut self, stream: u32, fields: &[(&str, &str)], end: bool) -> Vec<u8> {
        let block = self.block(fields);
        let mut b = Vec::new();
        encode::headers(&mut b, stream, end, &block, 16_384);
        b
    }

    /// A GET request's HEADERS frame.
    pub(super) fn get(&mut self, stream: u32) -> Vec<u8> {
        self.headers(stream, &request("GET", "/"), true)
    }

    /// A POST request's HEADERS frame (body follows).
    pub(super) fn post(&mut self, stream: u32) -> Vec<u8> {
        self.headers(stream, &request("POST", "/upload"), false)
    }

    /// Drains the server's output and decodes it.
    pub(super) fn read(&mut self) -> Vec<Out> {
        let out = self.conn.output().to_vec();
        self.conn.consume_output(out.len());
        let mut frames = Vec::new();
        let mut at = 0;
        let mut block: Option<(u32, bool, Vec<u8>)> = None;
        while at < out.len() {
            let Ok(Status::Complete((f, n))) = decode(&out[at..], 1 << 24) else {
                panic!("server output does not decode: {:?}", &out[at..]);
            };
            at += n;
            let whole = match f {
                Frame::Headers {
                    stream_id,
                    end_stream,
                    end_headers,
                    fragment,
                    ..
                } => {
                    block = Some((stream_id, end_stream, fragment.to_vec()));
                    end_headers
                }
                Frame::Continuation {
                    fragment,
                    end_headers,
                    ..
                } => {
                    block
                        .as_mut()
                        .expect("CONTINUATION")
                        .2
                        .extend_from_slice(fragment);
                    end_headers
                }
                f => {
                    assert!(block.is_none(), "{f:?} inside a header block");
                    frames.push(match f {
                        Frame::Data {
                            stream_id,
                            end_stream,
                            data,
                            ..
                        } => Out::Data(stream_id, data.to_vec(), end_stream),
                        Frame::RstStream { stream_id, code } => Out::Rst(stream_id, code),
                        Frame::GoAway {
                            last_stream_id,
                            code,
                            ..
                        } => Out::GoAway(last_stream_id, code),
                        Frame::Settings { ack: true, .. } => Out::SettingsAck,
                        Frame::Settings { params, .. } => Out::Settings(params.iter().collect()),
                        Frame::Ping { ack: false, data } => Out::Ping(data),
                        Frame::Ping { ack: true, data } => Out::PingAck(data),
                        Frame::WindowUpdate {
                            stream_id,
                            increment,
                        } => Out::WindowUpdate(stream_id, increment),
                        f => panic!("unexpected frame {f:?}"),
                    });
                    continue;
                }
            };
            if whole {
                let (stream, end, b) = block.take().expect("block");
                let mut fs = Vec::new();
                self.dec
                    .decode(&b, usize::MAX, |n, v, _| fs.push((n.to_vec(), v.to_vec())))
                    .expect("server header block decodes");
                frames.push(Out::Headers {
                    stream,
                    end,
                    fields: fs,
                });
            }
        }
        frames
    }

    /// Sends bytes that must end the connection with `code`: checks the error and the
    /// GOAWAY (the last frame queued).
    pub(super) fn expect_goaway(&mut self, bytes: &[u8], code: ErrorCode) -> ConnError {
        let e = self.send(bytes).expect_err("a connection error");
        assert_eq!(e.code(), code, "{e}");
        let out = self.read();
        match out.last() {
            Some(Out::GoAway(_, c)) => assert_eq!(*c, code),
            other => panic!("no GOAWAY but {other:?} in {out:?}"),
        }
        assert!(self.conn.is_done());
        // Later calls give the same error and queue nothing.
        assert_eq!(self.send(b"").unwrap_err(), e);
        assert!(self.conn.output().is_empty());
        e
    }

    /// Sends bytes that must reset `stream` with `code` (and nothing else).
    pub(super) fn expect_rst(&mut self, bytes: &[u8], stream: u32, code: ErrorCode) -> Vec<Ev> {
        let evs = self.send(bytes).expect("no connection error");
        let out = self.read();
        assert!(out.contains(&Out::Rst(stream, code)), "{out:?}");
        assert!(!out.iter().any(|o| matches!(o, Out::GoAway(..))), "{out:?}");
        evs
    }
}

/// The pseudo-headers of a request to http://example.com.
pub(super) fn request<'a>(method: &'a str, path: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        (":method", method),
        (":scheme", "https"),
        (":authority", "example.com"),
        (":path", path),
    ]
}

pub(super) fn data(stream: u32, payload: &[u8], end: bool) -> Vec<u8> {
    let mut b = Vec::new();
    encode::data(&mut b, stream, end, payload);
    b
}

pub(super) fn rst(stream: u32, code: ErrorCode) -> Vec<u8> {
    let mut b = Vec::new();
    encode::rst_stream(&mut b, stream, code);
    b
}

pub(super) fn window_update(stream: u32, inc: u32) -> Vec<u8> {
    let mut b = Vec::new();
    encode::window_update(&mut b, stream, inc);
    b
}

pub(super) fn settings(params: &[Setting]) -> Vec<u8> {
    let mut b = Vec::new();
    encode::settings(&mut b, params.iter().copied());
    b
}

pub(super) fn ping(payload: [u8; 8]) -> Vec<u8> {
    let mut b = Vec::new();
    encode::ping(&mut b, payload);
    b
}

pub(super) fn own(e: Event<'_>) -> Ev {
    match e {
        Event::Request {
            stream,
            request,
            end_stream,
        } => Ev::Request {
            stream,
            method: request.method.to_vec(),
            path: request.path.map(<[u8]>::to_vec),
            fields: fields(request.fields.iter()),
            end: end_stream,
        },
        Event::Data {
            stream,
            data,
            end_stream,
        } => Ev::Data(stream, data.to_vec(), end_stream),
        Event::Trailers { stream, fields: f } => Ev::Trailers(stream, fields(f.iter())),
        Event::Reset {
            stream,
            code,
            remote,
        } => Ev::Reset(stream, code, remote),
        Event::GoAway {
            last_stream_id,
            code,
            ..
        } => Ev::GoAway(last_stream_id, code),
        Event::Response {
            stream,
            response,
            end_stream,
        } => Ev::Response {
            stream,
            status: response.status,
            fields: fields(response.fields.iter()),
            end: end_stream,
        },
        Event::Informational { stream, status, .. } => Ev::Informational(stream, status),
        Event::Unprocessed { stream } => Ev::Unprocessed(stream),
        Event::Settings(_) => Ev::Settings,
        Event::Writable { stream } => Ev::Writable(stream),
    }
}
