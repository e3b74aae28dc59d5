//! Buffers a protocol layer keeps between the socket and the handler above it.

use bytes::Bytes;

use crate::buf::{InBuf, OutBuf};

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

    /// Reads decoded bytes straight into the input buffer from `r` (one call to `read`,
    /// with room for at least `min_room` bytes); returns what `read` returned.
    pub fn read_input_from<R: std::io::Read>(
        &mut self,
        r: &mut R,
        min_room: usize,
    ) -> std::io::Result<usize> {
        self.input.read_from(r, min_room)
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
