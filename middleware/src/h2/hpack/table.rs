//! The static table (RFC 7541 Appendix A) and the dynamic table (§2.3.2, §4).
//!
//! Indexes are those of §2.3.3: 1 to 61 address the static table, 62 and up the dynamic
//! table, newest entry first.

use std::collections::VecDeque;

/// The entries of the static table, index 1 first (RFC 7541 Appendix A).
pub(crate) const STATIC: [(&[u8], &[u8]); 61] = [
    (b":authority", b""),
    (b":method", b"GET"),
    (b":method", b"POST"),
    (b":path", b"/"),
    (b":path", b"/index.html"),
    (b":scheme", b"http"),
    (b":scheme", b"https"),
    (b":status", b"200"),
    (b":status", b"204"),
    (b":status", b"206"),
    (b":status", b"304"),
    (b":status", b"400"),
    (b":status", b"404"),
    (b":status", b"500"),
    (b"accept-charset", b""),
    (b"accept-encoding", b"gzip, deflate"),
    (b"accept-language", b""),
    (b"accept-ranges", b""),
    (b"accept", b""),
    (b"access-control-allow-origin", b""),
    (b"age", b""),
    (b"allow", b""),
    (b"authorization", b""),
    (b"cache-control", b""),
    (b"content-disposition", b""),
    (b"content-encoding", b""),
    (b"content-language", b""),
    (b"content-length", b""),
    (b"content-location", b""),
    (b"content-range", b""),
    (b"content-type", b""),
    (b"cookie", b""),
    (b"date", b""),
    (b"etag", b""),
    (b"expect", b""),
    (b"expires", b""),
    (b"from", b""),
    (b"host", b""),
    (b"if-match", b""),
    (b"if-modified-since", b""),
    (b"if-none-match", b""),
    (b"if-range", b""),
    (b"if-unmodified-since", b""),
    (b"last-modified", b""),
    (b"link", b""),
    (b"location", b""),
    (b"max-forwards", b""),
    (b"proxy-authenticate", b""),
    (b"proxy-authorization", b""),
    (b"range", b""),
    (b"referer", b""),
    (b"refresh", b""),
    (b"retry-after", b""),
    (b"server", b""),
    (b"set-cookie", b""),
    (b"strict-transport-security", b""),
    (b"transfer-encoding", b""),
    (b"user-agent", b""),
    (b"vary", b""),
    (b"via", b""),
    (b"www-authenticate", b""),
];

/// The first dynamic-table index (§2.3.3).
pub(crate) const DYNAMIC_BASE: usize = STATIC.len() + 1;

/// The overhead counted per entry on top of its name and value (§4.1).
pub(crate) const ENTRY_OVERHEAD: usize = 32;

/// A static-table match for a field: `Full(i)` when entry `i` has the name and the value,
/// `Name(i)` for the first entry with the name only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Match {
    /// Name and value match entry `i`.
    Full(usize),
    /// The name matches entry `i`.
    Name(usize),
}

/// Looks `name: value` up in the static table (entries sharing a name are adjacent, so a
/// name maps to one range of indexes).
pub(crate) fn find_static(name: &[u8], value: &[u8]) -> Option<Match> {
    let first = STATIC.iter().position(|&(n, _)| n == name)?;
    let full = STATIC[first..]
        .iter()
        .take_while(|&&(n, _)| n == name)
        .position(|&(_, v)| v == value);
    Some(match full {
        Some(k) => Match::Full(first + k + 1),
        None => Match::Name(first + 1),
    })
}

/// One dynamic-table entry: name and value in one allocation.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    bytes: Box<[u8]>,
    name_len: usize,
}

impl Entry {
    /// Copies `name` and `value` into one buffer.
    pub(crate) fn new(name: &[u8], value: &[u8]) -> Entry {
        let mut bytes = Vec::with_capacity(name.len() + value.len());
        bytes.extend_from_slice(name);
        bytes.extend_from_slice(value);
        Entry {
            bytes: bytes.into_boxed_slice(),
            name_len: name.len(),
        }
    }

    /// The field name.
    pub(crate) fn name(&self) -> &[u8] {
        self.bytes.get(..self.name_len).unwrap_or_default()
    }

    /// The field value.
    pub(crate) fn value(&self) -> &[u8] {
        self.bytes.get(self.name_len..).unwrap_or_default()
    }

    /// The size of the entry as §4.1 counts it.
    pub(crate) fn size(&self) -> usize {
        self.bytes.len() + ENTRY_OVERHEAD
    }
}

