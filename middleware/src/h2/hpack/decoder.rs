//! The HPACK decoder (RFC 7541 §3, §6): header blocks in, header fields out.

use std::fmt;

use super::huffman::{self, HuffmanError};
use super::integer::{self, IntError};
use super::table::{DynamicTable, Entry, DYNAMIC_BASE, ENTRY_OVERHEAD, STATIC};

/// The scratch buffer for Huffman-coded strings is given back after a block that grew it
/// past this capacity.
const SCRATCH_KEEP: usize = 64 * 1024;

/// Why a header block was refused.
///
/// Every error but [`HeaderListTooLarge`](DecodeError::HeaderListTooLarge) leaves the
/// decoder's dynamic table out of step with the peer's encoder: the connection must end
/// with a COMPRESSION_ERROR (RFC 9113 §4.3), which [`is_compression_error`] says.
///
/// [`is_compression_error`]: DecodeError::is_compression_error
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The block ends inside a representation (an integer or a string).
    Truncated,
    /// An integer is over `u32::MAX` or takes more than five continuation octets.
    IntegerOverflow,
    /// An index is 0 or past the end of the static and dynamic tables (§2.3.3, §6.1).
    InvalidIndex,
    /// A Huffman-coded string is invalid (§5.2).
    Huffman(HuffmanError),
    /// A dynamic table size update is above our SETTINGS_HEADER_TABLE_SIZE (§6.3).
    TableSizeUpdateTooLarge,
    /// A dynamic table size update follows a field representation (§4.2).
    TableSizeUpdateNotAtStart,
    /// The block does not start with the dynamic table size update that lowering our
    /// SETTINGS_HEADER_TABLE_SIZE below the table's size calls for (§4.2).
    TableSizeUpdateMissing,
    /// The decoded header list is larger than the limit given to
    /// [`Decoder::decode`] (RFC 9113 §6.5.2: name + value + 32 per field). The whole block
    /// was decoded and the dynamic table is up to date: the connection can go on, the
    /// stream be refused (431 or RST_STREAM).
    HeaderListTooLarge,
}

impl DecodeError {
    /// Whether the error is a connection error of type COMPRESSION_ERROR: all are but
    /// [`HeaderListTooLarge`](DecodeError::HeaderListTooLarge).
    pub fn is_compression_error(&self) -> bool {
        !matches!(self, DecodeError::HeaderListTooLarge)
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated => f.write_str("header block truncated"),
            DecodeError::IntegerOverflow => f.write_str("header block integer overflow"),
            DecodeError::InvalidIndex => f.write_str("header table index invalid"),
            DecodeError::Huffman(e) => write!(f, "{e}"),
            DecodeError::TableSizeUpdateTooLarge => {
                f.write_str("dynamic table size update above the setting")
            }
            DecodeError::TableSizeUpdateNotAtStart => {
                f.write_str("dynamic table size update after a header field")
            }
            DecodeError::TableSizeUpdateMissing => {
                f.write_str("dynamic table size update missing after the setting was lowered")
            }
            DecodeError::HeaderListTooLarge => f.write_str("header list too large"),
        }
    }
}

impl std::error::Error for DecodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DecodeError::Huffman(e) => Some(e),
            _ => None,
        }
    }
}

impl From<IntError> for DecodeError {
    fn from(e: IntError) -> DecodeError {
        match e {
            IntError::Truncated => DecodeError::Truncated,
            IntError::Overflow => DecodeError::IntegerOverflow,
        }
    }
}

impl From<HuffmanError> for DecodeError {
    fn from(e: HuffmanError) -> DecodeError {
        DecodeError::Huffman(e)
    }
}

/// An HPACK decoder: the receiving side of one connection's header compression.
///
/// It keeps the dynamic table the peer's encoder fills, bounded by our
/// SETTINGS_HEADER_TABLE_SIZE, and a scratch buffer for Huffman-coded strings. Header
/// blocks must be decoded in the order they arrive on the connection, each whole (a
/// HEADERS or PUSH_PROMISE frame and its CONTINUATION frames).
#[derive(Debug, Clone)]
pub struct Decoder {
    table: DynamicTable,
    /// Our SETTINGS_HEADER_TABLE_SIZE: the most a size update may ask for.
    max_setting: usize,
    /// The lowest setting since the last block, when it went below the table's maximum
    /// size: the next block must start with a size update to at most this.
    required_update: Option<usize>,
    /// Huffman-decoded strings of the field being decoded.
    scratch: Vec<u8>,
}

