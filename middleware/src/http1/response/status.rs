//! Status lines and reason phrases, `100 Continue`, and the complete error responses the
//! adapter answers with on its own.

use super::super::date::HttpDate;
use super::sink::Sink;

/// The standard reason phrase of `code` (RFC 9110 §15), or `""`.
pub fn reason(code: u16) -> &'static str {
    match code {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

pub(super) fn put_status_line<S: Sink + ?Sized>(out: &mut S, code: u16) {
    match code {
        200 => out.put(b"HTTP/1.1 200 OK\r\n"),
        _ => {
            let mut digits = itoa::Buffer::new();
            out.put_parts(&[
                b"HTTP/1.1 ",
                digits.format(code).as_bytes(),
                b" ",
                reason(code).as_bytes(),
                b"\r\n",
            ]);
        }
    }
}

/// `HTTP/1.1 100 Continue`.
pub(crate) fn put_continue<S: Sink + ?Sized>(out: &mut S) {
    out.put(b"HTTP/1.1 100 Continue\r\n\r\n");
}

/// A complete error response that closes the connection.
pub(crate) fn put_error(out: &mut dyn Sink, code: u16, date: &HttpDate) {
    let text = reason(code);
    put_status_line(out, code);
    let mut digits = itoa::Buffer::new();
    out.put_parts(&[
        date.header_line(),
        b"Content-Type: text/plain\r\nConnection: close\r\nContent-Length: ",
        digits.format(text.len() + 1).as_bytes(),
        b"\r\n\r\n",
        text.as_bytes(),
        b"\n",
    ]);
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATE: &str = "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n";

    #[test]
    fn error_response() {
        let mut buf = Vec::new();
        put_error(&mut buf, 431, &HttpDate::at(784_111_777));
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            format!("HTTP/1.1 431 Request Header Fields Too Large\r\n{DATE}Content-Type: text/plain\r\nConnection: close\r\nContent-Length: 32\r\n\r\nRequest Header Fields Too Large\n")
        );
    }
}
