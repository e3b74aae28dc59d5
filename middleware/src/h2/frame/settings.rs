//! SETTINGS parameters (RFC 9113 §6.5.2, RFC 8441 §3) and the settings an endpoint
//! keeps.

use std::fmt;

use super::error::{ErrorCode, Reason, Violation};
use super::head::{DEFAULT_MAX_FRAME_SIZE, MAX_FRAME_SIZE_LIMIT};

/// Largest flow-control window and SETTINGS_INITIAL_WINDOW_SIZE (2^31-1, §6.9.1).
pub const MAX_WINDOW_SIZE: u32 = 0x7fff_ffff;

/// The initial flow-control window of every stream and of the connection (65,535).
pub const DEFAULT_WINDOW_SIZE: u32 = 65_535;

/// One SETTINGS parameter (an identifier and a 32-bit value).
///
/// Parameters from [`Params`] have been checked: their values are the ones RFC 9113
/// allows. Unknown identifiers are kept as [`Setting::Unknown`] ("MUST ignore",
/// §6.5.2; [`Settings::apply`] skips them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setting {
    /// SETTINGS_HEADER_TABLE_SIZE (0x1): the HPACK dynamic table size the sender's
    /// decoder allows.
    HeaderTableSize(u32),
    /// SETTINGS_ENABLE_PUSH (0x2): whether the sender accepts PUSH_PROMISE.
    EnablePush(bool),
    /// SETTINGS_MAX_CONCURRENT_STREAMS (0x3): streams the sender lets its peer open.
    MaxConcurrentStreams(u32),
    /// SETTINGS_INITIAL_WINDOW_SIZE (0x4): the sender's initial stream window.
    InitialWindowSize(u32),
    /// SETTINGS_MAX_FRAME_SIZE (0x5): the largest frame payload the sender accepts.
    MaxFrameSize(u32),
    /// SETTINGS_MAX_HEADER_LIST_SIZE (0x6): advisory limit on a field section.
    MaxHeaderListSize(u32),
    /// SETTINGS_ENABLE_CONNECT_PROTOCOL (0x8, RFC 8441): extended CONNECT is allowed.
    EnableConnectProtocol(bool),
    /// A parameter this module does not know.
    Unknown {
        /// Its identifier.
        id: u16,
        /// Its value.
        value: u32,
    },
}

impl Setting {
    /// The identifier on the wire.
    pub fn id(&self) -> u16 {
        match *self {
            Setting::HeaderTableSize(_) => 0x1,
            Setting::EnablePush(_) => 0x2,
            Setting::MaxConcurrentStreams(_) => 0x3,
            Setting::InitialWindowSize(_) => 0x4,
            Setting::MaxFrameSize(_) => 0x5,
            Setting::MaxHeaderListSize(_) => 0x6,
            Setting::EnableConnectProtocol(_) => 0x8,
            Setting::Unknown { id, .. } => id,
        }
    }

    /// The value on the wire.
    pub fn value(&self) -> u32 {
        match *self {
            Setting::HeaderTableSize(v)
            | Setting::MaxConcurrentStreams(v)
            | Setting::InitialWindowSize(v)
            | Setting::MaxFrameSize(v)
            | Setting::MaxHeaderListSize(v)
            | Setting::Unknown { value: v, .. } => v,
            Setting::EnablePush(b) | Setting::EnableConnectProtocol(b) => u32::from(b),
        }
    }

    /// Checks a received value (§6.5.2; RFC 8441 §3 for ENABLE_CONNECT_PROTOCOL,
    /// which this module holds to 0 or 1 like ENABLE_PUSH) and names the parameter.
    pub(super) fn check(id: u16, value: u32) -> Result<Setting, Violation> {
        Ok(match id {
            0x1 => Setting::HeaderTableSize(value),
            0x2 if value <= 1 => Setting::EnablePush(value == 1),
            0x2 => return Err((ErrorCode::PROTOCOL_ERROR, Reason::InvalidEnablePush)),
            0x3 => Setting::MaxConcurrentStreams(value),
            0x4 if value <= MAX_WINDOW_SIZE => Setting::InitialWindowSize(value),
            0x4 => {
                return Err((
                    ErrorCode::FLOW_CONTROL_ERROR,
                    Reason::InvalidInitialWindowSize,
                ))
            }
            0x5 if (DEFAULT_MAX_FRAME_SIZE..=MAX_FRAME_SIZE_LIMIT).contains(&value) => {
                Setting::MaxFrameSize(value)
            }
            0x5 => return Err((ErrorCode::PROTOCOL_ERROR, Reason::InvalidMaxFrameSize)),
            0x6 => Setting::MaxHeaderListSize(value),
            0x8 if value <= 1 => Setting::EnableConnectProtocol(value == 1),
            0x8 => {
                return Err((
                    ErrorCode::PROTOCOL_ERROR,
                    Reason::InvalidEnableConnectProtocol,
                ))
            }
            _ => Setting::Unknown { id, value },
        })
    }
}

