//! Input and output buffers.
//!
//! A loop owns one [`InBuf`] (the shared read buffer) and one [`OutBuf`] (the staging output
//! queue). While a handler callback runs for a connection that holds no bytes of its own, its
//! input is the loop's read buffer and its output goes to the loop's staging queue; after the
//! callback, whatever is left over (unconsumed input, unsent output) moves into the
//! connection's own buffers. An idle connection therefore holds no buffer at all, and the
//! common path (read, answer, write everything) allocates nothing.

use std::collections::VecDeque;
use std::io::{self, IoSlice};

use bytes::{Buf, Bytes};

/// Most slices handed to one `writev`.
const MAX_IOVECS: usize = 64;
/// Writes smaller than this are copied into the tail chunk instead of queued as their own
/// `Bytes`: copying a few hundred bytes is cheaper than another iovec.
const COPY_BELOW: usize = 512;
/// A copied chunk is not grown beyond this; a new chunk starts instead.
const CHUNK_MAX: usize = 64 * 1024;
/// A new copy chunk has room for at least this much: a response written in a few pieces
/// (head, headers, body) allocates once instead of growing at each piece.
const CHUNK_MIN: usize = 4 * 1024;

/// Bytes read from a socket and not consumed yet: `buf[pos..end]`.
///
/// `buf` is always fully initialised (zeroed when it grows), so reads go straight into it
/// without `unsafe` and without zeroing on every read.
#[derive(Debug, Default)]
pub(crate) struct InBuf {
    buf: Vec<u8>,
    pos: usize,
    end: usize,
}

impl InBuf {
    /// An empty buffer with room for `cap` bytes (the loop's shared read buffer).
    pub(crate) fn with_capacity(cap: usize) -> InBuf {
        InBuf {
            buf: vec![0; cap],
            pos: 0,
            end: 0,
        }
    }

    /// The unconsumed bytes.
    #[inline]
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf[self.pos..self.end]
    }

    /// The unconsumed bytes, writable (a protocol transforms them in place).
    #[inline]
    pub(crate) fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.pos..self.end]
    }

    /// Number of unconsumed bytes.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.end - self.pos
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.pos == self.end
    }

    /// Marks `n` bytes as consumed (clamped to what is there).
    #[inline]
    pub(crate) fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.end);
    }

    /// Forgets every byte but keeps the allocation.
    #[inline]
    pub(crate) fn clear(&mut self) {
        self.pos = 0;
        self.end = 0;
    }

    /// Appends `bytes` after the unconsumed ones.
    pub(crate) fn append(&mut self, bytes: &[u8]) {
        if self.room() < bytes.len() {
            self.settle_front();
            if self.room() < bytes.len() {
                let want = (self.end + bytes.len()).max(self.buf.len() * 2);
                self.buf.resize(want, 0);
            }
        }
        self.buf[self.end..self.end + bytes.len()].copy_from_slice(bytes);
        self.end += bytes.len();
    }

    /// Moves the unconsumed bytes to the front.
    fn settle_front(&mut self) {
        if self.pos > 0 {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
        }
    }

    /// Replaces the content with `bytes`, allocating only what they need.
    pub(crate) fn set_from(&mut self, bytes: &[u8]) {
        if self.buf.len() < bytes.len() {
            self.buf = bytes.to_vec();
        } else {
            self.buf[..bytes.len()].copy_from_slice(bytes);
        }
        self.pos = 0;
        self.end = bytes.len();
    }

    /// Moves the unconsumed bytes to the front so the allocation can be reused, and frees it
    /// when nothing is left (a connection without pending input holds no buffer).
    pub(crate) fn settle(&mut self) {
        if self.is_empty() {
            *self = InBuf::default();
        } else if self.pos > 0 && self.pos >= self.end / 2 {
            self.buf.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
        }
    }

    /// Bytes currently allocated.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Free bytes after the data.
    #[inline]
    pub(crate) fn room(&self) -> usize {
        self.buf.len() - self.end
    }

    /// Reads once from `r` into the free space after the data, first growing the buffer so
    /// at least `min_room` bytes are free. Returns what `read` returned.
    pub(crate) fn read_from<R: io::Read>(
        &mut self,
        r: &mut R,
        min_room: usize,
    ) -> io::Result<usize> {
        if self.pos == self.end {
            self.pos = 0;
            self.end = 0;
        }
        if self.room() < min_room {
            let want = (self.end + min_room).max(self.buf.len() * 2);
            self.buf.resize(want, 0);
        }
        let n = r.read(&mut self.buf[self.end..])?;
        self.end += n;
        Ok(n)
    }
}

