//! The sending half: the application's calls (responses, body, trailers, resets, flow
//! control credit, shutdown).

use super::super::frame::{encode, ErrorCode, STREAM_ID_MASK};
use super::super::hpack::Field;
use super::headers::sendable;
use super::stream::{Closed, Stream};
use super::{Connection, Role, SendError, Shutdown, DRAIN_PING};

impl Connection {
    /// The open stream `id` if this side may still send on it.
    fn sendable_stream(&mut self, id: u32) -> Result<&mut Stream, SendError> {
        if self.error.is_some() {
            return Err(SendError::ConnectionClosed);
        }
        let s = self.streams.get_mut(id).ok_or(SendError::UnknownStream)?;
        if !s.send_open {
            return Err(SendError::Closed);
        }
        Ok(s)
    }

    /// Sends a response header section: `:status` then `fields` (lowercase names, no
    /// pseudo-headers nor connection-specific fields), split into HEADERS and
    /// CONTINUATION frames to fit the peer's SETTINGS_MAX_FRAME_SIZE. An informational
    /// status (1xx but 101) may come before the final one; `end_stream` ends the
    /// response (no body).
    pub fn send_headers(
        &mut self,
        stream: u32,
        status: u16,
        fields: &[Field<'_>],
        end_stream: bool,
    ) -> Result<(), SendError> {
        self.send_head(stream, status, fields.iter().copied(), end_stream)
    }

    /// [`send_headers`](Connection::send_headers) with the fields from an iterator
    /// (walked twice: checked, then encoded), for a caller that keeps them in a buffer
    /// of its own and would otherwise have to lay them out as a slice.
    pub(crate) fn send_head<'f, I>(
        &mut self,
        stream: u32,
        status: u16,
        fields: I,
        end_stream: bool,
    ) -> Result<(), SendError>
    where
        I: Iterator<Item = Field<'f>> + Clone,
    {
        if self.role != Role::Server {
            return Err(SendError::WrongRole);
        }
        let informational = status < 200;
        if !(100..=999).contains(&status) || status == 101 || (informational && end_stream) {
            return Err(SendError::Invalid);
        }
        let s = self.sendable_stream(stream)?;
        if s.headers_sent {
            return Err(SendError::HeadersSent);
        }
        if !fields
            .clone()
            .all(|f| sendable(f.name) && value_ok(f.value))
        {
            return Err(SendError::Invalid);
        }
        s.headers_sent = !informational;
        let digits = [
            b'0' + (status / 100) as u8,
            b'0' + (status / 10 % 10) as u8,
            b'0' + (status % 10) as u8,
        ];
        let head = Field::new(b":status", &digits);
        self.write_block(
            stream,
            std::iter::once(head).chain(fields.map(shorter)),
            end_stream,
        );
        Ok(())
    }

    /// Sends trailers, ending the response (after its headers).
    pub fn send_trailers(&mut self, stream: u32, fields: &[Field<'_>]) -> Result<(), SendError> {
        let s = self.sendable_stream(stream)?;
        if !s.headers_sent {
            return Err(SendError::NoHeaders);
        }
        if !fields.iter().all(|f| sendable(f.name) && value_ok(f.value)) {
            return Err(SendError::Invalid);
        }
        self.write_block(stream, fields.iter().copied(), true);
        Ok(())
    }

    pub(super) fn write_block<'f>(
        &mut self,
        id: u32,
        fields: impl Iterator<Item = Field<'f>>,
        end: bool,
    ) {
        self.scratch.clear();
        self.encoder.encode(fields, &mut self.scratch);
        encode::headers(
            &mut self.out,
            id,
            end,
            &self.scratch,
            self.peer.max_frame_size,
        );
        if self.scratch.capacity() > 64 << 10 {
            self.scratch = Vec::new();
        }
        if end {
            self.end_send(id);
        }
    }

    fn end_send(&mut self, id: u32) {
        // Only this stream changed: take it out if the peer's side is closed too,
        // without looking at the others.
        if let Some(unreleased) = self.streams.close_send(id) {
            self.reaped(unreleased);
        }
    }

    /// How many bytes of body [`send_data`](Connection::send_data) would take now on
    /// `stream`: the least of its send window, the connection's, and the output room
    /// (0 if the stream cannot send).
    pub fn send_capacity(&self, stream: u32) -> usize {
        match self.streams.get(stream) {
            Some(s) if s.send_open && s.headers_sent && self.error.is_none() => {
                let window = s.send_window.min(self.conn_send).max(0);
                let room = self.cfg.max_output.saturating_sub(self.pending_output());
                usize::try_from(window).unwrap_or(0).min(room)
            }
            _ => 0,
        }
    }

