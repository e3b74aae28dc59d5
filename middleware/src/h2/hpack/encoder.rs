//! The HPACK encoder (RFC 7541 §3, §6): header fields in, header blocks out.

use super::huffman;
use super::integer;
use super::table::{find_static, DynamicTable, Entry, Match, DYNAMIC_BASE, STATIC};
use super::DEFAULT_TABLE_SIZE;

/// Values longer than this are never added to the dynamic table: they would evict many
/// smaller entries, and long values rarely repeat verbatim.
pub const MAX_INDEXED_VALUE: usize = 64;

/// Names whose values are never added to the dynamic table: they change from one message
/// to the next (`:path`, lengths, validators, dates of the resource).
const NOT_INDEXED: &[&[u8]] = &[
    b":path",
    b"age",
    b"content-length",
    b"content-range",
    b"etag",
    b"if-modified-since",
    b"if-none-match",
    b"if-range",
    b"if-unmodified-since",
    b"last-modified",
    b"range",
];

/// Names always sent as never indexed (§6.2.3), as §7.1.3 advises for credentials.
const NEVER_INDEXED: &[&[u8]] = &[b"authorization", b"proxy-authorization"];

/// [`NOT_INDEXED`] and [`NEVER_INDEXED`] as bits of static-table indexes (every name in
/// them is in the static table; a test checks it): bit `i` for entry `i`.
const NOT_INDEXED_MASK: u64 = static_mask(NOT_INDEXED);
const NEVER_INDEXED_MASK: u64 = static_mask(NEVER_INDEXED);

const fn static_mask(names: &[&[u8]]) -> u64 {
    const fn same(a: &[u8], b: &[u8]) -> bool {
        if a.len() != b.len() {
            return false;
        }
        let mut i = 0;
        while i < a.len() {
            if a[i] != b[i] {
                return false;
            }
            i += 1;
        }
        true
    }
    let mut mask = 0u64;
    let mut i = 0;
    while i < STATIC.len() {
        let mut j = 0;
        while j < names.len() {
            if same(STATIC[i].0, names[j]) {
                mask |= 1 << (i + 1);
            }
            j += 1;
        }
        i += 1;
    }
    mask
}

/// One header field to encode.
///
/// Names must already be lowercase (RFC 9113 §8.2.1): the encoder sends the octets it is
/// given. `(&[u8], &[u8])` converts into a field that is not sensitive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field<'a> {
    /// The field name, lowercase.
    pub name: &'a [u8],
    /// The field value.
    pub value: &'a [u8],
    /// Sent with the never-indexed representation (§6.2.3): never added to a dynamic
    /// table, here or by intermediaries. For secrets that are short or guessable
    /// (cookies, tokens): it keeps them out of reach of compression-based attacks (§7.1).
    pub sensitive: bool,
}

impl<'a> Field<'a> {
    /// A field that is not sensitive.
    pub fn new(name: &'a [u8], value: &'a [u8]) -> Field<'a> {
        Field {
            name,
            value,
            sensitive: false,
        }
    }

    /// A sensitive field (never indexed).
    pub fn sensitive(name: &'a [u8], value: &'a [u8]) -> Field<'a> {
        Field {
            name,
            value,
            sensitive: true,
        }
    }
}

impl<'a> From<(&'a [u8], &'a [u8])> for Field<'a> {
    fn from((name, value): (&'a [u8], &'a [u8])) -> Field<'a> {
        Field::new(name, value)
    }
}

/// An HPACK encoder: the sending side of one connection's header compression.
///
/// # Policy
///
/// - A field equal to a static or dynamic table entry is sent as its index (§6.1).
/// - Otherwise it is a literal, its name an index when a table has the name (the static
///   table's first, else the dynamic table's newest), and it is added to the dynamic table
///   (§6.2.1) unless: it is sensitive ([`Field::sensitive`]) or an `authorization` /
///   `proxy-authorization` field (sent never indexed, §6.2.3); its name is one whose
///   values change from message to message (`:path`, `content-length`, `etag`,
///   `last-modified`, `if-*`, `range`, `content-range`, `age`); its value is longer than
///   [`MAX_INDEXED_VALUE`]; or its entry would take more than half the table. Those are
///   sent without indexing (§6.2.2).
/// - Each string is Huffman-coded when that is strictly shorter (§5.2): on a tie it stays
///   plain, which the peer decodes faster (and ours without copying).
///
/// The dynamic table uses at most 4096 octets ([`DEFAULT_TABLE_SIZE`]), less when the peer's
/// SETTINGS_HEADER_TABLE_SIZE is lower. The requests of RFC 7541 Appendix C.4 come out
/// byte for byte as the RFC shows them, and so do the responses of C.6 (with a 256-octet
/// table) but for `307`, three octets either way, left plain.
#[derive(Debug, Clone)]
pub struct Encoder {
    pub(super) table: DynamicTable,
    /// The table size the encoder may use at most, whatever the peer allows.
    limit: usize,
    /// Size updates owed at the start of the next block: the lowest size since the last
    /// block, and the size now (§4.2).
    pending_update: Option<(usize, usize)>,
}

impl Default for Encoder {
    fn default() -> Encoder {
        Encoder::new()
    }
}

