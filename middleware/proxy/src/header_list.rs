//! A small list of header fields kept in two buffers (names, values), reused from request to request (no
//! allocation once warm): what a policy adds to or removes from an upstream request, and
//! the response head a response filter sees and edits.

/// Header fields in order, names compared without regard to case.
#[derive(Clone, Debug, Default)]
pub struct HeaderList {
    /// A parsed head's field section, copied whole (one copy for all its fields): the
    /// spans of fields taken from it point here.
    section: String,
    /// The names of fields added one by one, one after the other (kept as text: handing
    /// one out checks nothing).
    names: String,
    /// Their values, one after the other.
    values: Vec<u8>,
    spans: Vec<Span>,
    /// Some field came through [`append`](HeaderList::append), whose checks are looser
    /// than an HTTP/1.1 parser's (so the response writer checks the fields again).
    unparsed: bool,
}

/// Where a field's name and value lie: in `section` (both), or in `names` and `values`.
#[derive(Clone, Copy, Debug)]
struct Span {
    name: u32,
    name_len: u32,
    value: u32,
    value_len: u32,
    in_section: bool,
}

/// Most bytes a header list holds (a peer-controlled response head is far smaller: the
/// HTTP/1.1 reader's head limit applies first).
pub const MAX_HEADER_LIST: usize = 256 * 1024;

impl HeaderList {
    /// Empties the list, keeping its capacity.
    pub fn clear(&mut self) {
        self.unparsed = false;
        self.section.clear();
        self.names.clear();
        self.values.clear();
        self.spans.clear();
    }

    fn size(&self) -> usize {
        self.section.len() + self.names.len() + self.values.len()
    }

    /// Appends `name: value`. Ignored (`false`) if either holds CR, LF or NUL, the name is
    /// empty or holds `:` or whitespace, or the list is full.
    pub fn append(&mut self, name: &str, value: &[u8]) -> bool {
        let bad_name = name.is_empty() || name.bytes().any(|b| b <= b' ' || b == b':' || b == 0x7f);
        let bad_value = value.iter().any(|&b| matches!(b, b'\r' | b'\n' | 0));
        if bad_name || bad_value || self.size() + name.len() + value.len() > MAX_HEADER_LIST {
            return false;
        }
        self.unparsed = true;
        self.push(name, value);
        true
    }

    /// Whether every field came from a head the HTTP/1.1 parser accepted (or the proxy's
    /// own constants), none through [`append`](HeaderList::append) or
    /// [`insert`](HeaderList::insert).
    pub(crate) fn all_parsed(&self) -> bool {
        !self.unparsed
    }

    /// Says that the fields came from elsewhere than an HTTP/1.1 parser (an HTTP/2
    /// upstream's): the response writer checks them.
    pub(crate) fn mark_unparsed(&mut self) {
        self.unparsed = true;
    }

    /// Appends a field taken from a head the HTTP/1.1 parser accepted: its name is a token
    /// and its value holds no control byte but HTAB already, so only the size is checked.
    pub(crate) fn append_parsed(&mut self, name: &str, value: &[u8]) -> bool {
        if self.size() + name.len() + value.len() > MAX_HEADER_LIST {
            return false;
        }
        self.push(name, value);
        true
    }

    fn push(&mut self, name: &str, value: &[u8]) {
        let (n, v) = (self.names.len() as u32, self.values.len() as u32);
        self.names.push_str(name);
        self.values.extend_from_slice(value);
        self.spans.push(Span {
            name: n,
            name_len: name.len() as u32,
            value: v,
            value_len: value.len() as u32,
            in_section: false,
        });
    }

    /// Copies a parsed head's field section, whose fields
    /// [`append_from_section`](HeaderList::append_from_section) then takes without a copy
    /// of their own. Replaces the section copied before (call it on a cleared list).
    pub(crate) fn copy_section(&mut self, section: &str) -> bool {
        if self.size() - self.section.len() + section.len() > MAX_HEADER_LIST {
            return false;
        }
        self.section.clear();
        self.section.push_str(section);
        true
    }

    /// Appends a field of `section`, the head's field section given to
    /// [`copy_section`](HeaderList::copy_section) (name and value slices of it, as the
    /// HTTP/1.1 parser handed them out: already checked). A field from elsewhere is
    /// copied as [`append_parsed`](HeaderList::append_parsed) does.
    pub(crate) fn append_from_section(&mut self, section: &str, name: &str, value: &[u8]) -> bool {
        let base = section.as_ptr() as usize;
        let n = (name.as_ptr() as usize).wrapping_sub(base);
        let v = (value.as_ptr() as usize).wrapping_sub(base);
        let inside = section.len() == self.section.len()
            && n.checked_add(name.len())
                .is_some_and(|e| e <= section.len())
            && v.checked_add(value.len())
                .is_some_and(|e| e <= section.len());
        if !inside {
            return self.append_parsed(name, value);
        }
        self.spans.push(Span {
            name: n as u32,
            name_len: name.len() as u32,
            value: v as u32,
            value_len: value.len() as u32,
            in_section: true,
        });
        true
    }

