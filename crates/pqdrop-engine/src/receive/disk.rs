//! The receiver's disk stage: a thread that decompresses, hashes and writes
//! file data and verifies finished files, so decryption (on the logic thread)
//! and the page cache writes (here) overlap instead of taking turns.
//!
//! Work arrives as [`Batch`]es: a decrypted record buffer and operations on
//! it, in order. Data is written straight from the record buffer (no copy),
//! and zstd chunks are decompressed here into one reused 1 MiB buffer, so the
//! logic thread never holds decompressed data. What the receiver holds for a
//! record is therefore bounded by constants, whatever the record contains: the
//! record buffer, at most [`MAX_OPS`] operations of 16 bytes per batch, and
//! that one buffer. A record with more operations is split into several
//! batches that share its buffer; the buffer goes back to the socket reader
//! for reuse after the last of them. The first error stops all further
//! writing and is reported through [`Disk::check`] / [`Disk::sync`]; nothing
//! is acknowledged to the sender before [`Disk::sync`] has succeeded.

use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};

use pqdrop_proto::transfer::MAX_CHUNK;

use crate::names::SafePath;
use crate::receive::Listed;
use crate::sink::{ConflictPolicy, FileWriter, OutputDir};
use crate::{Error, Result};

/// Operations per batch, at most. An op is 16 bytes, but a file's Begin and
/// Finish carry a path and more on the heap (about 300 bytes for a short
/// one), and up to QUEUE + 2 batches are alive at once: 4,096 keeps that
/// under 10 MB however small the files are, and still amortises the queue.
pub(crate) const MAX_OPS: usize = 4 * 1024;

/// Files of this size or more have their journal line written before they
/// are placed; smaller ones at the end of their batch.
const JOURNAL_AT_ONCE: u64 = 1 << 20;

/// Batches queued ahead of the disk thread, at most.
const QUEUE: usize = 4;

/// One operation of a batch. Ranges are `u32` offsets into the batch's record
/// buffer (records are at most 1 MiB), which keeps an operation at 16 bytes.
pub(crate) enum Op {
    /// Open a file's temporary file and start writing it.
    Begin(Box<Begin>),
    /// Append `body[start..start + len]` to the current file.
    Write {
        /// Offset in the record buffer.
        start: u32,
        /// Length.
        len: u32,
    },
    /// Decompress the zstd frame at `body[start..start + len]`, which declared
    /// `size` bytes of content (checked against the file when it was parsed),
    /// and append exactly those bytes to the current file.
    Zstd {
        /// Offset in the record buffer.
        start: u32,
        /// Compressed length.
        len: u32,
        /// Declared content size (at most 1 MiB).
        size: u32,
    },
    /// Verify and put the current file in place.
    Finish(Box<Finish>),
}

/// What [`Op::Begin`] needs: [`OutputDir::begin_file`]'s arguments.
pub(crate) struct Begin {
    /// The output folder.
    pub dir: Arc<OutputDir>,
    /// The validated path.
    pub path: SafePath,
    /// The announced size.
    pub size: u64,
    /// Resume from this many bytes, with the hash state after them.
    /// Boxed: a BLAKE3 hasher is about 1.9 KB, and a batch holds up to
    /// [`MAX_OPS`] of these, most of them without one.
    pub resume: Option<(u64, Box<blake3::Hasher>)>,
    /// Hash what is written (false only for a file sent whole without a
    /// FileEnd hash; see [`FileWriter::without_hash`]).
    pub hash: bool,
}

/// What [`Op::Finish`] needs.
pub(crate) struct Finish {
    /// The sender's BLAKE3 of the whole file (`None`: the sender sent the
    /// file whole under UNHASHED_FRESH, and the record layer authenticated it).
    pub hash: Option<[u8; 32]>,
    /// The executable bit.
    pub executable: bool,
    /// Modification time.
    pub mtime: i64,
    /// What to do if the name is taken by then.
    pub policy: ConflictPolicy,
}

