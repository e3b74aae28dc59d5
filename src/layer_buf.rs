//! Buffers a protocol layer keeps between the socket and the handler above it.

use bytes::Bytes;

use crate::buf::{InBuf, OutBuf};

thread_local! {
    /// Where [`LayerBuffers::read_input_from`] reads when the input buffer holds nothing
    /// (grown once per thread to the largest `min_room` asked for).
    static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The plaintext side of a protocol layer (TLS, say) for one connection: bytes the layer
/// decoded for the handler above it (`input`), and bytes that handler wrote for the layer
/// to encode (`output`). [`Conn::with_buffers`](crate::Conn::with_buffers) shows them to
/// the handler as its input and output, so the same byte handler runs unchanged above a
/// layer. Both sides free their memory whenever they are empty.
#[derive(Debug, Default)]
pub struct LayerBuffers {
    pub(crate) input: InBuf,
    pub(crate) out: OutBuf,
}

impl LayerBuffers {
    /// Empty buffers (no allocation until bytes arrive).
    pub fn new() -> LayerBuffers {
        LayerBuffers::default()
    }

    /// Decoded bytes the handler has not consumed yet.
    pub fn input(&self) -> &[u8] {
        self.input.bytes()
    }

    /// Appends decoded bytes for the handler.
    pub fn push_input(&mut self, data: &[u8]) {
        if self.input.is_empty() {
            self.input.set_from(data);
        } else {
            self.input.append(data);
        }
    }

    /// Reads decoded bytes into the input buffer from `r` (one call to `read`, with room
    /// for at least `min_room` bytes); returns what `read` returned.
    ///
    /// An empty input buffer holds no memory, so instead of allocating and zeroing
    /// `min_room` bytes for every call, the read goes through a per-thread scratch buffer
    /// and only the bytes read are kept. A layer that can lend out its decoded bytes (as
    /// rustls's `Reader::fill_buf` does) should copy them with
    /// [`push_input`](LayerBuffers::push_input) instead.
    pub fn read_input_from<R: std::io::Read>(
        &mut self,
        r: &mut R,
        min_room: usize,
    ) -> std::io::Result<usize> {
        if !self.input.is_empty() || self.input.room() >= min_room {
            return self.input.read_from(r, min_room);
        }
        SCRATCH.with(|scratch| {
            let Ok(mut scratch) = scratch.try_borrow_mut() else {
                // A reader that reads into layer buffers itself: no scratch to share.
                return self.input.read_from(r, min_room);
            };
            if scratch.len() < min_room {
                scratch.resize(min_room, 0);
            }
            let n = r.read(&mut scratch[..min_room])?;
            self.input.set_from(&scratch[..n]);
            Ok(n)
        })
    }

    /// Number of decoded bytes not consumed yet.
    pub fn input_len(&self) -> usize {
        self.input.len()
    }

    /// Bytes the handler wrote and the layer has not encoded yet.
    pub fn output_len(&self) -> usize {
        self.out.len()
    }

    /// Hands queued output to `encode`, front first, until it is empty or `encode` takes
    /// less than it was offered; `encode` returns how many bytes it took.
    pub fn drain_output(&mut self, mut encode: impl FnMut(&[u8]) -> usize) {
        while let Some(front) = self.out.front() {
            let offered = front.len();
            let took = encode(front).min(offered);
            self.out.advance_front(took);
            if took < offered {
                break;
            }
        }
    }

    /// Queues output as if the handler wrote it (for a layer's own messages).
    pub fn push_output(&mut self, data: Bytes) {
        self.out.write_bytes(data);
    }

    /// Frees the allocations of whichever side is empty.
    pub fn shrink(&mut self) {
        self.input.settle();
        if self.out.is_empty() {
            self.out.release();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::LayerBuffers;

    #[test]
    fn read_input_from_keeps_only_what_was_read_and_appends_after_leftovers() {
        let mut b = LayerBuffers::new();
        let mut src: &[u8] = b"hello world";
        assert_eq!(b.read_input_from(&mut src, 16 * 1024).unwrap(), 11);
        assert_eq!(b.input(), b"hello world");
        assert!(
            b.input.capacity() < 1024,
            "an empty buffer grew to {} bytes for 11",
            b.input.capacity()
        );
        // With input left over, the next read appends to it.
        let mut more: &[u8] = b"!!";
        assert_eq!(b.read_input_from(&mut more, 16).unwrap(), 2);
        assert_eq!(b.input(), b"hello world!!");
        // End of input reads 0 and keeps what is there.
        let mut end: &[u8] = b"";
        assert_eq!(b.read_input_from(&mut end, 16).unwrap(), 0);
        assert_eq!(b.input(), b"hello world!!");
        b.input.consume(13);
        b.shrink();
        assert_eq!(b.input.capacity(), 0, "an emptied buffer is freed");
        let mut again: &[u8] = b"x";
        assert_eq!(b.read_input_from(&mut again, 4096).unwrap(), 1);
        assert_eq!(b.input(), b"x");
    }
}
