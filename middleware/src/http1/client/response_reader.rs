//! Reading one response from a connection's input ([`ResponseReader`]): interim
//! responses, the head, then the body, as [`ClientEvent`]s.

use std::mem::MaybeUninit;

use httparse::Header;

use super::super::chunked::Decoded;
use super::super::Config;
use super::body_decoder::BodyDecoder;
use super::response_error::ResponseError;
use super::response_head::ResponseHead;
use super::response_parse::parse_response;

/// What [`ResponseReader::read`] produced.
#[derive(Debug)]
pub enum ClientEvent<'a> {
    /// An interim response (100 Continue, 103 Early Hints, ...): a final one follows.
    Interim(ResponseHead<'a>),
    /// The final response head (or a 101: the bytes after it are the new protocol's).
    Head(ResponseHead<'a>),
    /// A piece of the body (never empty).
    Data(&'a [u8]),
    /// The response is complete.
    End,
    /// All input was used; more is needed.
    NeedMore,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReadPhase {
    Head,
    Body,
    Done,
    Upgraded,
}

/// Reads one response from a connection's input: interim responses, then the head, then
/// the body. Make one per request (or [`reset`](ResponseReader::reset) it). Feed the
/// input from where the previous call stopped; after [`ClientEvent::End`] any further
/// input belongs to the next response (or is unexpected).
#[derive(Clone, Debug)]
pub struct ResponseReader {
    phase: ReadPhase,
    head_request: bool,
    body: BodyDecoder,
    keep_alive: bool,
}

impl ResponseReader {
    /// A reader for the response to a request; `head_request`: it was `HEAD`.
    pub fn new(head_request: bool) -> ResponseReader {
        ResponseReader {
            phase: ReadPhase::Head,
            head_request,
            body: BodyDecoder::Done,
            keep_alive: false,
        }
    }

    /// Starts over for the next request on the connection.
    pub fn reset(&mut self, head_request: bool) {
        *self = ResponseReader::new(head_request);
    }

    /// Reads from `input`: how many bytes were used and what they were.
    pub fn read<'a>(
        &mut self,
        input: &'a [u8],
        slots: &'a mut [MaybeUninit<Header<'a>>],
        cfg: &Config,
    ) -> Result<(usize, ClientEvent<'a>), ResponseError> {
        match self.phase {
            ReadPhase::Head => {
                let Some((len, head)) = parse_response(input, slots, cfg, self.head_request)?
                else {
                    return Ok((0, ClientEvent::NeedMore));
                };
                if head.is_interim() {
                    return Ok((len, ClientEvent::Interim(head)));
                }
                self.keep_alive = head.keep_alive();
                if head.is_upgrade() {
                    self.phase = ReadPhase::Upgraded;
                    self.body = BodyDecoder::Done;
                } else {
                    self.body = BodyDecoder::for_response(head.body());
                    self.phase = if self.body.is_done() {
                        ReadPhase::Done
                    } else {
                        ReadPhase::Body
                    };
                }
                Ok((len, ClientEvent::Head(head)))
            }
            ReadPhase::Body => {
                let (n, d) = self.body.decode(input)?;
                Ok((
                    n,
                    match d {
                        Decoded::Data(d) => ClientEvent::Data(d),
                        Decoded::Done => {
                            self.phase = ReadPhase::Done;
                            ClientEvent::End
                        }
                        Decoded::NeedMore => ClientEvent::NeedMore,
                    },
                ))
            }
            ReadPhase::Done => Ok((0, ClientEvent::End)),
            ReadPhase::Upgraded => Ok((0, ClientEvent::End)),
        }
    }

    /// The server closed its side: `Ok` if the response is complete with that (a body
    /// delimited by the close), else [`ResponseError::Truncated`].
    pub fn eof(&mut self) -> Result<(), ResponseError> {
        match self.phase {
            ReadPhase::Done | ReadPhase::Upgraded => Ok(()),
            ReadPhase::Head => Err(ResponseError::Truncated),
            ReadPhase::Body => {
                self.body.eof()?;
                self.phase = ReadPhase::Done;
                Ok(())
            }
        }
    }

    /// Whether the final head has been read.
    pub fn has_head(&self) -> bool {
        self.phase != ReadPhase::Head
    }

    /// Whether the response is complete.
    pub fn is_done(&self) -> bool {
        self.phase == ReadPhase::Done
    }

    /// Whether the response was a 101 (the connection now speaks another protocol).
    pub fn is_upgraded(&self) -> bool {
        self.phase == ReadPhase::Upgraded
    }

    /// Whether the connection may carry another request once the response is complete.
    pub fn keep_alive(&self) -> bool {
        self.keep_alive && self.phase == ReadPhase::Done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http1::header_slots;

    fn cfg() -> Config {
        Config::default()
    }

    /// Reads a whole exchange from `input` cut into `step`-byte reads: (interim statuses,
    /// final status, body, completed, bytes left over).
    fn exchange(
        input: &[u8],
        step: usize,
        head: bool,
        eof: bool,
    ) -> Result<(Vec<u16>, u16, Vec<u8>, bool), ResponseError> {
        let mut r = ResponseReader::new(head);
        let (mut interim, mut status, mut body, mut done) = (Vec::new(), 0, Vec::new(), false);
        let mut buf = Vec::new();
        let mut fed = 0;
        loop {
            if fed < input.len() {
                let n = step.min(input.len() - fed);
                buf.extend_from_slice(&input[fed..fed + n]);
                fed += n;
            }
            loop {
                let mut slots = header_slots();
                let (used, ev) = r.read(&buf, &mut slots, &cfg())?;
                let mut stop = false;
                match ev {
                    ClientEvent::Interim(h) => interim.push(h.status()),
                    ClientEvent::Head(h) => {
                        status = h.status();
                        if h.is_upgrade() {
                            done = true;
                            stop = true;
                        }
                    }
                    ClientEvent::Data(d) => body.extend_from_slice(d),
                    ClientEvent::End => {
                        done = true;
                        stop = true;
                    }
                    ClientEvent::NeedMore => stop = true,
                }
                buf.drain(..used);
                if stop {
                    break;
                }
            }
            if done || fed == input.len() {
                break;
            }
        }
        if !done && eof {
            r.eof()?;
            done = r.is_done();
        }
        Ok((interim, status, body, done))
    }

    #[test]
    fn exchanges_at_every_step() {
        /// (input, HEAD request, ends with EOF, interim statuses, status, body)
        type Case = (
            &'static [u8],
            bool,
            bool,
            &'static [u16],
            u16,
            &'static [u8],
        );
        let cases: &[Case] = &[
            (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false, false, &[], 200, b"hello"),
            (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: x\r\n\r\nHTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nT: 1\r\n\r\n", false, false, &[100, 103], 201, b"abcde"),
            (b"HTTP/1.1 200 OK\r\n\r\nuntil the end", false, true, &[], 200, b"until the end"),
            (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true, false, &[], 200, b""),
            (b"HTTP/1.1 304 Not Modified\r\n\r\n", false, false, &[], 304, b""),
            (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n", false, false, &[], 101, b""),
        ];
        for &(input, head, eof, interim, status, body) in cases {
            for step in 1..=input.len() {
                let (i, s, b, done) = exchange(input, step, head, eof).unwrap_or_else(|e| {
                    panic!("step {step}: {e}: {:?}", String::from_utf8_lossy(input))
                });
                assert_eq!(
                    (i.as_slice(), s, b.as_slice(), done),
                    (interim, status, body, true),
                    "step {step}"
                );
            }
        }
    }

    #[test]
    fn truncated_bodies_are_errors() {
        for input in [
            &b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel"[..],
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
            b"HTTP/1.1 200 OK\r\nContent-",
        ] {
            assert_eq!(
                exchange(input, 7, false, true).unwrap_err(),
                ResponseError::Truncated
            );
        }
    }

    #[test]
    fn bad_chunks_are_errors() {
        for input in [
            &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"[..],
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\nx\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nxx\r\n0\r\n\r\n",
        ] {
            assert!(matches!(
                exchange(input, 3, false, true),
                Err(ResponseError::Chunked(_))
            ));
        }
    }

    #[test]
    fn keep_alive_after_complete_only() {
        let input = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";
        let mut r = ResponseReader::new(false);
        let mut slots = header_slots();
        let (n, _) = r.read(input, &mut slots, &cfg()).unwrap();
        assert!(!r.keep_alive());
        let mut slots = header_slots();
        let (m, ev) = r.read(&input[n..], &mut slots, &cfg()).unwrap();
        assert!(matches!(ev, ClientEvent::Data(b"hi")));
        assert_eq!(n + m, input.len());
        let mut slots = header_slots();
        assert!(matches!(
            r.read(b"", &mut slots, &cfg()).unwrap().1,
            ClientEvent::End
        ));
        assert!(r.keep_alive());
    }
}