/// Some operations of one record and the buffer they refer to.
pub(crate) struct Batch {
    pub body: Arc<Vec<u8>>,
    pub ops: Vec<Op>,
}

enum Msg {
    Batch(Batch),
    Sync(Sender<()>),
}

/// Handle to the disk thread.
pub(crate) struct Disk {
    /// File bytes written so far (for "how much more space is needed").
    written: Arc<std::sync::atomic::AtomicU64>,
    /// Files placed under a new name (`--rename`, or the user's choice).
    renamed: Arc<Mutex<Listed<(String, String)>>>,
    tx: Option<SyncSender<Msg>>,
    errors: Receiver<Error>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Disk {
    /// Starts the thread; finished record buffers go back through `returns`.
    pub fn start(returns: Sender<Vec<u8>>) -> Result<Disk> {
        let (tx, rx) = sync_channel::<Msg>(QUEUE);
        let (err_tx, errors) = channel();
        let written = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let renamed = Arc::new(Mutex::new(Listed::default()));
        let shared = Shared { written: Arc::clone(&written), renamed: Arc::clone(&renamed) };
        let thread = std::thread::Builder::new().name("pqdrop-disk".into()).spawn(move || run(rx, err_tx, returns, &shared))?;
        Ok(Disk { written, renamed, tx: Some(tx), errors, thread: Some(thread) })
    }

    /// The files placed under a new name so far.
    pub fn renamed(&self) -> Listed<(String, String)> {
        self.renamed.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// File bytes written so far.
    pub fn written(&self) -> u64 {
        self.written.load(std::sync::atomic::Ordering::Relaxed)
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
        let tx = self.tx.as_ref().ok_or_else(|| Error::Bug("the disk stage is closed".into()))?;
        if tx.send(Msg::Batch(batch)).is_err() {
            return Err(self.errors.try_recv().unwrap_or_else(|_| Error::Bug("the disk stage stopped".into())));
        }
        Ok(())
    }

    /// Waits until everything queued is written and verified, then reports the
    /// first error, if any.
    pub fn sync(&self) -> Result<()> {
        let (reply, done) = channel();
        let tx = self.tx.as_ref().ok_or_else(|| Error::Bug("the disk stage is closed".into()))?;
        // A thread that is gone cannot have finished the work: never report
        // success unless it answered.
        let answered = tx.send(Msg::Sync(reply)).is_ok() && done.recv().is_ok();
        self.check()?;
        if answered {
            Ok(())
        } else {
            Err(Error::Bug("the disk stage stopped before finishing".into()))
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

/// What the disk thread reports back besides errors.
struct Shared {
    written: Arc<std::sync::atomic::AtomicU64>,
    renamed: Arc<Mutex<Listed<(String, String)>>>,
}

fn run(rx: Receiver<Msg>, errors: Sender<Error>, returns: Sender<Vec<u8>>, shared: &Shared) {
    let mut current: Option<(Arc<OutputDir>, Box<FileWriter>)> = None;
    let mut failed = false;
    let mut zstd = Zstd::default();
    // The folder whose journal has lines to write (one output folder per transfer).
    let mut journal: Option<Arc<OutputDir>> = None;
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
            let bytes = match &op {
                Op::Write { len, .. } => u64::from(*len),
                Op::Zstd { size, .. } => u64::from(*size),
                _ => 0,
            };
            if let (Op::Finish(_), Some((dir, _))) = (&op, &current) {
                journal.get_or_insert_with(|| Arc::clone(dir));
            }
            if let Err(e) = apply(op, &batch.body, &mut current, &mut zstd, &shared.renamed) {
                failed = true;
                // An unfinished file stays as its partial temp file, for resume.
                current = None;
                let _ = errors.send(e);
            } else {
                shared.written.fetch_add(bytes, std::sync::atomic::Ordering::Relaxed);
            }
        }
        // The files placed by this batch go into the journal in one write.
        if let Some(dir) = &journal {
            dir.flush_journal();
        }
        // The last batch of a record holds the last reference to its buffer.
        if let Ok(body) = Arc::try_unwrap(batch.body) {
            let _ = returns.send(body);
        }
    }
}

fn apply(
    op: Op,
    body: &[u8],
    current: &mut Option<(Arc<OutputDir>, Box<FileWriter>)>,
    zstd: &mut Zstd,
    renamed: &Mutex<Listed<(String, String)>>,
) -> Result<()> {
    let missing = || Error::PeerViolation("file data outside a file".into());
    let slice = |start: u32, len: u32| body.get(start as usize..start as usize + len as usize).ok_or_else(missing);
    match op {
        // The file is opened here, when its data is about to be written, so
        // only the file being written holds descriptors (two: the file and its
        // folder), whatever the queue holds: a folder of thousands of small
        // files works under `ulimit -n 64`.
        Op::Begin(b) => {
            let w = b.dir.begin_file(&b.path, b.size, b.resume.map(|(len, h)| (len, *h)))?;
            let w = if b.hash { w } else { w.without_hash() };
            *current = Some((b.dir, Box::new(w)));
            Ok(())
        }
        Op::Write { start, len } => current.as_mut().ok_or_else(missing)?.1.write(slice(start, len)?),
        Op::Zstd { start, len, size } => {
            let w = &mut current.as_mut().ok_or_else(missing)?.1;
            w.write(zstd.decompress(slice(start, len)?, size as usize)?)
        }
        Op::Finish(f) => {
            let (dir, w) = current.take().ok_or_else(missing)?;
            let (path, size) = (w.path().clone(), w.size());
            // The line goes into the journal before the file takes its name.
            // A big file's line is written at once (one write beside
            // megabytes); small files' lines wait for the end of the batch,
            // so a receiver killed meanwhile may later treat a few of them
            // as taken names (PROTOCOL.md §8).
            let mut recorded = false;
            let placed = w.finish_with(f.hash.as_ref(), f.executable, f.mtime, f.policy, &mut |line| {
                dir.record_placed(&path, size, line);
                recorded = true;
                if size >= JOURNAL_AT_ONCE {
                    dir.flush_journal();
                }
            });
            let placed = match placed {
                Ok(p) => p,
                Err(e) => {
                    // Not placed after all (the name was taken meanwhile):
                    // a later line with a value nothing hashes to takes the
                    // claim back, so what is there is never proven.
                    if recorded {
                        dir.record_placed(&path, size, &[0; 32]);
                        dir.flush_journal();
                    }
                    return Err(e);
                }
            };
            if let Some(chosen) = placed.renamed {
                if let Ok(mut r) = renamed.lock() {
                    r.push((placed.shown, chosen));
                }
            }
            Ok(())
        }
    }
}

/// The disk thread's decompressor and its one output buffer, made on first use.
#[derive(Default)]
struct Zstd {
    dec: Option<zstd::bulk::Decompressor<'static>>,
    buf: Vec<u8>,
}

impl Zstd {
    /// Decompresses one frame that declared `size` bytes. The output buffer is
    /// cut to exactly `size`, so a frame (or a run of frames) that holds more
    /// fails instead of growing anything, and one that holds less is refused
    /// too.
    fn decompress(&mut self, data: &[u8], size: usize) -> Result<&[u8]> {
        if size > MAX_CHUNK {
            return Err(Error::PeerViolation("a compressed chunk declares more than 1 MiB".into()));
        }
        let dec = match &mut self.dec {
            Some(d) => d,
            none => none.insert(zstd::bulk::Decompressor::new()?),
        };
        self.buf.resize(MAX_CHUNK, 0);
        let corrupt =
            || Error::PeerViolation("a compressed chunk is corrupt or does not decompress to the size its frame header declares".into());
        let n = dec.decompress_to_buffer(data, &mut self.buf[..size]).map_err(|_| corrupt())?;
        if n != size {
            return Err(corrupt());
        }
        Ok(&self.buf[..n])
    }
}
