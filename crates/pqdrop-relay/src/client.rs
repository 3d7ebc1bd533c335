//! The client side of the relay protocol, used by the pqdrop engine.

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::wire::{hello_bytes, read_status};
use crate::{RelayError, Role};

/// Connects to the relay at `addr` (`host:port`), sends the hello for
/// `nameplate` and `role`, and waits until paired: status 0 ("waiting") calls
/// `on_waiting` (once, however many the relay sends); status 1 returns the
/// stream, ready for the end-to-end protocol (its next byte is the first byte
/// from the other peer). Any other status is returned as
/// [`RelayError::Refused`] with the relay's code and message.
///
/// The nameplate must be 1 to 10 ASCII digits ([`RelayError::InvalidNameplate`]
/// otherwise; nothing is sent). `TCP_NODELAY` is set on the stream. There is no
/// timeout here besides the relay's own (its waiting timeout ends with status
/// 20); wrap the call in `tokio::time::timeout` to bound it, e.g. against an
/// unresponsive relay.
pub async fn connect(addr: &str, nameplate: &str, role: Role, on_waiting: impl FnOnce()) -> Result<TcpStream, RelayError> {
    let hello = hello_bytes(nameplate, role)?;
    let mut stream = TcpStream::connect(addr).await.map_err(|source| RelayError::Connect { addr: addr.to_owned(), source })?;
    // Best effort: a failure only costs latency.
    let _ = stream.set_nodelay(true);
    stream.write_all(&hello).await?;
    let mut on_waiting = Some(on_waiting);
    loop {
        let (code, message) = read_status(&mut stream).await?;
        match code {
            0 => {
                if let Some(f) = on_waiting.take() {
                    f();
                }
            }
            1 => return Ok(stream),
            _ => return Err(RelayError::Refused { code, message }),
        }
    }
}
