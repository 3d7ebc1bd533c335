//! Copying bytes between two paired peers: Linux `splice(2)` when possible,
//! else a user-space copy with buffers that exist only while bytes flow;
//! both with an idle timeout.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{ReadHalf, WriteHalf};
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

/// The portable path: a copy each way through a buffer that exists only
/// while bytes flow.
///
/// Each buffer is its own anonymous memory mapping, so its pages are taken
/// only when touched and are given back to the OS when it is dropped (a heap
/// buffer of this size would stay with the process after a load peak). A
/// direction that has been quiet for [`RELEASE_AFTER`] drops its buffer: an
/// idle session holds no buffer at all, and an active one at most
/// `buf_size` per busy direction.
async fn copy_user_space(a: &mut TcpStream, b: &mut TcpStream, buf_size: usize, activity: &Activity, moved: &Moved) -> io::Result<()> {
    let (ar, aw) = a.split();
    let (br, bw) = b.split();
    // Bytes written to `a` came from `b` and vice versa.
    tokio::try_join!(one_way(ar, bw, buf_size, activity, &moved.a_to_b), one_way(br, aw, buf_size, activity, &moved.b_to_a)).map(|_| ())
}

/// A direction quiet for this long gives its buffer back.
const RELEASE_AFTER: Duration = Duration::from_secs(1);

/// Copies from `r` to `w` until EOF (then half-closes `w`) or an error.
async fn one_way(r: ReadHalf<'_>, mut w: WriteHalf<'_>, buf_size: usize, activity: &Activity, written: &AtomicU64) -> io::Result<()> {
    let mut buf: Option<memmap2::MmapMut> = None;
    loop {
        if buf.is_some() {
            tokio::select! {
                ready = r.readable() => ready?,
                () = tokio::time::sleep(RELEASE_AFTER) => {
                    buf = None;
                    r.readable().await?;
                }
            }
        } else {
            r.readable().await?;
        }
        let b = match &mut buf {
            Some(b) => b,
            None => buf.insert(memmap2::MmapMut::map_anon(buf_size)?),
        };
        match r.try_read(&mut b[..]) {
            Ok(0) => {
                w.shutdown().await?;
                return Ok(());
            }
            Ok(n) => {
                activity.touch();
                w.write_all(&b[..n]).await?;
                written.fetch_add(n as u64, Ordering::Relaxed);
                activity.touch();
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
}
