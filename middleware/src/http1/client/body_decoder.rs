//! Decoding a message body of any framing ([`BodyDecoder`]): by length, chunked or until
//! the close.

use super::super::chunked::{ChunkedDecoder, ChunkedError, Decoded};
use super::response_error::ResponseError;
use super::response_head::ResponseBody;

/// Decodes a message body of any framing: by length, chunked (through
/// [`ChunkedDecoder`]) or until the close. Data pieces are slices of the input.
#[derive(Clone, Debug)]
pub enum BodyDecoder {
    /// This many bytes to go.
    Length(u64),
    /// Chunked.
    Chunked(ChunkedDecoder),
    /// Everything until the connection closes.
    UntilClose,
    /// Complete.
    Done,
}

impl BodyDecoder {
    /// A decoder for a response body delimited as `body`.
    pub fn for_response(body: ResponseBody) -> BodyDecoder {
        match body {
            ResponseBody::None | ResponseBody::Length(0) => BodyDecoder::Done,
            ResponseBody::Length(n) => BodyDecoder::Length(n),
            ResponseBody::Chunked => BodyDecoder::Chunked(ChunkedDecoder::new()),
            ResponseBody::UntilClose => BodyDecoder::UntilClose,
        }
    }

    /// Decodes from `input`: how much was used, and at most one piece of data,
    /// [`Decoded::Done`] at the end of the body, or [`Decoded::NeedMore`].
    pub fn decode<'a>(&mut self, input: &'a [u8]) -> Result<(usize, Decoded<'a>), ChunkedError> {
        match self {
            BodyDecoder::Done => Ok((0, Decoded::Done)),
            BodyDecoder::Length(left) => {
                if input.is_empty() {
                    return Ok((0, Decoded::NeedMore));
                }
                let n = (*left).min(input.len() as u64) as usize;
                *left -= n as u64;
                if *left == 0 {
                    *self = BodyDecoder::Done;
                }
                Ok((n, Decoded::Data(&input[..n])))
            }
            BodyDecoder::Chunked(dec) => {
                let r = dec.decode(input)?;
                if r.1 == Decoded::Done {
                    *self = BodyDecoder::Done;
                }
                Ok(r)
            }
            BodyDecoder::UntilClose if input.is_empty() => Ok((0, Decoded::NeedMore)),
            BodyDecoder::UntilClose => Ok((input.len(), Decoded::Data(input))),
        }
    }

    /// The connection ended: `Ok` if that completes the body (until-close framing, or
    /// already complete), else [`ResponseError::Truncated`].
    pub fn eof(&mut self) -> Result<(), ResponseError> {
        match self {
            BodyDecoder::Done | BodyDecoder::UntilClose => {
                *self = BodyDecoder::Done;
                Ok(())
            }
            _ => Err(ResponseError::Truncated),
        }
    }

    /// Whether the body is complete.
    pub fn is_done(&self) -> bool {
        matches!(self, BodyDecoder::Done)
    }
}
