//! Zero-copy relaying on Linux: `socket → pipe → socket` with `splice(2)`,
//! driven by tokio's readiness (`readable`/`writable` + `try_io`), through the
//! safe wrappers of the `nix` crate.
//!
//! Each direction has its own pipe and alternates: when the pipe is empty it
//! splices from the source socket into the pipe; when it holds bytes it splices
//! them into the destination socket until it is empty again. So a `EAGAIN` from
//! a splice always comes from the socket side (never from the pipe), which is
//! what `try_io` needs to clear the right readiness.

use std::io;
use std::net::Shutdown;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};

use nix::fcntl::{fcntl, splice, FcntlArg, OFlag, SpliceFFlags};
use tokio::io::Interest;
use tokio::net::TcpStream;

use crate::pipe::{Activity, Moved};

/// A non-blocking pipe.
struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    capacity: usize,
}

impl Pipe {
    /// A pipe of at least `want` bytes, or an error: a smaller pipe (the
    /// per-user pipe budget is spent) would splice slower than a user-space copy.
    fn new(want: usize) -> io::Result<Pipe> {
        let (read, write) = nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC)?;
        let got = fcntl(&write, FcntlArg::F_SETPIPE_SZ(libc_int(want)))?;
        let capacity = usize::try_from(got).unwrap_or(0);
        if capacity < want {
            return Err(io::ErrorKind::OutOfMemory.into());
        }
        Ok(Pipe { read, write, capacity })
    }
}

fn libc_int(v: usize) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

/// One pipe per direction.
pub(crate) struct Pipes {
    a_to_b: Pipe,
    b_to_a: Pipe,
}

impl Pipes {
    pub(crate) fn new(size: usize) -> io::Result<Pipes> {
        Ok(Pipes { a_to_b: Pipe::new(size)?, b_to_a: Pipe::new(size)? })
    }

    /// Relays both ways until both directions end (EOF passed on as a
    /// half-close) or either fails.
    pub(crate) async fn bidirectional(self, a: &mut TcpStream, b: &mut TcpStream, activity: &Activity, moved: &Moved) -> io::Result<()> {
        let (a, b): (&TcpStream, &TcpStream) = (a, b);
        tokio::try_join!(one_way(a, b, &self.a_to_b, activity, &moved.a_to_b), one_way(b, a, &self.b_to_a, activity, &moved.b_to_a),)
            .map(|_| ())
    }
}

const FLAGS: SpliceFFlags = SpliceFFlags::SPLICE_F_MOVE.union(SpliceFFlags::SPLICE_F_NONBLOCK);

async fn one_way(src: &TcpStream, dst: &TcpStream, pipe: &Pipe, activity: &Activity, moved: &AtomicU64) -> io::Result<()> {
    let mut in_pipe = 0usize;
    let mut eof = false;
    loop {
        if in_pipe == 0 {
            if eof {
                // Pass the EOF on; the peer may already be gone.
                let _ = socket2::SockRef::from(dst).shutdown(Shutdown::Write);
                return Ok(());
            }
            src.readable().await?;
            let r = src.try_io(Interest::READABLE, || splice(src, None, &pipe.write, None, pipe.capacity, FLAGS).map_err(io::Error::from));
            match r {
                Ok(0) => eof = true,
                Ok(n) => {
                    in_pipe = n;
                    activity.touch();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        } else {
            dst.writable().await?;
            let r = dst.try_io(Interest::WRITABLE, || splice(&pipe.read, None, dst, None, in_pipe, FLAGS).map_err(io::Error::from));
            match r {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    in_pipe = in_pipe.saturating_sub(n);
                    moved.fetch_add(n as u64, Ordering::Relaxed);
                    activity.touch();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    }
}
