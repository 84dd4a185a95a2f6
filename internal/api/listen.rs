//! Binding the listening socket: an explicit port binds once and fails fast; otherwise the
//! ports base..base+99 are tried, skipping only "address in use".

use std::io;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};

/// How many consecutive ports the automatic bind tries.
pub const AUTO_BIND_RANGE: u16 = 100;

/// Why no socket could be bound.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// The host name does not resolve.
    #[error("cannot resolve host {host:?}: {source}")]
    Resolve {
        /// The configured host.
        host: String,
        /// The resolver error.
        source: io::Error,
    },
    /// Binding failed (explicit port busy, permission, bad address…).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address tried.
        addr: String,
        /// The OS error.
        source: io::Error,
    },
    /// Every port of the automatic range was in use.
    #[error("ports {first}..={last} on {host} are all in use; pass --port to choose one")]
    RangeExhausted {
        /// The host.
        host: String,
        /// First port tried.
        first: u16,
        /// Last port tried.
        last: u16,
    },
}

/// Binds `host:port`. With `explicit` one attempt is made; otherwise up to
/// [`AUTO_BIND_RANGE`] consecutive ports are tried, skipping only `EADDRINUSE`.
pub fn bind(host: &str, port: u16, explicit: bool) -> Result<TcpListener, BindError> {
    let attempts = if explicit || port == 0 {
        1
    } else {
        AUTO_BIND_RANGE.min(u16::MAX - port + 1)
    };
    for offset in 0..attempts {
        let candidate = port + offset;
        let addr = resolve(host, candidate)?;
        match TcpListener::bind(addr) {
            Ok(listener) => {
                listener
                    .set_nonblocking(true)
                    .map_err(|source| BindError::Bind {
                        addr: addr.to_string(),
                        source,
                    })?;
                return Ok(listener);
            }
            Err(err) if err.kind() == io::ErrorKind::AddrInUse && !explicit && attempts > 1 => {
                tracing::debug!(port = candidate, "port in use, trying the next one");
            }
            Err(source) => {
                return Err(BindError::Bind {
                    addr: addr.to_string(),
                    source,
                })
            }
        }
    }
    Err(BindError::RangeExhausted {
        host: host.to_string(),
        first: port,
        last: port + (attempts - 1),
    })
}

fn resolve(host: &str, port: u16) -> Result<SocketAddr, BindError> {
    let resolve_err = |source| BindError::Resolve {
        host: host.to_string(),
        source,
    };
    (host, port)
        .to_socket_addrs()
        .map_err(resolve_err)?
        .next()
        .ok_or_else(|| resolve_err(io::Error::new(io::ErrorKind::NotFound, "no addresses")))
}

/// The URL a person should open for `addr`: a wildcard host is shown as `localhost`.
pub fn display_base_url(addr: &SocketAddr) -> String {
    let host = if addr.ip().is_unspecified() {
        "localhost".to_string()
    } else if addr.is_ipv6() {
        format!("[{}]", addr.ip())
    } else {
        addr.ip().to_string()
    };
    format!("http://{host}:{}", addr.port())
}

/// The URL agents on this machine use to reach the server (`JRUN_CONDUCTOR_URL`): a wildcard
/// bind is reached over loopback.
pub fn local_base_url(addr: &SocketAddr) -> String {
    let host = match addr.ip() {
        ip if ip.is_unspecified() && ip.is_ipv6() => "[::1]".to_string(),
        ip if ip.is_unspecified() => "127.0.0.1".to_string(),
        ip if ip.is_ipv6() => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    format!("http://{host}:{}", addr.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agents_reach_a_wildcard_bind_over_loopback() {
        let url = |s: &str| local_base_url(&s.parse().unwrap());
        assert_eq!(url("0.0.0.0:14355"), "http://127.0.0.1:14355");
        assert_eq!(url("[::]:80"), "http://[::1]:80");
        assert_eq!(url("10.0.0.5:8080"), "http://10.0.0.5:8080");
        assert_eq!(url("[fe80::1]:1"), "http://[fe80::1]:1");
    }

    #[test]
    fn explicit_busy_port_fails_fast_auto_moves_on() {
        let busy = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = busy.local_addr().unwrap().port();
        let err = bind("127.0.0.1", port, true).unwrap_err();
        assert!(err.to_string().contains(&port.to_string()), "{err}");
        if port < u16::MAX {
            let other = bind("127.0.0.1", port, false).unwrap();
            assert_ne!(other.local_addr().unwrap().port(), port);
        }
    }

    #[test]
    fn wildcard_shown_as_localhost() {
        let addr: SocketAddr = "0.0.0.0:14355".parse().unwrap();
        assert_eq!(display_base_url(&addr), "http://localhost:14355");
    }
}
