//! What the adapter keeps of a response between calls ([`RespState`]): its [`Phase`], its
//! status, and what the request said of the connection and the body.

use super::super::Request;

/// Where a response is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Nothing written.
    #[default]
    Idle,
    /// Status line and maybe some headers written.
    Head,
    /// Head done; this many body bytes still to write (`Content-Length` framing).
    Sized(u64),
    /// Head done; chunked body.
    Chunked,
    /// Head done; body delimited by closing the connection (HTTP/1.0 without a length).
    UntilClose,
    /// Complete.
    Done,
}

/// Per-request response state kept by the adapter.
#[derive(Clone, Debug, Default)]
pub(crate) struct RespState {
    pub(crate) phase: Phase,
    pub(super) status: u16,
    /// The connection closes after this response (`Connection: close` is sent if the head
    /// is not written yet).
    pub(crate) close: bool,
    /// A 101 was sent: the connection switches protocols after this request.
    pub(crate) upgrade: bool,
    pub(super) head_request: bool,
    pub(super) minor: u8,
    /// `Expect: 100-continue` not answered yet.
    pub(crate) expect_pending: bool,
    /// The application wrote its own `Date`.
    pub(super) own_date: bool,
}

impl RespState {
    pub(crate) fn for_request(req: &Request<'_>) -> RespState {
        RespState {
            phase: Phase::Idle,
            status: 0,
            close: !req.keep_alive(),
            upgrade: false,
            head_request: req.is_head(),
            minor: req.version_minor(),
            expect_pending: req.expects_continue() && req.has_body(),
            own_date: false,
        }
    }

    #[inline]
    pub(crate) fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    #[inline]
    pub(crate) fn is_started(&self) -> bool {
        self.phase != Phase::Idle
    }
}