/// The dynamic table: entries newest first, their total size (§4.1), and the maximum that
/// size may reach (set by dynamic table size updates, §6.3).
#[derive(Debug, Clone)]
pub(crate) struct DynamicTable {
    entries: VecDeque<Entry>,
    size: usize,
    max_size: usize,
}

impl DynamicTable {
    /// An empty table whose size may reach `max_size`.
    pub(crate) fn new(max_size: usize) -> DynamicTable {
        DynamicTable {
            entries: VecDeque::new(),
            size: 0,
            max_size,
        }
    }

    /// The sum of the entries' sizes.
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// The maximum size.
    pub(crate) fn max_size(&self) -> usize {
        self.max_size
    }

    /// The number of entries.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Entry `i`, 0 the newest (index 62 of §2.3.3).
    pub(crate) fn get(&self, i: usize) -> Option<&Entry> {
        self.entries.get(i)
    }

    /// Changes the maximum size, evicting the oldest entries until the size fits (§4.3).
    pub(crate) fn set_max_size(&mut self, max_size: usize) {
        self.max_size = max_size;
        self.evict_to(max_size);
    }

    /// Adds `entry` as the newest (§4.4): older entries are evicted until it fits; an entry
    /// larger than the maximum size empties the table and is not added.
    pub(crate) fn insert(&mut self, entry: Entry) {
        let size = entry.size();
        if size > self.max_size {
            self.entries.clear();
            self.size = 0;
            return;
        }
        self.evict_to(self.max_size - size);
        self.size += size;
        self.entries.push_front(entry);
    }

    /// Evicts the oldest entries until the size is at most `limit`.
    fn evict_to(&mut self, limit: usize) {
        while self.size > limit {
            match self.entries.pop_back() {
                Some(e) => self.size -= e.size(),
                None => {
                    self.size = 0;
                    break;
                }
            }
        }
    }

    /// The entries, newest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_lookups() {
        assert_eq!(STATIC.len(), 61);
        assert_eq!(find_static(b":method", b"GET"), Some(Match::Full(2)));
        assert_eq!(find_static(b":method", b"POST"), Some(Match::Full(3)));
        assert_eq!(find_static(b":method", b"PUT"), Some(Match::Name(2)));
        assert_eq!(find_static(b":status", b"500"), Some(Match::Full(14)));
        assert_eq!(find_static(b":authority", b""), Some(Match::Full(1)));
        assert_eq!(
            find_static(b"www-authenticate", b"x"),
            Some(Match::Name(61))
        );
        assert_eq!(find_static(b"x-custom", b""), None);
        for (i, &(n, v)) in STATIC.iter().enumerate() {
            assert_eq!(find_static(n, v), Some(Match::Full(i + 1)), "{i}");
        }
    }

    fn contents(t: &DynamicTable) -> Vec<(Vec<u8>, Vec<u8>)> {
        t.iter()
            .map(|e| (e.name().to_vec(), e.value().to_vec()))
            .collect()
    }

    #[test]
    fn sizes_and_eviction() {
        // Each entry is 1 + 1 + 32 = 34 octets; 100 octets hold two.
        let mut t = DynamicTable::new(100);
        t.insert(Entry::new(b"a", b"1"));
        t.insert(Entry::new(b"b", b"2"));
        assert_eq!((t.len(), t.size()), (2, 68));
        t.insert(Entry::new(b"c", b"3"));
        assert_eq!((t.len(), t.size()), (2, 68));
        assert_eq!(
            contents(&t),
            [
                (b"c".to_vec(), b"3".to_vec()),
                (b"b".to_vec(), b"2".to_vec())
            ]
        );
        // A 66-octet entry evicts the oldest (68 + 66 > 100, 34 + 66 = 100 fits).
        t.insert(Entry::new(b"dd", b"0123456789abcdefghijklmnopqrstuv"));
        assert_eq!((t.len(), t.size()), (2, 100));
        assert_eq!(t.get(1).unwrap().name(), b"c");
        // Lowering the maximum evicts the oldest.
        t.set_max_size(70);
        assert_eq!((t.len(), t.size()), (1, 66));
        assert_eq!(t.get(0).unwrap().name(), b"dd");
        // An entry larger than the maximum empties the table (§4.4).
        t.insert(Entry::new(b"big", &[b'x'; 40]));
        assert_eq!((t.len(), t.size()), (0, 0));
        t.set_max_size(0);
        t.insert(Entry::new(b"", b""));
        assert_eq!((t.len(), t.size(), t.max_size()), (0, 0, 0));
        assert!(t.get(0).is_none());
    }
}