/// The parameters of a received SETTINGS frame: a view of its payload, every value
/// already checked by the decoder. Iterate it for [`Setting`]s, in wire order
/// (repeated identifiers included: the last one wins when applied).
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Params<'a>(&'a [u8]);

impl<'a> Params<'a> {
    /// Checks a SETTINGS payload (a multiple of 6 bytes) and wraps it.
    pub(super) fn check(payload: &'a [u8]) -> Result<Params<'a>, Violation> {
        for pair in payload.chunks(6) {
            let (id, value) = split(pair);
            Setting::check(id, value)?;
        }
        Ok(Params(payload))
    }

    /// The raw payload (6 bytes per parameter).
    pub fn as_bytes(&self) -> &'a [u8] {
        self.0
    }

    /// How many parameters there are.
    pub fn len(&self) -> usize {
        self.0.len() / 6
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.len() < 6
    }

    /// The parameters in wire order.
    pub fn iter(&self) -> ParamsIter<'a> {
        ParamsIter(self.0.chunks_exact(6))
    }
}

impl fmt::Debug for Params<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a> IntoIterator for Params<'a> {
    type Item = Setting;
    type IntoIter = ParamsIter<'a>;
    fn into_iter(self) -> ParamsIter<'a> {
        self.iter()
    }
}

/// Iterator over [`Params`].
#[derive(Clone, Debug)]
pub struct ParamsIter<'a>(std::slice::ChunksExact<'a, u8>);

impl Iterator for ParamsIter<'_> {
    type Item = Setting;
    fn next(&mut self) -> Option<Setting> {
        let (id, value) = split(self.0.next()?);
        // Checked when the Params were made; an unknown id stands in should it not be.
        Some(Setting::check(id, value).unwrap_or(Setting::Unknown { id, value }))
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl ExactSizeIterator for ParamsIter<'_> {}

/// A 6-byte parameter's identifier and value (shorter input reads as zeros).
fn split(pair: &[u8]) -> (u16, u32) {
    let mut b = [0u8; 6];
    for (d, s) in b.iter_mut().zip(pair) {
        *d = *s;
    }
    (
        u16::from_be_bytes([b[0], b[1]]),
        u32::from_be_bytes([b[2], b[3], b[4], b[5]]),
    )
}

/// The settings one endpoint has in force: its own as its peer acknowledged them, or
/// its peer's as received. Starts at the RFC 9113 initial values ([`Default`]).
///
/// The frame layer checks each value when decoding; fields set by hand are not
/// checked. Rules that need a role or history are the connection's: a client MUST treat
/// ENABLE_PUSH = 1 from a server as a PROTOCOL_ERROR (§6.5.2), and a change of
/// INITIAL_WINDOW_SIZE adjusts every open stream's window (§6.9.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// SETTINGS_HEADER_TABLE_SIZE; 4,096.
    pub header_table_size: u32,
    /// SETTINGS_ENABLE_PUSH; `true`.
    pub enable_push: bool,
    /// SETTINGS_MAX_CONCURRENT_STREAMS; `None`: no limit.
    pub max_concurrent_streams: Option<u32>,
    /// SETTINGS_INITIAL_WINDOW_SIZE; 65,535.
    pub initial_window_size: u32,
    /// SETTINGS_MAX_FRAME_SIZE; 16,384.
    pub max_frame_size: u32,
    /// SETTINGS_MAX_HEADER_LIST_SIZE; `None`: no limit.
    pub max_header_list_size: Option<u32>,
    /// SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441); `false`.
    pub enable_connect_protocol: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            header_table_size: 4096,
            enable_push: true,
            max_concurrent_streams: None,
            initial_window_size: DEFAULT_WINDOW_SIZE,
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            max_header_list_size: None,
            enable_connect_protocol: false,
        }
    }
}

impl Settings {
    /// Applies parameters in order (a later one overrides an earlier one with the same
    /// identifier); unknown ones are ignored.
    pub fn apply(&mut self, params: impl IntoIterator<Item = Setting>) {
        for p in params {
            self.set(p);
        }
    }

    /// Applies one parameter; an unknown one is ignored.
    pub fn set(&mut self, param: Setting) {
        match param {
            Setting::HeaderTableSize(v) => self.header_table_size = v,
            Setting::EnablePush(b) => self.enable_push = b,
            Setting::MaxConcurrentStreams(v) => self.max_concurrent_streams = Some(v),
            Setting::InitialWindowSize(v) => self.initial_window_size = v,
            Setting::MaxFrameSize(v) => self.max_frame_size = v,
            Setting::MaxHeaderListSize(v) => self.max_header_list_size = Some(v),
            Setting::EnableConnectProtocol(b) => self.enable_connect_protocol = b,
            Setting::Unknown { .. } => {}
        }
    }

