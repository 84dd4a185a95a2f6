//! Keeping the listening socket across exec with the LISTEN_FDS protocol (as systemd socket
//! activation does): the socket is placed at fd 3 without close-on-exec and announced with
//! `LISTEN_FDS=1` and `LISTEN_PID=<pid>`; a starting server adopts it instead of binding.

use std::ffi::{CString, OsString};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::ffi::OsStringExt;
use std::path::Path;

use super::error::UpdateError;

/// The first inherited fd of the LISTEN_FDS protocol.
pub const LISTEN_FDS_START: RawFd = 3;
const LISTEN_FDS: &str = "LISTEN_FDS";
const LISTEN_PID: &str = "LISTEN_PID";
const LISTEN_FDNAMES: &str = "LISTEN_FDNAMES";

/// The listening socket handed over by a previous image (or systemd), if this process was
/// started with `LISTEN_FDS`/`LISTEN_PID` naming it. The variables are removed so children
/// do not see them. Call before any thread is started.
pub fn inherited_listener() -> Result<Option<std::net::TcpListener>, UpdateError> {
    let fds = std::env::var(LISTEN_FDS).ok();
    let pid = std::env::var(LISTEN_PID).ok();
    for key in [LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES] {
        std::env::remove_var(key);
    }
    let (Some(fds), Some(pid)) = (fds, pid) else {
        return Ok(None);
    };
    if pid.trim() != std::process::id().to_string() {
        tracing::debug!(LISTEN_PID = %pid, "LISTEN_PID names another process; binding normally");
        return Ok(None);
    }
    let count: u32 = fds
        .trim()
        .parse()
        .map_err(|_| UpdateError::Inherit(format!("LISTEN_FDS={fds:?} is not a number")))?;
    if count == 0 {
        return Ok(None);
    }
    if count > 1 {
        tracing::warn!(
            count,
            "several sockets inherited; serving on the first (fd 3)"
        );
    }
    let fd = LISTEN_FDS_START;
    if !is_listening_socket(fd) {
        return Err(UpdateError::Inherit(format!(
            "fd {fd} is not a listening socket"
        )));
    }
    set_cloexec(fd, true)
        .map_err(|e| UpdateError::Inherit(format!("cannot set close-on-exec on fd {fd}: {e}")))?;
    // SAFETY: fd 3 was handed to this process by the protocol and is owned by nobody else here.
    let listener = unsafe { std::net::TcpListener::from_raw_fd(fd) };
    listener
        .set_nonblocking(true)
        .map_err(|e| UpdateError::Inherit(format!("cannot make fd {fd} non-blocking: {e}")))?;
    listener
        .local_addr()
        .map_err(|e| UpdateError::Inherit(format!("fd {fd} is not a TCP socket: {e}")))?;
    Ok(Some(listener))
}

fn is_listening_socket(fd: RawFd) -> bool {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `value`.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ACCEPTCONN,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    rc == 0 && value != 0
}

/// Sets or clears FD_CLOEXEC on `fd`.
pub fn set_cloexec(fd: RawFd, on: bool) -> std::io::Result<()> {
    // SAFETY: fcntl on an fd number has no memory-safety preconditions.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
    if flags < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let new = if on {
        flags | libc::FD_CLOEXEC
    } else {
        flags & !libc::FD_CLOEXEC
    };
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, new) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Places `fd` at fd 3 without close-on-exec (async-signal-safe; usable in `pre_exec`).
pub fn place_at_fd3(fd: RawFd) -> std::io::Result<()> {
    if fd == LISTEN_FDS_START {
        return set_cloexec(fd, false);
    }
    // SAFETY: dup2 onto fd 3 replaces whatever fd 3 was; the caller is about to exec.
    if unsafe { libc::dup2(fd, LISTEN_FDS_START) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn cstring(bytes: Vec<u8>, what: &str) -> Result<CString, UpdateError> {
    CString::new(bytes).map_err(|_| UpdateError::Inherit(format!("{what} contains a NUL byte")))
}

/// Replaces this process with `exe`, passing `argv`, the current environment plus `extra_env`
/// and LISTEN_FDS/LISTEN_PID, and `listener` at fd 3. Returns only on failure.
pub fn exec_with_listener(
    exe: &Path,
    argv: &[OsString],
    listener: &impl AsRawFd,
    extra_env: &[(&str, OsString)],
) -> UpdateError {
    match try_exec(exe, argv, listener.as_raw_fd(), extra_env) {
        Ok(never) => match never {},
        Err(err) => err,
    }
}

fn try_exec(
    exe: &Path,
    argv: &[OsString],
    fd: RawFd,
    extra_env: &[(&str, OsString)],
) -> Result<std::convert::Infallible, UpdateError> {
    let path = cstring(
        exe.as_os_str().to_os_string().into_vec(),
        "the executable path",
    )?;
    let args = argv
        .iter()
        .map(|a| cstring(a.clone().into_vec(), "an argument"))
        .collect::<Result<Vec<_>, _>>()?;
    let skip = |key: &OsString| {
        let key = key.to_string_lossy();
        [LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES].contains(&key.as_ref())
            || extra_env.iter().any(|(k, _)| *k == key)
    };
    let mut env = Vec::new();
    for (key, value) in std::env::vars_os() {
        if skip(&key) {
            continue;
        }
        let mut kv = key.into_vec();
        kv.push(b'=');
        kv.extend(value.into_vec());
        env.push(cstring(kv, "an environment variable")?);
    }
    let mut announce: Vec<(&str, OsString)> = vec![
        (LISTEN_FDS, OsString::from("1")),
        (LISTEN_PID, OsString::from(std::process::id().to_string())),
    ];
    announce.extend(extra_env.iter().cloned());
    for (key, value) in announce {
        let mut kv = key.as_bytes().to_vec();
        kv.push(b'=');
        kv.extend(value.into_vec());
        env.push(cstring(kv, "an environment variable")?);
    }
    place_at_fd3(fd)
        .map_err(|e| UpdateError::Inherit(format!("cannot place the socket at fd 3: {e}")))?;
    let err = match nix::unistd::execve(&path, &args, &env) {
        Ok(never) => match never {},
        Err(errno) => errno,
    };
    Err(UpdateError::Exec {
        path: exe.to_path_buf(),
        source: err,
    })
}

/// The [`super::PENDING_ENV`] marker this process was started with, removed from the
/// environment. Call before any thread is started.
pub fn take_pending_marker() -> Option<OsString> {
    let marker = std::env::var_os(super::PENDING_ENV);
    std::env::remove_var(super::PENDING_ENV);
    marker
}