    /// Replaces every `name` field with one `name: value`.
    pub fn insert(&mut self, name: &str, value: &[u8]) -> bool {
        self.remove(name);
        self.append(name, value)
    }

    /// Removes every `name` field (the bytes stay in the buffers until [`clear`]).
    ///
    /// [`clear`]: HeaderList::clear
    pub fn remove(&mut self, name: &str) {
        let (section, names) = (&self.section, &self.names);
        self.spans
            .retain(|sp| !span_name(section, names, sp).eq_ignore_ascii_case(name));
    }

    /// The first `name` field's value.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// Whether a `name` field is there.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The fields in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> + '_ {
        self.spans.iter().map(move |sp| {
            let (v, l) = (sp.value as usize, sp.value_len as usize);
            let values = if sp.in_section {
                self.section.as_bytes()
            } else {
                &self.values
            };
            (
                span_name(&self.section, &self.names, sp),
                values.get(v..v + l).unwrap_or_default(),
            )
        })
    }

    /// How many fields.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Drops buffers grown beyond `cap` bytes (an idle connection keeps little).
    pub fn shrink(&mut self, cap: usize) {
        if self.section.capacity() + self.names.capacity() + self.values.capacity() > cap {
            self.section = String::new();
            self.names = String::new();
            self.values = Vec::new();
        }
    }
}

/// A field's name, from the section or from the names added one by one.
#[inline]
fn span_name<'a>(section: &'a str, names: &'a str, sp: &Span) -> &'a str {
    let (s, n) = (sp.name as usize, sp.name_len as usize);
    let from = if sp.in_section { section } else { names };
    from.get(s..s + n).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::HeaderList;

    #[test]
    fn append_insert_remove_get() {
        let mut h = HeaderList::default();
        assert!(h.append("A", b"1"));
        assert!(h.append("b", b"2"));
        assert!(h.append("a", b"3"));
        assert_eq!(h.get("a"), Some(&b"1"[..]));
        h.insert("A", b"x");
        assert_eq!(
            h.iter().collect::<Vec<_>>(),
            [("b", &b"2"[..]), ("A", &b"x"[..])]
        );
        h.remove("B");
        assert_eq!(h.len(), 1);
        assert!(!h.append("bad name", b"v"));
        assert!(!h.append("ok", b"a\r\nb"));
        assert!(!h.append("", b"v"));
        h.clear();
        assert!(h.is_empty());
    }

    #[test]
    fn only_parsed_fields_skip_the_writers_checks() {
        let mut h = HeaderList::default();
        assert!(h.append_parsed("a", b"1"));
        assert!(h.all_parsed());
        h.remove("a");
        assert!(h.all_parsed());
        assert!(h.insert("b(c)", b"2"));
        assert!(!h.all_parsed());
        h.clear();
        assert!(h.all_parsed());
        h.mark_unparsed();
        assert!(!h.all_parsed());
    }

    #[test]
    fn fields_of_a_copied_section_point_into_the_copy() {
        let head = String::from("Server: x\r\nContent-Type: text/plain\r\nX-A: 1\r\n");
        let mut h = HeaderList::default();
        assert!(h.copy_section(&head));
        assert!(h.append_from_section(&head, &head[0..6], &head.as_bytes()[8..9]));
        assert!(h.append_parsed("Via", b"1.1 wireloop"));
        assert!(h.append_from_section(&head, &head[37..40], &head.as_bytes()[42..43]));
        // Not a slice of the section: copied on its own.
        assert!(h.append_from_section(&head, "Other", b"2"));
        drop(head);
        assert_eq!(
            h.iter().collect::<Vec<_>>(),
            [
                ("Server", &b"x"[..]),
                ("Via", &b"1.1 wireloop"[..]),
                ("X-A", &b"1"[..]),
                ("Other", &b"2"[..]),
            ]
        );
        assert!(h.all_parsed());
        h.remove("server");
        assert_eq!(h.get("x-a"), Some(&b"1"[..]));
        assert_eq!(h.len(), 3);
        h.clear();
        assert!(h.is_empty());
        assert!(!h.copy_section(&"x".repeat(super::MAX_HEADER_LIST + 1)));
    }
}
