//! Copying bytes between two paired peers: Linux `splice(2)` when possible,
//! else tokio's user-space bidirectional copy; both with an idle timeout.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::RelayConfig;

/// When a session last moved a byte (either way).
#[derive(Debug)]
pub(crate) struct Activity {
    start: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    pub(crate) fn new() -> Activity {
        Activity { start: Instant::now(), last_ms: AtomicU64::new(0) }
    }

    pub(crate) fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.fetch_max(ms, Ordering::Relaxed);
    }

    /// Resolves once no byte has moved for `idle`.
    pub(crate) async fn idle(&self, idle: Duration) {
        loop {
            let last = self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let deadline = last + idle;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline).await;
        }
    }
}

/// Bytes moved by a session, per direction.
#[derive(Debug, Default)]
pub(crate) struct Moved {
    pub(crate) a_to_b: AtomicU64,
    pub(crate) b_to_a: AtomicU64,
}

/// Why a session ended.
#[derive(Debug)]
pub(crate) enum End {
    /// Both directions reached EOF.
    Done,
    /// No byte either way for the idle timeout.
    Idle,
    /// A socket error (reset, broken pipe, ...).
    Error(io::Error),
}

/// Copies between `a` and `b` until both directions end, an error, or idleness.
/// Byte counts go to `moved` as they move, so they are right however it ends.
pub(crate) async fn relay(a: &mut TcpStream, b: &mut TcpStream, config: &RelayConfig, moved: &Moved) -> End {
    let activity = Activity::new();
    let copy = copy_any(a, b, config, &activity, moved);
    tokio::select! {
        r = copy => match r {
            Ok(()) => End::Done,
            Err(e) => End::Error(e),
        },
        () = activity.idle(config.idle_timeout) => End::Idle,
    }
}

async fn copy_any(a: &mut TcpStream, b: &mut TcpStream, config: &RelayConfig, activity: &Activity, moved: &Moved) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    if config.use_splice {
        match crate::splice::Pipes::new(config.splice_pipe_size) {
            Ok(pipes) => return pipes.bidirectional(a, b, activity, moved).await,
            Err(e) => {
                tracing::debug!(error_kind = ?e.kind(), "no full-size pipe for splice; copying in user space");
            }
        }
    }
    copy_user_space(a, b, config.copy_buffer_size, activity, moved).await
}

/// The portable path: tokio's bidirectional copy with large buffers.
async fn copy_user_space(a: &mut TcpStream, b: &mut TcpStream, buf_size: usize, activity: &Activity, moved: &Moved) -> io::Result<()> {
    // Bytes written to `a` came from `b` and vice versa.
    let mut ta = Tracked { io: a, activity, written: &moved.b_to_a };
    let mut tb = Tracked { io: b, activity, written: &moved.a_to_b };
    tokio::io::copy_bidirectional_with_sizes(&mut ta, &mut tb, buf_size, buf_size).await.map(|_| ())
}

/// A stream that records activity and counts the bytes written to it.
struct Tracked<'a> {
    io: &'a mut TcpStream,
    activity: &'a Activity,
    written: &'a AtomicU64,
}

impl AsyncRead for Tracked<'_> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut *this.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.activity.touch();
        }
        r
    }
}

impl AsyncWrite for Tracked<'_> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut *this.io).poll_write(cx, data);
        if let Poll::Ready(Ok(n)) = r {
            if n > 0 {
                this.written.fetch_add(n as u64, Ordering::Relaxed);
                this.activity.touch();
            }
        }
        r
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.get_mut().io).poll_shutdown(cx)
    }
}
