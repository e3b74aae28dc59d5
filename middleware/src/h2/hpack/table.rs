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
    let (first, n) = static_name(name)?;
    let full = STATIC
        .get(first..first + n)
        .unwrap_or_default()
        .iter()
        .position(|&(_, v)| v == value);
    Some(match full {
        Some(k) => Match::Full(first + k + 1),
        None => Match::Name(first + 1),
    })
}

/// The position in [`STATIC`] of the first entry named `name` and how many entries
/// have that name: a switch on the length, then on the octets of the few names of that
/// length (fixed-size arrays, compared without a call), instead of a scan of the 61
/// entries.
fn static_name(name: &[u8]) -> Option<(usize, usize)> {
    Some(match name.len() {
        3 => match <&[u8; 3]>::try_from(name).ok()? {
            b"age" => (20, 1),
            b"via" => (59, 1),
            _ => return None,
        },
        4 => match <&[u8; 4]>::try_from(name).ok()? {
            b"date" => (32, 1),
            b"etag" => (33, 1),
            b"from" => (36, 1),
            b"host" => (37, 1),
            b"link" => (44, 1),
            b"vary" => (58, 1),
            _ => return None,
        },
        5 => match <&[u8; 5]>::try_from(name).ok()? {
            b":path" => (3, 2),
            b"allow" => (21, 1),
            b"range" => (49, 1),
            _ => return None,
        },
        6 => match <&[u8; 6]>::try_from(name).ok()? {
            b"accept" => (18, 1),
            b"cookie" => (31, 1),
            b"expect" => (34, 1),
            b"server" => (53, 1),
            _ => return None,
        },
        7 => match <&[u8; 7]>::try_from(name).ok()? {
            b":method" => (1, 2),
            b":scheme" => (5, 2),
            b":status" => (7, 7),
            b"expires" => (35, 1),
            b"referer" => (50, 1),
            b"refresh" => (51, 1),
            _ => return None,
        },
        8 => match <&[u8; 8]>::try_from(name).ok()? {
            b"if-match" => (38, 1),
            b"if-range" => (41, 1),
            b"location" => (45, 1),
            _ => return None,
        },
        10 => match <&[u8; 10]>::try_from(name).ok()? {
            b":authority" => (0, 1),
            b"set-cookie" => (54, 1),
            b"user-agent" => (57, 1),
            _ => return None,
        },
        11 => match <&[u8; 11]>::try_from(name).ok()? {
            b"retry-after" => (52, 1),
            _ => return None,
        },
        12 => match <&[u8; 12]>::try_from(name).ok()? {
            b"content-type" => (30, 1),
            b"max-forwards" => (46, 1),
            _ => return None,
        },
        13 => match <&[u8; 13]>::try_from(name).ok()? {
            b"accept-ranges" => (17, 1),
            b"authorization" => (22, 1),
            b"cache-control" => (23, 1),
            b"content-range" => (29, 1),
            b"if-none-match" => (40, 1),
            b"last-modified" => (43, 1),
            _ => return None,
        },
        14 => match <&[u8; 14]>::try_from(name).ok()? {
            b"accept-charset" => (14, 1),
            b"content-length" => (27, 1),
            _ => return None,
        },
        15 => match <&[u8; 15]>::try_from(name).ok()? {
            b"accept-encoding" => (15, 1),
            b"accept-language" => (16, 1),
            _ => return None,
        },
        16 => match <&[u8; 16]>::try_from(name).ok()? {
            b"content-encoding" => (25, 1),
            b"content-language" => (26, 1),
            b"content-location" => (28, 1),
            b"www-authenticate" => (60, 1),
            _ => return None,
        },
        17 => match <&[u8; 17]>::try_from(name).ok()? {
            b"if-modified-since" => (39, 1),
            b"transfer-encoding" => (56, 1),
            _ => return None,
        },
        18 => match <&[u8; 18]>::try_from(name).ok()? {
            b"proxy-authenticate" => (47, 1),
            _ => return None,
        },
        19 => match <&[u8; 19]>::try_from(name).ok()? {
            b"content-disposition" => (24, 1),
            b"if-unmodified-since" => (42, 1),
            b"proxy-authorization" => (48, 1),
            _ => return None,
        },
        25 => match <&[u8; 25]>::try_from(name).ok()? {
            b"strict-transport-security" => (55, 1),
            _ => return None,
        },
        27 => match <&[u8; 27]>::try_from(name).ok()? {
            b"access-control-allow-origin" => (19, 1),
            _ => return None,
        },
        _ => return None,
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
    fn static_name_finds_the_first_entry_of_each_name() {
        for (i, (name, _)) in STATIC.iter().enumerate() {
            let first = STATIC.iter().position(|(n, _)| n == name).unwrap();
            let count = STATIC.iter().filter(|(n, _)| n == name).count();
            assert_eq!(static_name(name), Some((first, count)), "entry {}", i + 1);
        }
        for other in [
            &b""[..],
            b":status2",
            b"Date",
            b"x-date",
            b"dat",
            b"content-typ",
        ] {
            assert_eq!(static_name(other), None);
        }
    }

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