impl Encoder {
    /// An encoder for a peer whose SETTINGS_HEADER_TABLE_SIZE is the initial 4096.
    pub fn new() -> Encoder {
        Encoder {
            table: DynamicTable::new(DEFAULT_TABLE_SIZE),
            limit: DEFAULT_TABLE_SIZE,
            pending_update: None,
        }
    }

    /// Takes the peer's new SETTINGS_HEADER_TABLE_SIZE `n` into account (call it as the
    /// peer's SETTINGS frame is processed, before encoding any later block).
    ///
    /// The table's size becomes `min(n, 4096)`; if that differs from the size before, the
    /// next block starts with dynamic table size updates (§4.2: the lowest size since the
    /// last block, then the current one).
    pub fn set_max_table_size(&mut self, n: usize) {
        let size = n.min(self.limit);
        if size == self.table.max_size() {
            return;
        }
        let lowest = self
            .pending_update
            .map_or(size, |(lowest, _)| lowest.min(size));
        self.pending_update = Some((lowest, size));
        self.table.set_max_size(size);
    }

    /// The dynamic table's current maximum size in octets.
    pub fn max_table_size(&self) -> usize {
        self.table.max_size()
    }

    /// The dynamic table's current size in octets (RFC 7541 §4.1: name + value + 32 per
    /// entry).
    pub fn table_size(&self) -> usize {
        self.table.size()
    }

    /// Appends the header block of `fields`, in order, to `out`.
    ///
    /// The block must be sent (in a HEADERS or PUSH_PROMISE frame and its CONTINUATION
    /// frames) before the next one is encoded, blocks in the order they were encoded: the
    /// peer's decoder follows the encoder's table changes block by block.
    pub fn encode<'a, I>(&mut self, fields: I, out: &mut Vec<u8>)
    where
        I: IntoIterator,
        I::Item: Into<Field<'a>>,
    {
        if let Some((lowest, size)) = self.pending_update.take() {
            if lowest < size {
                integer::encode(lowest, 5, 0x20, out);
            }
            integer::encode(size, 5, 0x20, out);
        }
        for field in fields {
            self.field(field.into(), out);
        }
    }

    fn field(&mut self, field: Field<'_>, out: &mut Vec<u8>) {
        let Field {
            name,
            value,
            sensitive,
        } = field;
        let found = find_static(name, value);
        let static_index = match found {
            Some(Match::Full(i) | Match::Name(i)) => i,
            None => 0,
        };
        // Both lists hold static-table names only: a bit of the entry's index says it.
        let listed = |mask: u64| mask >> static_index & 1 == 1;
        let never_name = listed(NEVER_INDEXED_MASK);
        let not_indexed_name = listed(NOT_INDEXED_MASK);
        let never = sensitive || never_name;
        let mut name_index = None;
        match found {
            Some(Match::Full(i)) if !never => {
                integer::encode(i, 7, 0x80, out);
                return;
            }
            Some(Match::Full(i) | Match::Name(i)) => name_index = Some(i),
            None => {}
        }
        // Names this encoder never adds to its table are not in it: no scan for them
        // (their name index is the static table's).
        let in_table = !(never_name || not_indexed_name);
        for (i, entry) in self.table.iter().enumerate().filter(|_| in_table) {
            if entry.name() != name {
                continue;
            }
            if !never && entry.value() == value {
                integer::encode(DYNAMIC_BASE + i, 7, 0x80, out);
                return;
            }
            name_index.get_or_insert(DYNAMIC_BASE + i);
        }
        let index = !never && !not_indexed_name && self.worth_indexing(name, value);
        let (prefix, flags) = match (index, never) {
            (true, _) => (6, 0x40),
            (false, true) => (4, 0x10),
            (false, false) => (4, 0x00),
        };
        match name_index {
            Some(i) => integer::encode(i, prefix, flags, out),
            None => {
                out.push(flags);
                string(name, out);
            }
        }
        string(value, out);
        if index {
            self.table.insert(Entry::new(name, value));
        }
    }

    /// Whether `name: value` goes into the dynamic table by its size (see the policy on
    /// [`Encoder`]; the names never indexed are left out by the caller).
    fn worth_indexing(&self, name: &[u8], value: &[u8]) -> bool {
        let size = name.len() + value.len() + 32;
        value.len() <= MAX_INDEXED_VALUE && size <= self.table.max_size() / 2
    }
}

/// Appends a string literal (§5.2), Huffman-coded when that is shorter.
fn string(s: &[u8], out: &mut Vec<u8>) {
    let coded = huffman::encoded_len(s);
    if coded < s.len() {
        integer::encode(coded, 7, 0x80, out);
        huffman::encode(s, out);
    } else {
        integer::encode(s.len(), 7, 0x00, out);
        out.extend_from_slice(s);
    }
}

#[cfg(test)]
mod mask_tests {
    use super::*;

    #[test]
    fn the_masks_hold_exactly_the_listed_names() {
        for (list, mask) in [
            (NOT_INDEXED, NOT_INDEXED_MASK),
            (NEVER_INDEXED, NEVER_INDEXED_MASK),
        ] {
            for name in list {
                assert!(find_static(name, b"").is_some(), "{name:?} not static");
            }
            for (i, (name, _)) in STATIC.iter().enumerate() {
                assert_eq!(
                    mask >> (i + 1) & 1 == 1,
                    list.contains(name),
                    "entry {}",
                    i + 1
                );
            }
            assert_eq!(mask & 1, 0);
        }
    }
}
