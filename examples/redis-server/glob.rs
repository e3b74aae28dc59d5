//! Redis's glob patterns (KEYS, CONFIG GET).

/// Whether the class starting at `p[i] == b'['` matches `c`, and where the pattern goes
/// on after it. As Redis: `^` negates, `a-z` is a range (either order), `\` escapes, an
/// unterminated class ends with the pattern.
fn class(p: &[u8], mut i: usize, c: u8) -> (bool, usize) {
    i += 1;
    let neg = p.get(i) == Some(&b'^');
    if neg {
        i += 1;
    }
    let mut hit = false;
    while i < p.len() {
        match p[i] {
            b']' => {
                i += 1;
                return (hit != neg, i);
            }
            b'\\' if i + 1 < p.len() => {
                i += 1;
                hit |= p[i] == c;
            }
            lo if i + 2 < p.len() && p[i + 1] == b'-' => {
                let hi = p[i + 2];
                let (lo, hi) = if lo <= hi { (lo, hi) } else { (hi, lo) };
                hit |= (lo..=hi).contains(&c);
                i += 2;
            }
            b => hit |= b == c,
        }
        i += 1;
    }
    (hit != neg, i)
}

/// Redis's glob: `*`, `?`, `[...]`, `\x`. Greedy with one backtrack point, so the time is
/// at most pattern × subject even for patterns like `*a*a*a*b`.
pub fn glob(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() {
            let step = match p[pi] {
                b'*' => {
                    while p.get(pi) == Some(&b'*') {
                        pi += 1;
                    }
                    if pi == p.len() {
                        return true;
                    }
                    star = Some((pi, si));
                    continue;
                }
                b'?' => Some(pi + 1),
                b'[' => match class(p, pi, s[si]) {
                    (true, next) => Some(next),
                    (false, _) => None,
                },
                b'\\' if pi + 1 < p.len() => (p[pi + 1] == s[si]).then_some(pi + 2),
                b => (b == s[si]).then_some(pi + 1),
            };
            if let Some(next) = step {
                pi = next;
                si += 1;
                continue;
            }
        }
        match star {
            Some((sp, ss)) => {
                pi = sp;
                si = ss + 1;
                star = Some((sp, ss + 1));
            }
            None => return false,
        }
    }
    while p.get(pi) == Some(&b'*') {
        pi += 1;
    }
    pi == p.len()
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        for (p, s, want) in [
            ("*", "", true),
            ("*", "abc", true),
            ("a*", "abc", true),
            ("a*", "bac", false),
            ("*c", "abc", true),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("h[ae]llo", "hello", true),
            ("h[ae]llo", "hallo", true),
            ("h[ae]llo", "hillo", false),
            ("h[^e]llo", "hallo", true),
            ("h[^e]llo", "hello", false),
            ("h[a-b]llo", "hbllo", true),
            ("h[b-a]llo", "hallo", true),
            ("h[a-b]llo", "hcllo", false),
            ("h\\*llo", "h*llo", true),
            ("h\\*llo", "hello", false),
            ("[\\]]", "]", true),
            ("a\\", "a\\", true),
            ("[abc", "b", true),
            (
                "*a*a*a*a*a*a*a*a*a*b",
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                false,
            ),
            ("user:*:name", "user:42:name", true),
            ("user:*:name", "user:42:age", false),
        ] {
            assert_eq!(glob(p.as_bytes(), s.as_bytes()), want, "{p:?} vs {s:?}");
        }
    }
}