/// What [`Decoder::decode`] calls back with each field: name, value, sensitive.
type Callback<'f> = dyn FnMut(&[u8], &[u8], bool) + 'f;

/// Where a decoded string is: a plain string in the block, or decoded into the scratch.
#[derive(Clone, Copy)]
enum Str {
    Block(usize, usize),
    Scratch(usize, usize),
}

/// Where a field's name is.
#[derive(Clone, Copy)]
enum Name {
    Indexed(usize),
    Literal(Str),
}

/// Running count of the header list's size against the caller's limit.
struct ListSize {
    size: usize,
    limit: usize,
    exceeded: bool,
}

impl Decoder {
    /// A decoder with an empty dynamic table whose size is, and may be set by the peer up
    /// to, `max_table_size` octets.
    ///
    /// A connection starts with `Decoder::new(4096)` (the protocol's initial value, see
    /// [`DEFAULT_TABLE_SIZE`](super::DEFAULT_TABLE_SIZE)) and calls
    /// [`set_max_table_size`](Decoder::set_max_table_size) when the peer acknowledges a
    /// SETTINGS frame that changes it.
    pub fn new(max_table_size: usize) -> Decoder {
        Decoder {
            table: DynamicTable::new(max_table_size),
            max_setting: max_table_size,
            required_update: None,
            scratch: Vec::new(),
        }
    }

    /// Sets our SETTINGS_HEADER_TABLE_SIZE to `n`, once the peer has acknowledged it.
    ///
    /// Size updates above `n` are refused from now on. When `n` is below the table's
    /// current maximum size, the next header block must start with a size update to at
    /// most the lowest value set since the last block (RFC 7541 §4.2), or it is refused
    /// with [`DecodeError::TableSizeUpdateMissing`]. Until that update the table keeps its
    /// size: the peer's encoder has not evicted yet either.
    pub fn set_max_table_size(&mut self, n: usize) {
        self.max_setting = n;
        if n < self.table.max_size() {
            self.required_update = Some(self.required_update.map_or(n, |r| r.min(n)));
        }
    }

    /// Our SETTINGS_HEADER_TABLE_SIZE as last set.
    pub fn max_table_size(&self) -> usize {
        self.max_setting
    }

    /// The dynamic table's current size in octets (RFC 7541 §4.1: name + value + 32 per
    /// entry).
    pub fn table_size(&self) -> usize {
        self.table.size()
    }

    /// Decodes the header block `block`, calling `f(name, value, sensitive)` for each
    /// header field in order; `sensitive` is set for a field the peer sent as never indexed
    /// (§6.2.3), which an intermediary must forward the same way.
    ///
    /// The slices borrow the block, the dynamic table or the decoder's scratch buffer:
    /// nothing is allocated per field except a dynamic-table entry (one allocation) when
    /// the peer adds one, and scratch growth for Huffman-coded strings.
    ///
    /// When the fields' total size (name + value + 32 each, RFC 9113 §6.5.2) exceeds
    /// `max_header_list_size`, `f` is called no more for this block, but the block is
    /// still decoded to its end so the dynamic table stays in step with the peer, and
    /// [`DecodeError::HeaderListTooLarge`] is returned (unless a compression error comes
    /// later in the block). The fields already called back are then an incomplete list.
    ///
    /// Any other error is a COMPRESSION_ERROR: the decoder's state is then undefined (but
    /// safe) and the connection must end. This never panics, whatever the block.
    pub fn decode<F>(
        &mut self,
        block: &[u8],
        max_header_list_size: usize,
        mut f: F,
    ) -> Result<(), DecodeError>
    where
        F: FnMut(&[u8], &[u8], bool),
    {
        let mut list = ListSize {
            size: 0,
            limit: max_header_list_size,
            exceeded: false,
        };
        let result = self.decode_block(block, &mut list, &mut f);
        if self.scratch.capacity() > SCRATCH_KEEP {
            self.scratch = Vec::new();
        }
        result?;
        if list.exceeded {
            return Err(DecodeError::HeaderListTooLarge);
        }
        Ok(())
    }

