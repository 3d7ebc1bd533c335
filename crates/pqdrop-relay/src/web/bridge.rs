//! A WebSocket peer as a relay connection: its binary messages are the bytes
//! of a TCP connection to the relay (PROTOCOL.md §9.8), in order; message
//! boundaries carry no meaning.
//!
//! The bridge makes a connected loopback TCP pair and hands one end to the
//! relay, with the browser's address, so that the relay's limits, rooms,
//! fleet and byte copying treat it exactly as a TCP peer, and copies between
//! the WebSocket and the other end. The relay's bytes may instead go to a
//! streamed HTTP response (see `down`), much faster in browsers.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::{frame::coding::CloseCode, CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tracing::debug;

/// A message from the browser may be at most this large (a 1 MiB record
/// and its frame header fit many times over).
const MAX_MESSAGE: usize = 4 * 1024 * 1024;
/// Bytes read from the relay at once, sent as one message.
const READ_CHUNK: usize = 256 * 1024;
/// After one direction ended, how long the other gets to finish.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// Bridges one WebSocket. With `downstreams` (the page asked for
/// `?down=http`), the relay's bytes go to a streamed HTTP response instead
/// of WebSocket messages, see [`super::down`].
pub(crate) async fn run<S>(
    io: S,
    addr: SocketAddr,
    inject: &mpsc::Sender<(TcpStream, SocketAddr)>,
    downstreams: Option<&super::down::Downstreams>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let config = WebSocketConfig::default().max_message_size(Some(MAX_MESSAGE)).max_frame_size(Some(MAX_MESSAGE));
    let ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
    let (ours, relays) = match loopback_pair().await {
        Ok(p) => p,
        Err(e) => {
            debug!(peer = %addr, error = %e, "web: no loopback pair for a WebSocket");
            return close(ws, CloseCode::Again, "relay busy; try again").await;
        }
    };
    if inject.send((relays, addr)).await.is_err() {
        return close(ws, CloseCode::Away, "relay shutting down").await;
    }
    let _ = ours.set_nodelay(true);
    let (mut tcp_read, mut tcp_write) = ours.into_split();
    let (mut ws_tx, mut ws_rx) = ws.split();
    let browser_to_relay = async {
        while let Some(msg) = ws_rx.next().await {
            match msg {
                Ok(Message::Binary(b)) => {
                    if tcp_write.write_all(&b).await.is_err() {
                        break;
                    }
                }
                Ok(Message::Close(_)) | Err(_) => break,
                Ok(Message::Text(_)) => {
                    debug!(peer = %addr, "web: text message on the relay WebSocket; closing");
                    break;
                }
                Ok(_) => {} // ping and pong are answered by the WebSocket layer
            }
        }
        let _ = tcp_write.shutdown().await;
    };
    let pending = downstreams.and_then(|d| d.register(addr.ip()));
    let relay_to_browser = async {
        let mut body = None;
        if let Some(mut p) = pending {
            if ws_tx.send(Message::Text(format!("down {}", p.token).into())).await.is_err() {
                return;
            }
            match tokio::time::timeout(super::down::WAIT, &mut p.writer).await {
                Ok(Ok(w)) => body = Some(w),
                _ => {
                    debug!(peer = %addr, "web: the page did not request its downstream in time; closing");
                    let reason = "the downstream was not requested in time";
                    let _ = ws_tx.send(Message::Close(Some(CloseFrame { code: CloseCode::Policy, reason: reason.into() }))).await;
                    return;
                }
            }
        }
        let mut buf = vec![0u8; READ_CHUNK];
        loop {
            match tcp_read.read(&mut buf).await {
                Ok(0) => break,
                // A broken relay side must not look like a clean end: the
                // response is cut off without its last chunk.
                Err(_) => return,
                Ok(n) => {
                    let sent = match &mut body {
                        Some(w) => super::down::write_chunk(w, &buf[..n]).await.is_ok(),
                        None => ws_tx.send(Message::Binary(buf[..n].to_vec().into())).await.is_ok(),
                    };
                    if !sent {
                        return;
                    }
                }
            }
        }
        if let Some(w) = &mut body {
            super::down::finish(w).await;
        }
        let _ = ws_tx.send(Message::Close(Some(CloseFrame { code: CloseCode::Normal, reason: "".into() }))).await;
        let _ = ws_tx.close().await;
    };
    tokio::pin!(browser_to_relay, relay_to_browser);
    tokio::select! {
        () = &mut browser_to_relay => { let _ = tokio::time::timeout(CLOSE_GRACE, relay_to_browser).await; }
        () = &mut relay_to_browser => { let _ = tokio::time::timeout(CLOSE_GRACE, browser_to_relay).await; }
    }
}

async fn close<S: AsyncRead + AsyncWrite + Unpin>(mut ws: WebSocketStream<S>, code: CloseCode, reason: &'static str) {
    let _ = ws.close(Some(CloseFrame { code, reason: reason.into() })).await;
}

/// A connected TCP pair on 127.0.0.1, made through a listener of its own on
/// an ephemeral port. Only the connection from our own socket is taken: a
/// local process that races to that port gets nothing.
async fn loopback_pair() -> std::io::Result<(TcpStream, TcpStream)> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
    let ours = TcpStream::connect(listener.local_addr()?).await?;
    let want = ours.local_addr()?;
    for _ in 0..4 {
        let (theirs, from) =
            tokio::time::timeout(Duration::from_secs(2), listener.accept()).await.map_err(|_| std::io::ErrorKind::TimedOut)??;
        if from == want {
            return Ok((ours, theirs));
        }
    }
    Err(std::io::ErrorKind::ConnectionRefused.into())
}