    /// The parameters that differ from the initial values: what a SETTINGS frame must
    /// carry to announce these settings (see
    /// [`encode::settings`](super::encode::settings)).
    pub fn changes(&self) -> impl Iterator<Item = Setting> {
        let d = Settings::default();
        [
            (self.header_table_size != d.header_table_size)
                .then_some(Setting::HeaderTableSize(self.header_table_size)),
            (self.enable_push != d.enable_push).then_some(Setting::EnablePush(self.enable_push)),
            self.max_concurrent_streams
                .map(Setting::MaxConcurrentStreams),
            (self.initial_window_size != d.initial_window_size)
                .then_some(Setting::InitialWindowSize(self.initial_window_size)),
            (self.max_frame_size != d.max_frame_size)
                .then_some(Setting::MaxFrameSize(self.max_frame_size)),
            self.max_header_list_size.map(Setting::MaxHeaderListSize),
            (self.enable_connect_protocol != d.enable_connect_protocol)
                .then_some(Setting::EnableConnectProtocol(self.enable_connect_protocol)),
        ]
        .into_iter()
        .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(pairs: &[(u16, u32)]) -> Vec<u8> {
        let mut v = Vec::new();
        for (id, value) in pairs {
            v.extend_from_slice(&id.to_be_bytes());
            v.extend_from_slice(&value.to_be_bytes());
        }
        v
    }

    #[test]
    fn values_are_checked() {
        let bad = |id, value| Setting::check(id, value).unwrap_err();
        assert_eq!(
            bad(0x2, 2),
            (ErrorCode::PROTOCOL_ERROR, Reason::InvalidEnablePush)
        );
        assert_eq!(
            bad(0x4, 1 << 31),
            (
                ErrorCode::FLOW_CONTROL_ERROR,
                Reason::InvalidInitialWindowSize
            )
        );
        assert_eq!(
            Setting::check(0x4, MAX_WINDOW_SIZE),
            Ok(Setting::InitialWindowSize(MAX_WINDOW_SIZE))
        );
        assert_eq!(bad(0x5, 16_383).0, ErrorCode::PROTOCOL_ERROR);
        assert_eq!(bad(0x5, 1 << 24).1, Reason::InvalidMaxFrameSize);
        assert_eq!(
            Setting::check(0x5, 16_384),
            Ok(Setting::MaxFrameSize(16_384))
        );
        assert_eq!(
            Setting::check(0x5, (1 << 24) - 1),
            Ok(Setting::MaxFrameSize((1 << 24) - 1))
        );
        assert_eq!(bad(0x8, 2).1, Reason::InvalidEnableConnectProtocol);
        assert_eq!(
            Setting::check(0x8, 1),
            Ok(Setting::EnableConnectProtocol(true))
        );
        assert_eq!(
            Setting::check(0x7, 99),
            Ok(Setting::Unknown { id: 7, value: 99 })
        );
        assert_eq!(
            Setting::check(0x1, u32::MAX),
            Ok(Setting::HeaderTableSize(u32::MAX))
        );
    }

    #[test]
    fn params_iterate_and_apply() {
        let raw = wire(&[
            (1, 0),
            (2, 0),
            (3, 100),
            (4, 1),
            (5, 1 << 20),
            (6, 8192),
            (8, 1),
            (0xff, 7),
            (4, 9),
        ]);
        let p = Params::check(&raw).unwrap();
        assert_eq!(p.len(), 9);
        assert!(!p.is_empty());
        let all: Vec<_> = p.iter().collect();
        for s in &all {
            let (id, v) = (s.id(), s.value());
            assert_eq!(Setting::check(id, v), Ok(*s));
        }
        assert_eq!(all[7], Setting::Unknown { id: 0xff, value: 7 });
        let mut s = Settings::default();
        s.apply(p);
        assert_eq!(
            s,
            Settings {
                header_table_size: 0,
                enable_push: false,
                max_concurrent_streams: Some(100),
                initial_window_size: 9,
                max_frame_size: 1 << 20,
                max_header_list_size: Some(8192),
                enable_connect_protocol: true,
            }
        );
        let mut again = Settings::default();
        again.apply(s.changes());
        assert_eq!(again, s);
        assert_eq!(Settings::default().changes().count(), 0);
        assert!(Params::default().is_empty());
        assert_eq!(
            format!("{:?}", Params::check(&wire(&[(3, 1)])).unwrap()),
            "[MaxConcurrentStreams(1)]"
        );
    }
}
