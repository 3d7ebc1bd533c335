//! The receiver's disk stage: a thread that hashes and writes file data and
//! verifies finished files, so decryption (on the logic thread) and the page
//! cache writes (here) overlap instead of taking turns.
//!
//! Work arrives per record as a [`Batch`]: the decrypted record buffer and the
//! operations on it, in order. Data is written straight from the record
//! buffer (no copy), and the buffer then goes back to the socket reader for
//! reuse. The first error stops all further writing and is reported through
//! [`Disk::check`] / [`Disk::sync`]; nothing is acknowledged to the sender
//! before [`Disk::sync`] has succeeded.

use std::ops::Range;
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};

use crate::sink::{ConflictPolicy, FileWriter};
use crate::{Error, Result};

/// One operation of a batch.
pub(crate) enum Op {
    /// Start writing a file (its temporary file is already open).
    Begin(Box<FileWriter>),
    /// Append `body[range]` to the current file.
    Write(Range<usize>),
    /// Append these bytes (decompressed data) to the current file.
    Owned(Vec<u8>),
    /// Verify and put the current file in place.
    Finish {
        /// The sender's BLAKE3 of the whole file.
        hash: [u8; 32],
        /// The executable bit.
        executable: bool,
        /// Modification time.
        mtime: i64,
        /// What to do if the name is taken by then.
        policy: ConflictPolicy,
    },
}

/// The operations of one record and the buffer they refer to.
pub(crate) struct Batch {
    pub body: Vec<u8>,
    pub ops: Vec<Op>,
}

enum Msg {
    Batch(Batch),
    Sync(Sender<()>),
}

/// Handle to the disk thread.
pub(crate) struct Disk {
    tx: Option<SyncSender<Msg>>,
    errors: Receiver<Error>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Disk {
    /// Starts the thread; finished record buffers go back through `returns`.
    pub fn start(returns: Sender<Vec<u8>>) -> Result<Disk> {
        let (tx, rx) = sync_channel::<Msg>(4);
        let (err_tx, errors) = channel();
        let thread = std::thread::Builder::new().name("pqdrop-disk".into()).spawn(move || run(rx, err_tx, returns))?;
        Ok(Disk { tx: Some(tx), errors, thread: Some(thread) })
    }

    /// The first error the thread hit, if any (does not wait).
    pub fn check(&self) -> Result<()> {
        match self.errors.try_recv() {
            Ok(e) => Err(e),
            Err(_) => Ok(()),
        }
    }

    /// Queues a batch.
    pub fn send(&self, batch: Batch) -> Result<()> {
        self.check()?;
        let tx = self.tx.as_ref().ok_or_else(|| Error::Protocol("the disk stage is closed".into()))?;
        if tx.send(Msg::Batch(batch)).is_err() {
            return Err(self.errors.try_recv().unwrap_or_else(|_| Error::Protocol("the disk stage stopped".into())));
        }
        Ok(())
    }

    /// Waits until everything queued is written and verified, then reports the
    /// first error, if any.
    pub fn sync(&self) -> Result<()> {
        let (reply, done) = channel();
        let tx = self.tx.as_ref().ok_or_else(|| Error::Protocol("the disk stage is closed".into()))?;
        // A thread that is gone cannot have finished the work: never report
        // success unless it answered.
        let answered = tx.send(Msg::Sync(reply)).is_ok() && done.recv().is_ok();
        self.check()?;
        if answered {
            Ok(())
        } else {
            Err(Error::Protocol("the disk stage stopped before finishing".into()))
        }
    }
}

impl Drop for Disk {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(rx: Receiver<Msg>, errors: Sender<Error>, returns: Sender<Vec<u8>>) {
    let mut current: Option<Box<FileWriter>> = None;
    let mut failed = false;
    let missing = || Error::Protocol("file data outside a file".into());
    for msg in rx {
        let batch = match msg {
            Msg::Sync(reply) => {
                let _ = reply.send(());
                continue;
            }
            Msg::Batch(b) => b,
        };
        for op in batch.ops {
            if failed {
                break;
            }
            let r = match op {
                Op::Begin(w) => {
                    current = Some(w);
                    Ok(())
                }
                Op::Write(range) => match (current.as_mut(), batch.body.get(range)) {
                    (Some(w), Some(data)) => w.write(data),
                    _ => Err(missing()),
                },
                Op::Owned(data) => current.as_mut().ok_or_else(missing).and_then(|w| w.write(&data)),
                Op::Finish { hash, executable, mtime, policy } => {
                    current.take().ok_or_else(missing).and_then(|w| w.finish(&hash, executable, mtime, policy))
                }
            };
            if let Err(e) = r {
                failed = true;
                // An unfinished file stays as its partial temp file, for resume.
                current = None;
                let _ = errors.send(e);
            }
        }
        let _ = returns.send(batch.body);
    }
}