/// One queued piece of output.
#[derive(Debug)]
enum Chunk {
    /// Bytes copied from `write(&[u8])`.
    Copied(Vec<u8>),
    /// A zero-copy buffer from `write_bytes`.
    Shared(Bytes),
}

impl Chunk {
    #[inline]
    fn as_slice(&self) -> &[u8] {
        match self {
            Chunk::Copied(v) => v,
            Chunk::Shared(b) => b,
        }
    }
}

/// Output waiting for the socket, in order: the copied bytes `flat[flat_pos..]` first,
/// then the chunks (the first one sent from `front_pos`).
///
/// Most output is a few copied writes per event, sent whole: they go to `flat`, one
/// contiguous buffer that is written with one `send` and cleared in place (the loop's
/// staging queue keeps its allocation). Chunks come in once a zero-copy buffer is queued
/// (or `flat` is full); copied writes behind them go into copy chunks, in order.
#[derive(Debug, Default)]
pub(crate) struct OutBuf {
    flat: Vec<u8>,
    flat_pos: usize,
    chunks: VecDeque<Chunk>,
    front_pos: usize,
    len: usize,
    /// An emptied copy chunk kept for reuse (only the loop's staging queue keeps one).
    spare: Vec<u8>,
}

impl OutBuf {
    /// Bytes queued and not yet written.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Queues a copy of `data`.
    #[inline]
    pub(crate) fn write(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        self.len += data.len();
        if self.chunks.is_empty()
            && self.flat.len() + data.len() <= CHUNK_MAX.max(self.flat.capacity())
        {
            if self.flat.capacity() == 0 {
                self.flat.reserve(data.len().max(CHUNK_MIN));
            }
            self.flat.extend_from_slice(data);
            return;
        }
        self.write_chunk(data);
    }

    /// Whether copied writes go to the flat buffer now (no chunk queued): then
    /// [`append`](OutBuf::append) may be used, with room made for a first write.
    #[inline]
    pub(crate) fn start_appending(&mut self) -> bool {
        if !self.chunks.is_empty() {
            return false;
        }
        if self.flat.capacity() == 0 {
            self.flat.reserve(CHUNK_MIN);
        }
        true
    }

    /// Appends a copy of `data` to the flat buffer (after
    /// [`start_appending`](OutBuf::start_appending) said yes, with no other write since).
    #[inline(always)]
    pub(crate) fn append(&mut self, data: &[u8]) {
        self.flat.extend_from_slice(data);
        self.len += data.len();
    }

    /// Queues a copy of `data` behind the chunks.
    fn write_chunk(&mut self, data: &[u8]) {
        if let Some(Chunk::Copied(v)) = self.chunks.back_mut() {
            if v.len() + data.len() <= CHUNK_MAX.max(v.capacity()) {
                v.extend_from_slice(data);
                return;
            }
        }
        let mut v = std::mem::take(&mut self.spare);
        v.clear();
        v.reserve(data.len().max(CHUNK_MIN));
        v.extend_from_slice(data);
        self.chunks.push_back(Chunk::Copied(v));
    }

    /// Queues `data` without copying it (small buffers are copied: cheaper than an iovec).
    pub(crate) fn write_bytes(&mut self, data: Bytes) {
        if data.len() < COPY_BELOW {
            self.write(&data);
            return;
        }
        self.len += data.len();
        self.chunks.push_back(Chunk::Shared(data));
    }

