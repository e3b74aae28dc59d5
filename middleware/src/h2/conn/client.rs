//! The client role's own parts: opening streams with requests
//! ([`Connection::send_request`]), how many more may be opened, reading response header
//! sections, and the streams a GOAWAY left unprocessed. Everything else (DATA, trailers,
//! flow control, limits, PING, SETTINGS) is shared with the server role.

use super::super::frame::{ErrorCode, STREAM_ID_MASK};
use super::super::hpack::Field;
use super::error::SendError;
use super::flow::RecvWindow;
use super::headers::{check_outgoing_request, check_response};
use super::recv::Sink;
use super::stream::{Closed, Stream};
use super::{ConnError, Connection, Event, Role, Shutdown};

impl Connection {
    /// Client role: opens a stream with a request's header section and returns its id.
    ///
    /// `fields` are the pseudo-header fields first (`:method`, and but for CONNECT
    /// `:scheme`, `:authority` and `:path`; `:protocol` for extended CONNECT), then the
    /// regular fields (lowercase names, no connection-specific ones; `te` only as
    /// `trailers`). They are checked with the rules a server holds requests to (RFC 9113
    /// §8.3.1) and split into HEADERS and CONTINUATION frames to fit the peer's
    /// SETTINGS_MAX_FRAME_SIZE. `end_stream`: no body follows; otherwise send it with
    /// [`send_data`](Connection::send_data) and end it there or with
    /// [`send_trailers`](Connection::send_trailers).
    ///
    /// Refused, with nothing queued: [`SendError::StreamLimit`] while the server's
    /// SETTINGS_MAX_CONCURRENT_STREAMS streams are open, [`SendError::GoingAway`] after
    /// its GOAWAY or our [`shutdown`](Connection::shutdown),
    /// [`SendError::StreamIdsExhausted`], [`SendError::Invalid`] for a malformed header
    /// section, [`SendError::ConnectionClosed`] after a connection error,
    /// [`SendError::WrongRole`] on a server.
    pub fn send_request(
        &mut self,
        fields: &[Field<'_>],
        end_stream: bool,
    ) -> Result<u32, SendError> {
        if self.role != Role::Client {
            return Err(SendError::WrongRole);
        }
        let id = self.next_stream_id()?;
        // The receive header buffer is free outside `recv`: check the request in it.
        self.headers.clear();
        for f in fields {
            self.headers.push(f.name, f.value, f.sensitive);
        }
        let head_request = check_outgoing_request(&self.headers).map_err(|_| SendError::Invalid)?;
        self.headers.clear();
        self.streams.last_local_id = id;
        self.streams.insert(Stream {
            id,
            recv_open: true,
            send_open: true,
            headers_sent: true,
            head_received: false,
            head_request,
            send_window: i64::from(self.peer.initial_window_size),
            recv: RecvWindow::new(self.local_window, self.local_window),
            content_length: None,
            received: 0,
            blocked: false,
        });
        self.idle_since = None;
        // A stream opened is useful work: the frames it may bring back are paid for.
        self.budgets.priority.refund(1);
        self.budgets.window_update.refund(1);
        self.budgets.reset.refund(1);
        self.write_block(id, fields.iter().copied(), end_stream);
        Ok(id)
    }

    /// The id the next request would get, or why there is none.
    fn next_stream_id(&self) -> Result<u32, SendError> {
        if self.error.is_some() {
            return Err(SendError::ConnectionClosed);
        }
        if self.peer_goaway.is_some() || self.shutdown != Shutdown::No {
            return Err(SendError::GoingAway);
        }
        let id = self.streams.last_local_id
            + if self.streams.last_local_id == 0 {
                1
            } else {
                2
            };
        if id > STREAM_ID_MASK {
            return Err(SendError::StreamIdsExhausted);
        }
        let limit = self.peer.max_concurrent_streams.unwrap_or(u32::MAX) as usize;
        if self.streams.len() >= limit {
            return Err(SendError::StreamLimit);
        }
        Ok(id)
    }

    /// Client role: how many more streams [`send_request`](Connection::send_request)
    /// may open now: the server's SETTINGS_MAX_CONCURRENT_STREAMS (unlimited until its
    /// SETTINGS say otherwise) less the streams open, bounded by the stream ids left; 0
    /// after GOAWAY (either side's), a connection error, or on a server. A pool opens
    /// another connection when this is 0.
    pub fn available_streams(&self) -> usize {
        if self.role != Role::Client || self.next_stream_id().is_err() {
            return 0;
        }
        let ids_left = (STREAM_ID_MASK - self.streams.last_local_id).div_ceil(2) as usize;
        let limit = self.peer.max_concurrent_streams.unwrap_or(u32::MAX) as usize;
        limit.saturating_sub(self.streams.len()).min(ids_left)
    }

    /// Client role: whether [`send_request`](Connection::send_request) may open a
    /// stream now (`available_streams() > 0`).
    pub fn can_open(&self) -> bool {
        self.available_streams() > 0
    }

    /// A header section on an open stream of ours whose final response head has not
    /// come: an informational or the final response head (§8.1, §8.3.2).
    pub(super) fn on_response(
        &mut self,
        id: u32,
        end_stream: bool,
        self_dependency: bool,
        sink: &mut Sink<'_>,
    ) -> Result<(), ConnError> {
        let info = match check_response(&self.headers) {
            Ok(info) if !self_dependency => info,
            _ => return self.stream_error(id, ErrorCode::PROTOCOL_ERROR, sink),
        };
        if info.status < 200 {
            if end_stream {
                // An informational response cannot end the stream.
                return self.stream_error(id, ErrorCode::PROTOCOL_ERROR, sink);
            }
            sink(Event::Informational {
                stream: id,
                status: info.status,
                fields: info.response(&self.headers).fields,
            });
            return Ok(());
        }
        let Some(s) = self.streams.get_mut(id) else {
            return Ok(());
        };
        // Responses to HEAD, 204 and 304 have no body whatever content-length says.
        let expected = if s.head_request || info.status == 204 || info.status == 304 {
            Some(0)
        } else {
            info.content_length
        };
        if end_stream && expected.is_some_and(|n| n > 0) {
            return self.stream_error(id, ErrorCode::PROTOCOL_ERROR, sink);
        }
        s.head_received = true;
        s.content_length = expected;
        if end_stream {
            s.recv_open = false;
        }
        sink(Event::Response {
            stream: id,
            response: info.response(&self.headers),
            end_stream,
        });
        Ok(())
    }

    /// After the server's GOAWAY: the streams above its `last_stream_id` were not
    /// processed; they are closed and reported, in order, to be retried elsewhere.
    pub(super) fn unprocessed_above(&mut self, last: u32, sink: &mut Sink<'_>) {
        let mut ids: Vec<u32> = self
            .streams
            .iter()
            .map(|s| s.id)
            .filter(|&id| id > last)
            .collect();
        ids.sort_unstable();
        for id in ids {
            if let Some(s) = self.streams.remove(id, Closed::LocalReset) {
                self.release_connection(s.recv.unreleased, 0);
                sink(Event::Unprocessed { stream: id });
            }
        }
        self.reap();
    }
}
