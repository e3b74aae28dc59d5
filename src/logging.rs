//! The crate's own log lines (`debug!`, `warn!`): with the `log` feature (on by default)
//! they are the [`log`](https://docs.rs/log) crate's macros, so they reach whatever logger
//! the application installed; without it they compile to nothing (their arguments are
//! still type-checked, never evaluated), and `log` is not a dependency at all, as in mio.

#[cfg(feature = "log")]
macro_rules! debug {
    ($($t:tt)*) => { ::log::debug!($($t)*) };
}

#[cfg(feature = "log")]
macro_rules! warn {
    ($($t:tt)*) => { ::log::warn!($($t)*) };
}

#[cfg(not(feature = "log"))]
macro_rules! debug {
    ($($t:tt)*) => {
        if false {
            let _ = ::std::format_args!($($t)*);
        }
    };
}

#[cfg(not(feature = "log"))]
macro_rules! warn {
    ($($t:tt)*) => {
        if false {
            let _ = ::std::format_args!($($t)*);
        }
    };
}
