//! `recv`, `send` and `writev` as bare system calls on Linux.
//!
//! glibc's `recv`/`send`/`writev` are pthread cancellation points: in a process with more
//! than one thread (every server: the loops, the resolver) each call is wrapped in
//! `__pthread_enable_asynccancel`/`__pthread_disable_asynccancel`, about 60 user-space
//! instructions per call, more than the rest of the call path (callgrind, `instr.sh echo1`:
//! ~190 instructions per message for the two calls with the wrappers). Rust never cancels
//! threads, so the loop makes the same system calls through `syscall(2)`, which is not a
//! cancellation point. Other targets use the standard library's calls.
//!
//! The only `unsafe` code of the crate is here: three calls whose pointers come from live
//! slices.
#![allow(unsafe_code)]

use std::io::{self, IoSlice};
use std::os::fd::RawFd;

/// Converts a system call's return value (`-1` and `errno` on failure).
#[inline]
fn ret(n: libc::c_long) -> io::Result<usize> {
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

/// `recv(fd, buf, 0)`.
#[inline]
pub(crate) fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is a live, exclusively borrowed slice: the kernel writes at most
    // `buf.len()` bytes into it before the call returns. The address arguments are null,
    // so nothing else is written. An invalid `fd` is an error (EBADF), not UB.
    ret(unsafe {
        libc::syscall(
            libc::SYS_recvfrom,
            fd,
            buf.as_mut_ptr(),
            buf.len(),
            0,
            std::ptr::null_mut::<libc::sockaddr>(),
            std::ptr::null_mut::<libc::socklen_t>(),
        )
    })
}

/// `send(fd, buf, MSG_NOSIGNAL)` (as the standard library's `TcpStream::write`).
#[inline]
pub(crate) fn send(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is a live slice the kernel only reads, `buf.len()` bytes of it, during
    // the call; no address is passed (null, length 0).
    ret(unsafe {
        libc::syscall(
            libc::SYS_sendto,
            fd,
            buf.as_ptr(),
            buf.len(),
            libc::MSG_NOSIGNAL,
            std::ptr::null::<libc::sockaddr>(),
            0 as libc::socklen_t,
        )
    })
}

/// `writev(fd, bufs)` (as the standard library's `write_vectored`, which caps the count
/// at `IOV_MAX`; the loop passes at most 64).
#[inline]
pub(crate) fn writev(fd: RawFd, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    let n = bufs.len().min(1024);
    // SAFETY: `IoSlice` is guaranteed ABI-compatible with `struct iovec` on unix; `bufs`
    // and the slices it points to are live and only read by the kernel during the call;
    // `n` is at most `bufs.len()`.
    ret(unsafe { libc::syscall(libc::SYS_writev, fd, bufs.as_ptr(), n as libc::c_int) })
}