    /// Sends body bytes on a stream whose response headers were sent; returns how many
    /// of `data` it took, at most [`send_capacity`](Connection::send_capacity), in DATA
    /// frames of at most the peer's SETTINGS_MAX_FRAME_SIZE. END_STREAM is sent only
    /// if `end_stream` and all of `data` was taken (empty `data` with `end_stream`
    /// just ends the stream).
    ///
    /// When a flow-control window held it back, [`Event::Writable`](super::Event::Writable)
    /// tells when the stream can send again; when the output room did, flush the output
    /// and call again.
    pub fn send_data(
        &mut self,
        stream: u32,
        data: &[u8],
        end_stream: bool,
    ) -> Result<usize, SendError> {
        let room = self.cfg.max_output.saturating_sub(self.pending_output());
        let conn_send = self.conn_send;
        let s = self.sendable_stream(stream)?;
        if !s.headers_sent {
            return Err(SendError::NoHeaders);
        }
        let window = usize::try_from(s.send_window.min(conn_send).max(0)).unwrap_or(0);
        let n = data.len().min(window).min(room);
        let fin = end_stream && n == data.len();
        if n < data.len() && window < data.len() {
            s.blocked = true;
        }
        s.send_window -= n as i64;
        self.conn_send -= n as i64;
        let max = (self.peer.max_frame_size as usize).max(1);
        let mut chunks = data.get(..n).unwrap_or_default().chunks(max).peekable();
        let mut frames = 0u32;
        while let Some(chunk) = chunks.next() {
            let last = chunks.peek().is_none();
            encode::data(&mut self.out, stream, fin && last, chunk);
            frames += 1;
        }
        if n == 0 && fin {
            encode::data(&mut self.out, stream, true, b"");
        }
        // Each DATA frame sent may bring a WINDOW_UPDATE back: useful work.
        self.budgets.window_update.refund(frames);
        if fin {
            self.end_send(stream);
        }
        Ok(n)
    }

    /// Resets a stream (RST_STREAM with `code`, e.g. CANCEL or INTERNAL_ERROR): nothing
    /// more is sent or delivered on it.
    pub fn reset(&mut self, stream: u32, code: ErrorCode) -> Result<(), SendError> {
        if self.error.is_some() {
            return Err(SendError::ConnectionClosed);
        }
        if self.streams.get(stream).is_none() {
            return Err(SendError::UnknownStream);
        }
        self.reset_stream(stream, code);
        Ok(())
    }

    /// The application has consumed `n` more bytes of `stream`'s request body (from
    /// [`Event::Data`](super::Event::Data)): they are given back to the stream's and the
    /// connection's receive windows.
    ///
    /// Policy: a window is announced (WINDOW_UPDATE) once the bytes released and not
    /// announced reach half of its size, so the peer gets credit in large steps; bytes
    /// not released keep the window shut, and a peer that has used it up must wait —
    /// this is how a slow consumer slows the sender. Padding is released on receipt, and
    /// a stream's unreleased bytes are released when it closes or is reset (a `release`
    /// on a stream no longer open does nothing).
    pub fn release(&mut self, stream: u32, n: usize) {
        let Some(s) = self.streams.get_mut(stream) else {
            return;
        };
        let before = s.recv.unreleased;
        let inc = s.recv.release(n as u64, 0);
        let released = before - s.recv.unreleased;
        if let (Some(inc), true) = (inc, s.recv_open) {
            encode::window_update(&mut self.out, stream, inc);
        }
        self.release_connection(released, 0);
    }

    /// Starts a graceful shutdown (§6.8): GOAWAY with the last stream id 2^31-1 and a
    /// PING; when the PING's ACK comes back (every stream the peer opened before it has
    /// arrived), a second GOAWAY with the last stream actually opened. Streams up to it
    /// finish; later ones are refused (REFUSED_STREAM). [`is_done`](Connection::is_done)
    /// says when all have finished. Does nothing if shutting down already.
    ///
    /// Client role: GOAWAY with last stream id 0 (a server opens no streams) at once;
    /// the requests in flight finish, [`send_request`](Connection::send_request) is
    /// refused from here.
    pub fn shutdown(&mut self) {
        if self.error.is_some() || self.shutdown != Shutdown::No {
            return;
        }
        if self.role == Role::Client {
            self.go_away(ErrorCode::NO_ERROR, b"");
            return;
        }
        encode::goaway(&mut self.out, STREAM_ID_MASK, ErrorCode::NO_ERROR, b"");
        encode::ping(&mut self.out, DRAIN_PING);
        self.shutdown = Shutdown::Draining;
    }

    /// Sends the final GOAWAY at once, with `code` and `debug` data (at most 128 bytes
    /// sent), e.g. NO_ERROR on an idle timeout or SETTINGS_TIMEOUT: streams already
    /// open may finish, later ones are refused. Does nothing after a final GOAWAY.
    pub fn go_away(&mut self, code: ErrorCode, debug: &[u8]) {
        if self.error.is_some() || matches!(self.shutdown, Shutdown::Final(_)) {
            return;
        }
        let last = self.streams.last_peer_id;
        encode::goaway(&mut self.out, last, code, debug.get(..128).unwrap_or(debug));
        self.shutdown = Shutdown::Final(last);
        if code != ErrorCode::NO_ERROR {
            // An error: nothing more will be processed.
            let ids: Vec<u32> = self.streams.iter().map(|s| s.id).collect();
            for id in ids {
                self.streams.remove(id, Closed::LocalReset);
            }
        }
    }
}

/// A field seen for a shorter lifetime (to chain with one borrowed from the stack).
fn shorter<'a: 'b, 'b>(f: Field<'a>) -> Field<'b> {
    f
}

/// Whether a field value may be sent (no NUL, CR or LF, §8.2.1).
fn value_ok(v: &[u8]) -> bool {
    super::headers::value_octets_ok(v)
}
