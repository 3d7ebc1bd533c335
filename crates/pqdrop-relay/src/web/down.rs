//! The relay-to-browser direction of a WebSocket peer as a streamed HTTP
//! response (PROTOCOL.md §9.8, "the downstream over HTTP").
//!
//! Why: browsers deliver WebSocket messages to a page far slower than the
//! body of a `fetch()` (on the machines measured in BENCHMARKS.md, a
//! fraction of it), and the receiving page spends most of its time waiting
//! for them. So a page that asks for it (`/ws?down=http`) gets, as the first
//! WebSocket message, the text `down TOKEN`; it then reads everything the
//! relay has for it from `GET …/down/TOKEN`, a chunked response, and keeps
//! sending on the WebSocket. The token is 128 random bits, good for one
//! request, for [`WAIT`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::oneshot;

/// The response body's writer, handed from the request to the bridge.
pub(crate) type Writer = Box<dyn AsyncWrite + Unpin + Send>;

/// How long a token waits for its request.
pub(crate) const WAIT: Duration = Duration::from_secs(10);
/// At most this many tokens wait at once; past it, new WebSockets keep both
/// directions on the WebSocket.
const MAX_WAITING: usize = 4096;
/// …and at most this many for one client address, so that one client
/// cannot push everyone else onto the slower path.
const MAX_WAITING_PER_ADDRESS: usize = 16;

/// The tokens handed out and not yet requested.
#[derive(Default)]
pub(crate) struct Downstreams {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    waiting: HashMap<String, oneshot::Sender<Writer>>,
    per_address: HashMap<IpAddr, usize>,
}

impl State {
    fn release(&mut self, token: &str, addr: IpAddr) {
        self.waiting.remove(token);
        if let Some(n) = self.per_address.get_mut(&addr) {
            *n -= 1;
            if *n == 0 {
                self.per_address.remove(&addr);
            }
        }
    }
}

/// A token waiting for its request; dropping it withdraws the token.
pub(crate) struct Pending<'a> {
    owner: &'a Downstreams,
    addr: IpAddr,
    pub(crate) token: String,
    pub(crate) writer: oneshot::Receiver<Writer>,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if let Ok(mut s) = self.owner.state.lock() {
            s.release(&self.token, self.addr);
        }
    }
}

impl Downstreams {
    /// A new token for a client at `addr`, or `None` when too many wait (in
    /// all, or for that address) or there is no randomness.
    pub(crate) fn register(&self, addr: IpAddr) -> Option<Pending<'_>> {
        let addr = addr.to_canonical();
        let mut raw = [0u8; 16];
        aws_lc_rs::rand::fill(&mut raw).ok()?;
        let token: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let (tx, rx) = oneshot::channel();
        let mut s = self.state.lock().ok()?;
        let mine = s.per_address.get(&addr).copied().unwrap_or(0);
        if s.waiting.len() >= MAX_WAITING || mine >= MAX_WAITING_PER_ADDRESS {
            return None;
        }
        s.waiting.insert(token.clone(), tx);
        s.per_address.insert(addr, mine + 1);
        Some(Pending { owner: self, addr, token, writer: rx })
    }

    /// The bridge waiting for `token`, taken (a token serves one request;
    /// it still counts for its address until the bridge drops its `Pending`).
    pub(crate) fn claim(&self, token: &str) -> Option<oneshot::Sender<Writer>> {
        // Tokens are fixed-length lowercase hex; anything else is not one.
        if token.len() != 32 || !token.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return None;
        }
        self.state.lock().ok()?.waiting.remove(token)
    }
}

/// Writes `data` as one HTTP/1.1 chunk (RFC 9112 §7.1) and flushes it (a TLS
/// stream holds what is not flushed).
pub(crate) async fn write_chunk(w: &mut Writer, data: &[u8]) -> std::io::Result<()> {
    w.write_all(format!("{:x}\r\n", data.len()).as_bytes()).await?;
    w.write_all(data).await?;
    w.write_all(b"\r\n").await?;
    w.flush().await
}

/// The last chunk: the response is complete, so the page can tell a clean
/// end from a cut connection.
pub(crate) async fn finish(w: &mut Writer) {
    let _ = w.write_all(b"0\r\n\r\n").await;
    let _ = w.flush().await;
    let _ = w.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::Downstreams;

    const HOME: std::net::IpAddr = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn one_address_holds_at_most_sixteen_tokens_until_they_are_dropped() {
        let d = Downstreams::default();
        let mine: Vec<_> = (0..16).map(|_| d.register(HOME).expect("token")).collect();
        assert!(d.register(HOME).is_none(), "a seventeenth for the same address");
        let mapped: std::net::IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert!(d.register(mapped).is_none(), "the same address written as IPv4-mapped IPv6");
        assert!(d.register("192.0.2.1".parse().unwrap()).is_some(), "another address");
        // A claimed token still counts until its bridge stops waiting.
        assert!(d.claim(&mine[0].token).is_some());
        assert!(d.register(HOME).is_none());
        drop(mine);
        assert!(d.register(HOME).is_some());
    }

    #[test]
    fn a_token_serves_one_request_and_goes_when_withdrawn() {
        let d = Downstreams::default();
        let p = d.register(HOME).expect("token");
        assert_eq!(p.token.len(), 32);
        let token = p.token.clone();
        assert!(d.claim(&token.to_uppercase()).is_none(), "tokens are lowercase hex");
        assert!(d.claim(&token).is_some());
        assert!(d.claim(&token).is_none(), "used once");
        drop(p);
        let q = d.register(HOME).expect("token");
        let other = q.token.clone();
        assert_ne!(other, token);
        drop(q);
        assert!(d.claim(&other).is_none(), "withdrawn when the bridge stops waiting");
    }
}
