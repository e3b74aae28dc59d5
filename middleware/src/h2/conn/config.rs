//! [`Config`]: the settings a connection announces and the limits it holds the peer to.

use super::super::frame::{Setting, DEFAULT_MAX_FRAME_SIZE, DEFAULT_WINDOW_SIZE};
use super::limits::Rate;

/// What a [`Connection`](super::Connection) announces and enforces. [`Default`] gives
/// values fit for a public server; every field is documented with its default.
///
/// Values out of the protocol's range are clamped when the connection is made
/// ([`Config::checked`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// SETTINGS_MAX_CONCURRENT_STREAMS: streams the peer may have open at once; a stream
    /// beyond is refused (RST_STREAM REFUSED_STREAM, counted by
    /// [`reset_rate`](Config::reset_rate)). 100.
    pub max_concurrent_streams: u32,
    /// SETTINGS_INITIAL_WINDOW_SIZE: each request body's flow-control window, the most a
    /// client may send on a stream the application has not
    /// [`release`](super::Connection::release)d. 65,535 (the protocol's initial value).
    pub initial_window_size: u32,
    /// The connection's receive window: the most a client may send, all streams
    /// together, that the application has not released. Raised from 65,535 by a
    /// WINDOW_UPDATE right after our SETTINGS. 1 MiB.
    pub connection_window_size: u32,
    /// SETTINGS_MAX_FRAME_SIZE: the largest frame payload we accept (2^14..2^24-1).
    /// 16,384.
    pub max_frame_size: u32,
    /// SETTINGS_MAX_HEADER_LIST_SIZE: a request's header section (name + value + 32
    /// octets per field, decoded) above this is answered 431 and the stream closed;
    /// trailers above it reset the stream (ENHANCE_YOUR_CALM). 16 KiB.
    pub max_header_list_size: u32,
    /// SETTINGS_HEADER_TABLE_SIZE: the HPACK dynamic table the peer may fill. 4,096.
    pub header_table_size: u32,
    /// The largest header block (a HEADERS frame and its CONTINUATION frames, compressed)
    /// we collect; a longer one is a connection error ENHANCE_YOUR_CALM (a block cannot
    /// be skipped without decompressing it). At least
    /// [`max_header_list_size`](Config::max_header_list_size). 32 KiB.
    pub max_header_block_size: u32,
    /// The most CONTINUATION frames one header block may have; more is a connection
    /// error ENHANCE_YOUR_CALM (CONTINUATION flood with empty frames). 32.
    pub max_continuation_frames: u32,
    /// SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441): whether a request may carry
    /// `:protocol` (extended CONNECT). `false`.
    pub enable_connect_protocol: bool,
    /// Closed streams remembered to answer late frames on them as RFC 9113 §5.1 says
    /// (the oldest is forgotten first; a forgotten stream's frames get the generic
    /// answer for closed streams). 256.
    pub closed_streams_remembered: u32,
    /// Output the connection queues before it stops reading: while
    /// [`output`](super::Connection::output) holds this many bytes or more,
    /// [`recv`](super::Connection::recv) consumes nothing, so a peer that does not read
    /// cannot make us queue answers (PING and SETTINGS ACKs, RST_STREAMs) without bound;
    /// and [`send_data`](super::Connection::send_data) takes no more than the room left.
    /// 1 MiB.
    pub max_output: usize,
    /// Non-ACK SETTINGS frames. A burst of 32, then 8 a second.
    pub settings_rate: Rate,
    /// PING frames (non-ACK). A burst of 32, then 8 a second.
    pub ping_rate: Rate,
    /// PRIORITY frames (deprecated, ignored). A burst of 256, then 64 a second, plus one
    /// per request.
    pub priority_rate: Rate,
    /// DATA frames with no data and no END_STREAM. A burst of 32, then 8 a second.
    pub empty_data_rate: Rate,
    /// WINDOW_UPDATE frames. A burst of 256, then 64 a second, plus one per DATA frame
    /// we send and per request (the useful work that calls for them).
    pub window_update_rate: Rate,
    /// Streams that end without a full exchange: reset by the peer (RST_STREAM, the
    /// rapid-reset attack CVE-2023-44487), refused by us (over the concurrency limit,
    /// after GOAWAY) or reset by us for a malformed request, and RST_STREAM frames on
    /// closed streams. A burst of 128, then 32 a second.
    pub reset_rate: Rate,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            max_concurrent_streams: 100,
            initial_window_size: DEFAULT_WINDOW_SIZE,
            connection_window_size: 1 << 20,
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            max_header_list_size: 16 << 10,
            header_table_size: 4096,
            max_header_block_size: 32 << 10,
            max_continuation_frames: 32,
            enable_connect_protocol: false,
            closed_streams_remembered: 256,
            max_output: 1 << 20,
            settings_rate: Rate::new(32, 8),
            ping_rate: Rate::new(32, 8),
            priority_rate: Rate::new(256, 64),
            empty_data_rate: Rate::new(32, 8),
            window_update_rate: Rate::new(256, 64),
            reset_rate: Rate::new(128, 32),
        }
    }
}

impl Config {
    /// The configuration with every value brought into the protocol's range: window
    /// sizes at most 2^31-1 and the connection window at least 65,535, the frame size
    /// within 2^14..2^24-1, the header block limit at least the header list limit, the
    /// output limit at least 16 KiB.
    pub fn checked(mut self) -> Config {
        const MAX_WINDOW: u32 = 0x7fff_ffff;
        self.initial_window_size = self.initial_window_size.min(MAX_WINDOW);
        self.connection_window_size = self
            .connection_window_size
            .clamp(DEFAULT_WINDOW_SIZE, MAX_WINDOW);
        self.max_frame_size = self
            .max_frame_size
            .clamp(DEFAULT_MAX_FRAME_SIZE, (1 << 24) - 1);
        self.max_header_block_size = self.max_header_block_size.max(self.max_header_list_size);
        self.max_output = self.max_output.max(16 << 10);
        self
    }

    /// The SETTINGS parameters that announce this configuration (the ones that differ
    /// from the protocol's initial values, plus the limits, which have none).
    pub(super) fn settings(&self) -> impl Iterator<Item = Setting> {
        let table = (self.header_table_size != 4096)
            .then_some(Setting::HeaderTableSize(self.header_table_size));
        let window = (self.initial_window_size != DEFAULT_WINDOW_SIZE)
            .then_some(Setting::InitialWindowSize(self.initial_window_size));
        let frame = (self.max_frame_size != DEFAULT_MAX_FRAME_SIZE)
            .then_some(Setting::MaxFrameSize(self.max_frame_size));
        let connect = self
            .enable_connect_protocol
            .then_some(Setting::EnableConnectProtocol(true));
        [
            table,
            Some(Setting::EnablePush(false)),
            Some(Setting::MaxConcurrentStreams(self.max_concurrent_streams)),
            window,
            frame,
            Some(Setting::MaxHeaderListSize(self.max_header_list_size)),
            connect,
        ]
        .into_iter()
        .flatten()
    }
}
