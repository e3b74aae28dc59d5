//! The `Date` header (IMF-fixdate, RFC 9110 §5.6.7), formatted once per second and reused
//! by every response in between.

use std::time::{SystemTime, UNIX_EPOCH};

/// Length of an IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
pub const IMF_FIXDATE_LEN: usize = 29;

/// A ready `Date: ...\r\n` header line, refreshed when the second changes.
#[derive(Clone, Debug)]
pub struct HttpDate {
    secs: u64,
    /// `Date: <IMF-fixdate>\r\nContent-Length: `: the line, then the start of the line
    /// that follows it in most responses.
    line: [u8; LINE_LEN + CONTENT_LENGTH.len()],
}

const LINE_LEN: usize = 6 + IMF_FIXDATE_LEN + 2;
const CONTENT_LENGTH: &[u8; 16] = b"Content-Length: ";

impl Default for HttpDate {
    fn default() -> HttpDate {
        HttpDate::now()
    }
}

impl HttpDate {
    /// The line for the current time.
    pub fn now() -> HttpDate {
        HttpDate::at(unix_now())
    }

    /// The line for `secs` seconds after the Unix epoch.
    pub fn at(secs: u64) -> HttpDate {
        let mut d = HttpDate {
            secs,
            line: *b"Date: Thu, 01 Jan 1970 00:00:00 GMT\r\nContent-Length: ",
        };
        let mut buf = [0u8; IMF_FIXDATE_LEN];
        format_imf_fixdate(secs, &mut buf);
        d.line[6..6 + IMF_FIXDATE_LEN].copy_from_slice(&buf);
        d
    }

    /// Reformats the line if `secs` is another second than the one it holds.
    #[inline]
    pub fn update(&mut self, secs: u64) {
        if secs != self.secs {
            *self = HttpDate::at(secs);
        }
    }

    /// Reformats the line for the current time if the second changed.
    pub fn refresh(&mut self) {
        self.update(unix_now());
    }

    /// The whole header line, `Date: <IMF-fixdate>\r\n`.
    #[inline]
    pub fn header_line(&self) -> &[u8] {
        &self.line[..LINE_LEN]
    }

    /// The header line followed by `Content-Length: ` (a response head's usual next
    /// field, without its value).
    #[inline]
    pub(crate) fn line_and_length(&self) -> &[u8] {
        &self.line
    }

    /// The IMF-fixdate alone.
    pub fn value(&self) -> &str {
        // The line is ASCII by construction.
        std::str::from_utf8(&self.line[6..6 + IMF_FIXDATE_LEN]).unwrap_or_default()
    }

    /// Seconds since the Unix epoch of the formatted time.
    pub fn unix_secs(&self) -> u64 {
        self.secs
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Writes the IMF-fixdate of `secs` (seconds since the Unix epoch) into `out`.
pub fn format_imf_fixdate(secs: u64, out: &mut [u8; IMF_FIXDATE_LEN]) {
    const DAYS: [&[u8; 3]; 7] = [b"Thu", b"Fri", b"Sat", b"Sun", b"Mon", b"Tue", b"Wed"];
    const MONTHS: [&[u8; 3]; 12] = [
        b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov",
        b"Dec",
    ];
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (hh, mm, ss) = (rem / 3600, rem / 60 % 60, rem % 60);
    let weekday = (days % 7) as usize; // 1970-01-01 was a Thursday
                                       // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = (yoe + era * 400 + i64::from(month <= 2)).clamp(0, 9999) as u64;
    let two = |v: u64| [b'0' + (v / 10 % 10) as u8, b'0' + (v % 10) as u8];
    out[0..3].copy_from_slice(DAYS[weekday]);
    out[3..5].copy_from_slice(b", ");
    out[5..7].copy_from_slice(&two(day as u64));
    out[7] = b' ';
    out[8..11].copy_from_slice(MONTHS[(month - 1) as usize]);
    out[11] = b' ';
    out[12..14].copy_from_slice(&two(year / 100));
    out[14..16].copy_from_slice(&two(year % 100));
    out[16] = b' ';
    out[17..19].copy_from_slice(&two(hh));
    out[19] = b':';
    out[20..22].copy_from_slice(&two(mm));
    out[22] = b':';
    out[23..25].copy_from_slice(&two(ss));
    out[25..29].copy_from_slice(b" GMT");
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! dates {
        ($($name:ident: $secs:expr => $want:expr;)*) => {$(
            #[test]
            fn $name() {
                let mut b = [0u8; IMF_FIXDATE_LEN];
                format_imf_fixdate($secs, &mut b);
                assert_eq!(std::str::from_utf8(&b).unwrap(), $want);
            }
        )*};
    }

    dates! {
        epoch: 0 => "Thu, 01 Jan 1970 00:00:00 GMT";
        rfc_example: 784_111_777 => "Sun, 06 Nov 1994 08:49:37 GMT";
        leap_day: 951_782_400 => "Tue, 29 Feb 2000 00:00:00 GMT";
        y2038: 2_147_483_647 => "Tue, 19 Jan 2038 03:14:07 GMT";
        end_of_year: 1_704_067_199 => "Sun, 31 Dec 2023 23:59:59 GMT";
    }

    #[test]
    fn header_line() {
        let d = HttpDate::at(784_111_777);
        assert_eq!(d.header_line(), b"Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n");
        assert_eq!(d.value(), "Sun, 06 Nov 1994 08:49:37 GMT");
    }
}
