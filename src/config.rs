//! The settings every loop of a server shares (made by the builder, read by the loops).

use std::time::Duration;

use crate::resolver::ResolverConfig;
use crate::LoadBalance;

/// The default of [`Builder::send_timeout`](crate::Builder::send_timeout) (nginx's `send_timeout` has the same).
pub const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(60);

/// Settings shared by every loop.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) out_high_water: usize,
    pub(crate) out_low_water: usize,
    pub(crate) max_input: usize,
    pub(crate) read_buffer: usize,
    pub(crate) close_linger: Duration,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) nodelay: bool,
    pub(crate) backlog: i32,
    pub(crate) balance: LoadBalance,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) read_timeout: Option<Duration>,
    pub(crate) send_timeout: Option<Duration>,
    pub(crate) max_connections: usize,
    pub(crate) keepalive: Option<Duration>,
    pub(crate) recv_buffer_size: Option<usize>,
    pub(crate) send_buffer_size: Option<usize>,
    pub(crate) reuseaddr: bool,
    pub(crate) max_datagram: usize,
    pub(crate) resolver: ResolverConfig,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            out_high_water: 1 << 20,
            out_low_water: 256 << 10,
            max_input: 8 << 20,
            read_buffer: 64 << 10,
            close_linger: Duration::from_secs(5),
            shutdown_timeout: Duration::from_secs(5),
            nodelay: true,
            backlog: 1024,
            balance: LoadBalance::RoundRobin,
            idle_timeout: None,
            read_timeout: None,
            send_timeout: Some(DEFAULT_SEND_TIMEOUT),
            max_connections: usize::MAX,
            keepalive: None,
            recv_buffer_size: None,
            send_buffer_size: None,
            reuseaddr: true,
            max_datagram: 65_535,
            resolver: ResolverConfig::default(),
        }
    }
}