    /// Writes queued bytes to `w` until the queue is empty (`Ok(true)`) or `w` would block
    /// (`Ok(false)`). Several chunks go out in one vectored write. Returns the bytes written
    /// through `written`.
    #[inline]
    pub(crate) fn flush_to<W: io::Write>(
        &mut self,
        w: &mut W,
        written: &mut usize,
    ) -> io::Result<bool> {
        while self.len > 0 {
            let res = if self.chunks.is_empty() {
                w.write(&self.flat[self.flat_pos..])
            } else {
                self.write_vectored(w)
            };
            match res {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    *written += n;
                    self.advance(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// One vectored write of the flat bytes and the chunks.
    #[inline(never)]
    fn write_vectored<W: io::Write>(&self, w: &mut W) -> io::Result<usize> {
        let mut iov = [IoSlice::new(&[]); MAX_IOVECS];
        let mut n = 0;
        if self.flat_pos < self.flat.len() {
            iov[0] = IoSlice::new(&self.flat[self.flat_pos..]);
            n = 1;
        }
        for (i, c) in self.chunks.iter().take(MAX_IOVECS - n).enumerate() {
            let s = c.as_slice();
            iov[n] = IoSlice::new(if i == 0 { &s[self.front_pos..] } else { s });
            n += 1;
        }
        if n == 1 {
            w.write(&iov[0])
        } else {
            w.write_vectored(&iov[..n])
        }
    }

    /// The first unsent bytes (all of the flat bytes or of the front chunk), if any.
    pub(crate) fn front(&self) -> Option<&[u8]> {
        if self.flat_pos < self.flat.len() {
            return Some(&self.flat[self.flat_pos..]);
        }
        self.chunks.front().map(|c| &c.as_slice()[self.front_pos..])
    }

    /// Drops `n` bytes (at most the front piece's) from the front.
    pub(crate) fn advance_front(&mut self, n: usize) {
        if n > 0 {
            self.advance(n);
        }
    }

    /// Drops `n` written bytes from the front.
    #[inline]
    fn advance(&mut self, mut n: usize) {
        self.len -= n;
        let flat_left = self.flat.len() - self.flat_pos;
        if n < flat_left {
            self.flat_pos += n;
            return;
        }
        if flat_left > 0 {
            n -= flat_left;
            self.flat.clear();
            self.flat_pos = 0;
        }
        if n > 0 {
            self.advance_chunks(n);
        }
    }

    /// Drops `n` written bytes from the chunks.
    fn advance_chunks(&mut self, mut n: usize) {
        while n > 0 {
            let front_len = self.chunks[0].as_slice().len() - self.front_pos;
            if n < front_len {
                self.front_pos += n;
                if let Some(Chunk::Shared(b)) = self.chunks.front_mut() {
                    b.advance(self.front_pos);
                    self.front_pos = 0;
                }
                return;
            }
            n -= front_len;
            self.front_pos = 0;
            if let Some(Chunk::Copied(v)) = self.chunks.pop_front() {
                if v.capacity() > self.spare.capacity() && v.capacity() <= CHUNK_MAX {
                    self.spare = v;
                }
            }
        }
    }

    /// Frees every allocation (a connection without pending output holds no buffer).
    pub(crate) fn release(&mut self) {
        debug_assert!(self.is_empty());
        *self = OutBuf::default();
    }

    /// Drops queued output (used when the socket is gone).
    pub(crate) fn discard(&mut self) {
        self.flat.clear();
        self.flat_pos = 0;
        self.chunks.clear();
        self.front_pos = 0;
        self.len = 0;
    }

    /// Bytes allocated by this queue.
    #[cfg(test)]
    pub(crate) fn capacity(&self) -> usize {
        self.flat.capacity()
            + self.spare.capacity()
            + self
                .chunks
                .iter()
                .map(|c| match c {
                    Chunk::Copied(v) => v.capacity(),
                    Chunk::Shared(b) => b.len(),
                })
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that accepts at most `limit` bytes per call and then blocks once every
    /// `block_every` calls.
    struct Trickle {
        out: Vec<u8>,
        limit: usize,
        calls: usize,
        block_every: usize,
    }

    impl io::Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.calls += 1;
            if self.block_every > 0 && self.calls.is_multiple_of(self.block_every) {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(self.limit);
            self.out.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            self.calls += 1;
            if self.block_every > 0 && self.calls.is_multiple_of(self.block_every) {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let mut left = self.limit;
            let mut n = 0;
            for b in bufs {
                let k = b.len().min(left);
                self.out.extend_from_slice(&b[..k]);
                n += k;
                left -= k;
                if left == 0 {
                    break;
                }
            }
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn out_keeps_order_across_partial_writes() {
        let mut q = OutBuf::default();
        let mut expect = Vec::new();
        for i in 0..200u32 {
            let piece: Vec<u8> = (0..(i * 37 % 3000)).map(|k| (k ^ i) as u8).collect();
            expect.extend_from_slice(&piece);
            match i % 4 {
                0 => q.write_bytes(Bytes::from(piece)),
                1 => {
                    let (a, b) = piece.split_at(piece.len() / 3);
                    if q.start_appending() {
                        q.append(a);
                        q.append(b"");
                        q.append(b);
                    } else {
                        q.write(a);
                        q.write(b);
                    }
                }
                _ => q.write(&piece),
            }
        }
        assert_eq!(q.len(), expect.len());
        let mut w = Trickle {
            out: Vec::new(),
            limit: 777,
            calls: 0,
            block_every: 5,
        };
        let mut written = 0;
        let mut rounds = 0;
        while !q.flush_to(&mut w, &mut written).unwrap() {
            rounds += 1;
            assert!(rounds < 100_000);
        }
        assert!(q.is_empty());
        assert_eq!(written, expect.len());
        assert_eq!(w.out, expect);
    }

    #[test]
    fn in_consume_and_settle() {
        let mut b = InBuf::default();
        b.set_from(b"hello world");
        b.consume(6);
        assert_eq!(b.bytes(), b"world");
        b.settle();
        assert_eq!(b.bytes(), b"world");
        b.consume(100);
        assert!(b.is_empty());
        b.settle();
        assert_eq!(b.capacity(), 0);
    }

    #[test]
    fn in_read_appends() {
        let mut b = InBuf::default();
        let mut src: &[u8] = b"abcdef";
        assert_eq!(b.read_from(&mut src, 16).unwrap(), 6);
        b.consume(2);
        let mut src2: &[u8] = b"gh";
        b.read_from(&mut src2, 4).unwrap();
        assert_eq!(b.bytes(), b"cdefgh");
    }

    #[test]
    fn front_walks_flat_then_chunks() {
        let mut q = OutBuf::default();
        q.write(b"ab");
        q.write_bytes(Bytes::from(vec![b'x'; COPY_BELOW]));
        q.write(b"cd");
        let mut got = Vec::new();
        while let Some(f) = q.front() {
            let take = f.len().min(3);
            got.extend_from_slice(&f[..take]);
            q.advance_front(take);
        }
        let mut want = b"ab".to_vec();
        want.extend_from_slice(&[b'x'; COPY_BELOW]);
        want.extend_from_slice(b"cd");
        assert_eq!(got, want);
        assert!(q.is_empty());
        // Drained, the flat buffer keeps its allocation; new writes go there again.
        q.write(b"ef");
        assert_eq!(q.front(), Some(&b"ef"[..]));
    }

    #[test]
    fn release_frees() {
        let mut q = OutBuf::default();
        q.write(b"abc");
        let mut sink = Vec::new();
        let mut n = 0;
        assert!(q.flush_to(&mut sink, &mut n).unwrap());
        q.release();
        assert_eq!(q.capacity(), 0);
    }
}