    fn decode_block(
        &mut self,
        block: &[u8],
        list: &mut ListSize,
        f: &mut Callback<'_>,
    ) -> Result<(), DecodeError> {
        let mut pos = 0;
        // The size updates at the start of the block (§4.2).
        let mut lowest_update: Option<usize> = None;
        while let Some(&b) = block.get(pos) {
            if b & 0xe0 != 0x20 {
                break;
            }
            let (size, n) = integer::decode(&block[pos..], 5)?;
            pos += n;
            if size > self.max_setting {
                return Err(DecodeError::TableSizeUpdateTooLarge);
            }
            self.table.set_max_size(size);
            lowest_update = Some(lowest_update.map_or(size, |l| l.min(size)));
        }
        if let Some(required) = self.required_update.take() {
            if lowest_update.is_none_or(|l| l > required) {
                return Err(DecodeError::TableSizeUpdateMissing);
            }
        }

        while let Some(&b) = block.get(pos) {
            let rest = &block[pos..];
            if b & 0x80 != 0 {
                // Indexed header field (§6.1).
                let (index, n) = integer::decode(rest, 7)?;
                pos += n;
                let (name, value) = self.field(index)?;
                emit(list, f, name, value, false);
                continue;
            }
            let (prefix, indexing, sensitive) = match b {
                0x40..=0x7f => (6, true, false), // with incremental indexing (§6.2.1)
                0x20..=0x3f => return Err(DecodeError::TableSizeUpdateNotAtStart),
                0x10..=0x1f => (4, false, true), // never indexed (§6.2.3)
                _ => (4, false, false),          // without indexing (§6.2.2)
            };
            let (index, n) = integer::decode(rest, prefix)?;
            pos += n;
            self.scratch.clear();
            let name = if index == 0 {
                Name::Literal(string(block, &mut pos, &mut self.scratch)?)
            } else {
                Name::Indexed(index)
            };
            let value = string(block, &mut pos, &mut self.scratch)?;
            let name = match name {
                Name::Indexed(index) => self.field(index)?.0,
                Name::Literal(s) => resolve(s, block, &self.scratch),
            };
            let value = resolve(value, block, &self.scratch);
            emit(list, f, name, value, sensitive);
            if indexing {
                let entry = Entry::new(name, value);
                self.table.insert(entry);
            }
        }
        Ok(())
    }

    /// The name and value at `index` of the static and dynamic tables (§2.3.3).
    fn field(&self, index: usize) -> Result<(&[u8], &[u8]), DecodeError> {
        match index {
            0 => Err(DecodeError::InvalidIndex),
            i if i < DYNAMIC_BASE => STATIC
                .get(i - 1)
                .map(|&(n, v)| (n, v))
                .ok_or(DecodeError::InvalidIndex),
            i => self
                .table
                .get(i - DYNAMIC_BASE)
                .map(|e| (e.name(), e.value()))
                .ok_or(DecodeError::InvalidIndex),
        }
    }
}

/// Counts a field against the list limit and calls back while under it.
fn emit(list: &mut ListSize, f: &mut Callback<'_>, name: &[u8], value: &[u8], sensitive: bool) {
    if list.exceeded {
        return;
    }
    let size = name.len() + value.len() + ENTRY_OVERHEAD;
    list.size = list.size.saturating_add(size);
    if list.size > list.limit {
        list.exceeded = true;
        return;
    }
    f(name, value, sensitive);
}

/// Reads a string literal (§5.2) at `*pos`: a plain one stays in the block, a
/// Huffman-coded one is decoded onto the end of `scratch`.
fn string(block: &[u8], pos: &mut usize, scratch: &mut Vec<u8>) -> Result<Str, DecodeError> {
    let rest = block.get(*pos..).unwrap_or_default();
    let huffman = rest.first().ok_or(DecodeError::Truncated)? & 0x80 != 0;
    let (len, n) = integer::decode(rest, 7)?;
    let start = *pos + n;
    let end = start.checked_add(len).ok_or(DecodeError::Truncated)?;
    let data = block.get(start..end).ok_or(DecodeError::Truncated)?;
    *pos = end;
    if huffman {
        let from = scratch.len();
        huffman::decode(data, scratch)?;
        Ok(Str::Scratch(from, scratch.len()))
    } else {
        Ok(Str::Block(start, end))
    }
}

/// The octets of a string read by [`string`].
fn resolve<'a>(s: Str, block: &'a [u8], scratch: &'a [u8]) -> &'a [u8] {
    match s {
        Str::Block(a, b) => block.get(a..b),
        Str::Scratch(a, b) => scratch.get(a..b),
    }
    .unwrap_or_default()
}

#[cfg(test)]
#[path = "decoder_tests.rs"]
mod tests;
