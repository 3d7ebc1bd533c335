//! The client side of the relay protocol, used by the pqdrop engine.

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::{timeout, timeout_at, Instant};

use crate::wire::{hello_bytes, read_status};
use crate::{RelayError, Role};

/// The relay client's deadlines. Nothing it does waits without one: a relay
/// that accepts and never answers, or whose host vanished, is reported in
/// seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientTimeouts {
    /// For the TCP connection. Default 10 s.
    pub connect: Duration,
    /// From the hello to the relay's first status. Default 10 s.
    pub first_status: Duration,
    /// From the first "waiting" to pairing. The relay itself gives up after
    /// its waiting timeout (30 min by default, status 20); this bounds a relay
    /// that keeps saying "waiting". Default 31 min.
    pub pairing: Duration,
}

impl Default for ClientTimeouts {
    fn default() -> Self {
        ClientTimeouts { connect: Duration::from_secs(10), first_status: Duration::from_secs(10), pairing: Duration::from_secs(31 * 60) }
    }
}

/// Connects to the relay at `addr` (`host:port`), sends the hello for
/// `nameplate` and `role`, and waits until paired: status 0 ("waiting") calls
/// `on_waiting` (once, however many the relay sends); status 1 returns the
/// stream, ready for the end-to-end protocol (its next byte is the first byte
/// from the other peer). Any other status is returned as
/// [`RelayError::Refused`] with the relay's code and message.
///
/// The nameplate must be 1 to 10 ASCII digits ([`RelayError::InvalidNameplate`]
/// otherwise; nothing is sent). `TCP_NODELAY` and TCP keepalive are set from
/// the first byte, so a relay host that vanishes while we wait is noticed.
/// Deadlines are [`ClientTimeouts::default`]; see [`connect_with`].
pub async fn connect(addr: &str, nameplate: &str, role: Role, on_waiting: impl FnOnce()) -> Result<TcpStream, RelayError> {
    connect_with(addr, nameplate, role, on_waiting, ClientTimeouts::default()).await
}

/// [`connect`] with explicit deadlines.
pub async fn connect_with(
    addr: &str,
    nameplate: &str,
    role: Role,
    on_waiting: impl FnOnce(),
    limits: ClientTimeouts,
) -> Result<TcpStream, RelayError> {
    let hello = hello_bytes(nameplate, role)?;
    let late = |what: &'static str, d: Duration| RelayError::Timeout { addr: addr.to_owned(), what, secs: d.as_secs_f64() };
    let mut stream = timeout(limits.connect, TcpStream::connect(addr))
        .await
        .map_err(|_| late("to accept the connection", limits.connect))?
        .map_err(|source| RelayError::Connect { addr: addr.to_owned(), source })?;
    // Best effort: a failure only costs latency, or a later notice of a dead host.
    let _ = stream.set_nodelay(true);
    let ka = socket2::TcpKeepalive::new().with_time(Duration::from_secs(15)).with_interval(Duration::from_secs(5));
    let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(&ka);
    let first = Instant::now() + limits.first_status;
    timeout_at(first, stream.write_all(&hello)).await.map_err(|_| late("to take the hello", limits.first_status))??;
    let mut deadline = first;
    let mut what = ("to answer the hello", limits.first_status);
    let mut on_waiting = Some(on_waiting);
    loop {
        let (code, message) = timeout_at(deadline, read_status(&mut stream)).await.map_err(|_| late(what.0, what.1))??;
        match code {
            0 => {
                if let Some(f) = on_waiting.take() {
                    f();
                    deadline = Instant::now() + limits.pairing;
                    what = ("to pair us with the other side", limits.pairing);
                }
            }
            1 => return Ok(stream),
            _ => return Err(RelayError::Refused { code, message }),
        }
    }
}
