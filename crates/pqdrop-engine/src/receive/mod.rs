//! The receiving side of a transfer (the requester of the handshake): a
//! driver of the sans-IO [`pqdrop_proto::transfer::Receiver`].
//!
//! The machine holds every rule about what the sender may say (order, counts,
//! sizes, names, collisions, resume, capabilities). This driver moves bytes:
//! records from the socket into the machine, and the machine's events to the
//! file system, where all writes go through directory handles
//! ([`crate::sink`]) into temporary files that are verified (BLAKE3) before
//! they are renamed into place, on a separate disk thread. Consent comes
//! before anything is written.

mod disk;
mod journal;
pub mod sink;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use pqdrop_proto::code::Code;
use pqdrop_proto::handshake::Role;
use pqdrop_proto::identity::{Identity, PublicIdentity};
use pqdrop_proto::record::RecordOpener;
use pqdrop_proto::transfer::{Event, FileState, OfferKind, Receiver, ReceiverConfig};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;

use self::disk::{Batch, Begin, Disk, Finish, Op, MAX_OPS};
use crate::conn::{self, local_capabilities, open_frame, read_frame, IdleWatch, Outbound, RawFrame};
use crate::names::{escape, SafePath};
use crate::sink::{ConflictPolicy, OutputDir, Probe};
use crate::{Error, Result};
use pqdrop_proto::liveness::Side;

/// Largest text message accepted (text is held in memory until verified).
pub use pqdrop_proto::transfer::MAX_TEXT;
/// Folders whose modification times are restored (beyond this, best effort is skipped).
const MAX_DIR_TIMES: usize = 100_000;

/// Files smaller than this are hashed as they are written even when their
/// FileEnd carries no hash: for them a BLAKE3 costs less than the `fstat`
/// the resume journal's metadata stamp would need instead.
const HASH_SMALL_FILES: u64 = 1 << 20;
/// Default cap on entries in one transfer.
pub const DEFAULT_MAX_ENTRIES: usize = 1_000_000;

/// The offer as shown to the user: names already escaped.
#[derive(Debug, Clone)]
pub struct OfferSummary {
    /// Kind of transfer.
    pub kind: OfferKind,
    /// Files offered.
    pub files: u64,
    /// Folders offered.
    pub dirs: u64,
    /// Total bytes (0 for a stream of unknown size).
    pub bytes: u64,
    /// Top-level names, escaped for the terminal.
    pub preview: Vec<String>,
    /// Where the sender connects from, when that is the sender itself (LAN
    /// mode; through a relay it is the relay's address, so `None`).
    pub from: Option<std::net::SocketAddr>,
    /// The sender's public identity, if it told it (inside the session, so
    /// it is whoever holds the code).
    pub peer: Option<PublicIdentity>,
}

/// Callbacks to the user interface, called from the logic thread.
pub trait ReceiveUi: Send + Sync {
    /// Shows the offer and asks for consent. Nothing has been written yet.
    fn consent(&self, offer: &OfferSummary) -> bool;
    /// Bytes handled so far.
    fn progress(&self, done: u64, total: u64);
    /// File `shown` (its path in the output folder, escaped) starts; the
    /// progress that follows is its data.
    fn file(&self, shown: &str) {
        let _ = shown;
    }
    /// Text or stream data for standard output (text only after verification).
    fn output(&self, data: &[u8]) -> std::io::Result<()>;
    /// A notice for the user.
    fn warn(&self, msg: &str);
    /// With [`ReceiveOptions::ask`]: the target of file `shown` (escaped) is
    /// taken. Returns what to do with it (never [`ConflictPolicy::Refuse`]
    /// as a choice: `None` stops the transfer with [`Error::Exists`]) and
    /// whether the answer holds for every later conflict too. Called while
    /// the connection waits, before any data moves (keepalives keep it up).
    fn conflict(&self, shown: &str) -> Option<(ConflictPolicy, bool)> {
        let _ = shown;
        None
    }
}

/// Receiver options.
#[derive(Debug, Clone)]
pub struct ReceiveOptions {
    /// Where files go.
    pub out_dir: PathBuf,
    /// What to do when a file exists.
    pub policy: ConflictPolicy,
    /// With [`ConflictPolicy::Refuse`]: ask [`ReceiveUi::conflict`] about
    /// each taken name instead of stopping (a person at a terminal).
    pub ask: bool,
    /// The sender's address, shown with the offer; [`receive_from`] sets it
    /// in LAN mode.
    pub sender_addr: Option<std::net::SocketAddr>,
    /// Cap on entries.
    pub max_entries: usize,
    /// Ask for the cascade cipher.
    pub cascade: bool,
    /// How long the sender may send nothing before we give up (with a sender
    /// that sends KeepAlive; otherwise [`conn::LEGACY_IDLE_TIMEOUT`]).
    pub idle_timeout: std::time::Duration,
    /// This side's identity, shown to the sender inside the session with a
    /// proof that it is ours (when it understands Identity messages), so it
    /// can save us as a contact.
    pub identity: Option<Arc<Identity>>,
}

/// Outcome of a successful receive.
#[derive(Debug, Clone, Default)]
pub struct ReceiveReport {
    /// Kind of transfer.
    pub kind: Option<OfferKind>,
    /// Files written or verified.
    pub files: u64,
    /// Folders created.
    pub dirs: u64,
    /// Bytes that moved over the connection (file data, before decompression accounting).
    pub bytes_received: u64,
    /// Bytes already present from an earlier, interrupted run.
    pub bytes_resumed: u64,
    /// Files that existed and were kept (skipped), escaped.
    pub kept: Listed<String>,
    /// Files that existed and were received under a new name: (offered, chosen), escaped.
    pub renamed: Listed<(String, String)>,
    /// The sender's public identity, if it told it.
    pub peer: Option<PublicIdentity>,
}

/// A list that keeps its first [`Listed::MAX`] items and counts them all, so a
/// transfer of a million names cannot grow a report without bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed<T> {
    /// The first items.
    pub items: Vec<T>,
    /// How many there were in all.
    pub total: u64,
}

impl<T> Default for Listed<T> {
    fn default() -> Self {
        Listed { items: Vec::new(), total: 0 }
    }
}

impl<T> Listed<T> {
    /// Items kept in full.
    pub const MAX: usize = 1000;

    /// Counts `item`, keeping it if there is room.
    pub fn push(&mut self, item: T) {
        self.total += 1;
        if self.items.len() < Self::MAX {
            self.items.push(item);
        }
    }
}

/// Receives over `stream`: runs the handshake as the requester, then the transfer.
pub async fn receive<S>(mut stream: S, code: &Code, opts: ReceiveOptions, ui: Arc<dyn ReceiveUi>) -> Result<ReceiveReport>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (session, leftover) = conn::handshake(&mut stream, Role::Requester, code, local_capabilities(opts.cascade)).await?;
    receive_over(stream, session, leftover, opts, ui).await
}

/// The transfer over an established `session` on `stream` (`leftover`:
/// bytes already read past the handshake), however the session was made.
pub(crate) async fn receive_over<S>(
    stream: S,
    session: pqdrop_proto::handshake::Established,
    leftover: Vec<u8>,
    opts: ReceiveOptions,
    ui: Arc<dyn ReceiveUi>,
) -> Result<ReceiveReport>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (rd, wr) = tokio::io::split(stream);
    let rd = tokio::io::AsyncReadExt::chain(std::io::Cursor::new(leftover), rd);
    let transcript = pqdrop_proto::transfer::SessionTranscript(session.transcript_hash);
    let records = Records { agreed: session.agreed, transcript, sealer: session.sealer, opener: session.opener, to_the_end: false };
    drive(rd, wr, records, opts, ui).await
}

/// Receives what a sealed file holds (PROTOCOL.md §13.5): `rd` reads the
/// records after its header, `opener` is what [`pqdrop_proto::sealed::open`]
/// gave. The same machine and disk path as a live transfer, so the same
/// rules apply to every name; the machine's replies go nowhere.
pub async fn receive_sealed<R>(rd: R, opener: RecordOpener, opts: ReceiveOptions, ui: Arc<dyn ReceiveUi>) -> Result<ReceiveReport>
where
    R: AsyncRead + Unpin + Send + 'static,
{
    let unused = pqdrop_proto::record::RecordCipher::new(
        pqdrop_proto::msg::DataCipher::ChaCha20Poly1305,
        &zeroize::Zeroizing::new([0u8; 32]),
        &zeroize::Zeroizing::new([0u8; 32]),
    )?;
    let sealer = pqdrop_proto::record::RecordSealer::new(unused);
    let records = Records { agreed: pqdrop_proto::sealed::AGREED, transcript: Default::default(), sealer, opener, to_the_end: true };
    drive(rd, tokio::io::sink(), records, opts, ui).await.map_err(|e| match e {
        Error::PeerGone(_) => Error::Damaged("it ends in the middle (cut short)".into()),
        Error::Proto(_) => Error::Damaged("a part of it failed authentication (changed, reordered or cut)".into()),
        Error::PeerViolation(why) => Error::Damaged(why),
        other => other,
    })
}

/// The record layer of one transfer: what was agreed and both directions.
struct Records {
    agreed: pqdrop_proto::msg::Agreed,
    transcript: pqdrop_proto::transfer::SessionTranscript,
    sealer: pqdrop_proto::record::RecordSealer,
    opener: RecordOpener,
    /// A sealed file: its final record and its end must follow the transfer.
    to_the_end: bool,
}

/// The transfer after the handshake: records in from `rd`, replies out to `wr`.
async fn drive<R, W>(rd: R, wr: W, records: Records, opts: ReceiveOptions, ui: Arc<dyn ReceiveUi>) -> Result<ReceiveReport>
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    // Without KeepAlive from the sender, its silence is bounded by the
    // longer legacy limit (PROTOCOL.md §8).
    let Records { agreed, transcript, sealer, opener, to_the_end } = records;
    let mut watch = IdleWatch::new(&agreed, Side::Receiver, opts.idle_timeout);
    let config = ReceiverConfig { max_entries: opts.max_entries, transcript, ..ReceiverConfig::agreed(&agreed) };
    // Buffered, so the small frame-header reads do not each cost a syscall.
    let mut rd = tokio::io::BufReader::with_capacity(64 * 1024, rd);
    let (in_tx, in_rx) = mpsc::channel::<Result<Option<RawFrame>>>(8);
    let (ret_tx, ret_rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let reader = tokio::spawn(async move {
        loop {
            let body = ret_rx.try_recv().unwrap_or_default();
            let f = read_frame(&mut rd, body, &mut watch).await;
            let stop = !matches!(f, Ok(Some(_)));
            if in_tx.send(f).await.is_err() || stop {
                break;
            }
            watch.resumed();
        }
    });
    let (out, writer) = Outbound::start(wr, sealer, &agreed, opts.idle_timeout);
    let logic = tokio::task::spawn_blocking(move || {
        let disk = Disk::start(ret_tx)?;
        let mut r = Driver::new(opts, config, ui, out, disk, opener, in_rx);
        r.to_the_end = to_the_end;
        let res = r.run().map_err(|e| r.explain(e).stopped_by("sender"));
        if let (Err(_), true, Some(p)) = (&res, r.to_the_end, r.writing.take()) {
            // A sealed file cannot resume: no partial file stays. Once the
            // disk thread has done its queue, the file is no longer written.
            let _ = r.disk.sync();
            if let Some(dir) = &r.dir {
                dir.remove_partial(&p);
            }
        }
        if let Err(e) = &res {
            if !matches!(e, Error::PeerGone(_) | Error::Refused) {
                let (code, reason) = conn::abort_reason(e);
                r.rx.abort(code, &reason);
                let _ = r.transmit();
            }
        }
        res.map(|()| std::mem::take(&mut r.report))
    });
    let res = logic.await.map_err(|e| Error::Bug(format!("the receiver thread failed: {e}").into()))?;
    reader.abort();
    let _ = writer.await;
    res
}

/// Finds the sender over `route` (see [`crate::transport::connect`];
/// `on_waiting` hears what it waits for) and receives from it.
pub async fn receive_from(
    route: &crate::transport::Route,
    code: &Code,
    lan_timeout: std::time::Duration,
    mut opts: ReceiveOptions,
    ui: Arc<dyn ReceiveUi>,
    on_waiting: impl FnOnce(crate::transport::Waiting),
) -> Result<ReceiveReport> {
    let stream = crate::transport::connect(route, *code.nameplate(), crate::transport::Side::Receiver { lan_timeout }, on_waiting).await?;
    if matches!(route, crate::transport::Route::Lan(_)) {
        opts.sender_addr = stream.peer_addr().ok();
    }
    receive(stream, code, opts, ui).await
}

/// Per-record work for the disk thread and the state the machine does not
/// keep: open files are the disk thread's, the hasher state of each claimed
/// partial file is kept here until its data starts.
struct Driver {
    opts: ReceiveOptions,
    ui: Arc<dyn ReceiveUi>,
    out: Outbound,
    disk: Disk,
    rx: Receiver,
    /// Disk operations of the record being handled (at most [`MAX_OPS`] + 1
    /// before they are handed on).
    ops: Vec<Op>,
    opener: RecordOpener,
    incoming: mpsc::Receiver<Result<Option<RawFrame>>>,
    report: ReceiveReport,
    dir: Option<Arc<OutputDir>>,
    /// BLAKE3 state after the bytes of each claimed partial file.
    hashers: HashMap<u64, Box<blake3::Hasher>>,
    /// Folders and their mtimes, set once their contents are written.
    dir_times: Vec<(SafePath, u64)>,
    /// The conflict policy of the file being written.
    policy: ConflictPolicy,
    /// Encoded messages from the machine, on their way into records.
    tx: Vec<u8>,
    /// File bytes still to come when the manifest ended.
    to_come: u64,
    /// The sender can skip entries (SKIP agreed).
    skip_agreed: bool,
    /// A sealed file: after the transfer, its final record and its end
    /// must follow, so nothing can be appended.
    to_the_end: bool,
    /// The file being written, while its data comes.
    writing: Option<SafePath>,
    /// With `opts.ask`: the user's choice for each taken name so far, and the
    /// one for all the rest once given.
    chosen: HashMap<u64, ConflictPolicy>,
    for_all: Option<ConflictPolicy>,
}

impl Driver {
    /// Whether taken names are decided by the user, one by one.
    fn asking(&self) -> bool {
        self.opts.ask && self.opts.policy == ConflictPolicy::Refuse
    }

    /// The user's choice for taken name `path` (or the one given for all).
    fn choose(&mut self, path: &SafePath) -> Result<ConflictPolicy> {
        if let Some(p) = self.for_all {
            return Ok(p);
        }
        match self.ui.conflict(&path.display()) {
            Some((ConflictPolicy::Refuse, _)) | None => Err(Error::Exists(path.display())),
            Some((ConflictPolicy::Skip, _)) if !self.skip_agreed => Err(Error::Exists(path.display())),
            Some((choice, all)) => {
                if all {
                    self.for_all = Some(choice);
                }
                Ok(choice)
            }
        }
    }

    fn new(
        opts: ReceiveOptions,
        config: ReceiverConfig,
        ui: Arc<dyn ReceiveUi>,
        out: Outbound,
        disk: Disk,
        opener: RecordOpener,
        incoming: mpsc::Receiver<Result<Option<RawFrame>>>,
    ) -> Self {
        let policy = opts.policy;
        let mut rx = Receiver::new(config);
        if let Some(id) = &opts.identity {
            // A fresh machine always takes it; nothing is sent unless agreed.
            let _ = rx.share_identity(id);
        }
        Driver {
            opts,
            ui,
            out,
            disk,
            rx,
            ops: Vec::new(),
            opener,
            incoming,
            report: ReceiveReport::default(),
            dir: None,
            hashers: HashMap::new(),
            dir_times: Vec::new(),
            policy,
            chosen: HashMap::new(),
            for_all: None,
            tx: Vec::new(),
            to_come: 0,
            skip_agreed: config.skip,
            to_the_end: false,
            writing: None,
        }
    }

    fn run(&mut self) -> Result<()> {
        while !self.rx.is_finished() {
            let mut frame = match self.incoming.blocking_recv() {
                Some(Ok(Some(f))) => f,
                Some(Ok(None)) | None => return Err(Error::PeerGone("the sender closed the connection".into())),
                Some(Err(e)) => return Err(e),
            };
            let n = open_frame(&mut self.opener, &mut frame)?.len();
            let body = Arc::new(frame.body);
            let pt = &body[..n];
            self.rx.start_record();
            while let Some(ev) = self.rx.poll_event(pt)? {
                self.on_event(ev, pt)?;
                if self.ops.len() >= MAX_OPS {
                    let ops = std::mem::replace(&mut self.ops, Vec::with_capacity(MAX_OPS + 1));
                    self.disk.send(Batch { body: Arc::clone(&body), ops })?;
                }
                if self.rx.wants_close() {
                    break;
                }
            }
            // Hand the record's file data to the disk stage (or the buffer back
            // to the reader when there is none).
            let ops = std::mem::take(&mut self.ops);
            self.disk.send(Batch { body, ops })?;
            if self.rx.awaits_finish() {
                self.complete()?;
            }
            self.transmit()?;
            if self.rx.wants_close() && !self.rx.is_finished() {
                return Err(Error::Refused);
            }
            if self.opener.is_finished() && !self.rx.is_finished() {
                return Err(Error::PeerViolation("the sender ended the stream early".into()));
            }
        }
        if self.to_the_end {
            self.expect_end()?;
        }
        self.report.kind = self.rx.offer().map(|o| o.kind);
        self.report.files = self.rx.files_done();
        self.report.dirs = self.rx.dirs_seen();
        self.report.bytes_received = self.rx.bytes_received();
        self.report.bytes_resumed = self.rx.bytes_resumed();
        self.report.renamed = self.disk.renamed();
        Ok(())
    }

    /// The rest of a sealed file after its Done: an empty final record, then
    /// the end of the file.
    fn expect_end(&mut self) -> Result<()> {
        let damaged = |why: &str| Error::PeerViolation(format!("the sealed file {why}"));
        if !self.opener.is_finished() {
            let mut frame = match self.incoming.blocking_recv() {
                Some(Ok(Some(f))) => f,
                Some(Err(e)) => return Err(e),
                _ => return Err(damaged("ends without its final record (cut short)")),
            };
            let n = open_frame(&mut self.opener, &mut frame)?.len();
            if n != 0 || !self.opener.is_finished() {
                return Err(damaged("has more after its transfer ended"));
            }
        }
        match self.incoming.blocking_recv() {
            Some(Ok(None)) | None => Ok(()),
            Some(Err(e)) => Err(e),
            Some(Ok(Some(_))) => Err(damaged("has bytes after its final record")),
        }
    }

    /// A disk that filled up mid-transfer: say how much is still needed and
    /// that what arrived is kept for resume.
    fn explain(&self, e: Error) -> Error {
        match e {
            Error::Io { err, .. } if err.kind() == std::io::ErrorKind::StorageFull => Error::NoSpace {
                dir: self.opts.out_dir.clone(),
                need: self.to_come.saturating_sub(self.disk.written()).max(1),
                free: crate::sink::free_space(&self.opts.out_dir).ok(),
                // A sealed file does not resume, so nothing is kept for it.
                kept: !self.to_the_end,
            },
            other => other,
        }
    }

    /// Moves the machine's replies into records: flushed at once, or sent as
    /// the final record when the machine is done with the connection.
    fn transmit(&mut self) -> Result<()> {
        if self.rx.poll_transmit(&mut self.tx) {
            let r = self.out.push_encoded(&self.tx);
            self.tx.clear();
            r?;
            if !self.rx.wants_close() {
                self.out.flush()?;
            }
        }
        if self.rx.wants_close() {
            self.out.finish()?;
        }
        Ok(())
    }

    fn out_dir(&self) -> Result<&Arc<OutputDir>> {
        self.dir.as_ref().ok_or_else(|| Error::PeerViolation("file data in a text transfer".into()))
    }

    fn on_event(&mut self, ev: Event, pt: &[u8]) -> Result<()> {
        let total = self.rx.offer().map_or(0, |o| o.bytes);
        match ev {
            Event::PeerIdentity(id) => self.report.peer = Some(id),
            Event::Offer(o) => {
                if self.to_the_end && o.kind != OfferKind::Files {
                    return Err(Error::PeerViolation("it holds a text or a stream, and sealed files hold only files".into()));
                }
                let summary = OfferSummary {
                    kind: o.kind,
                    files: o.files,
                    dirs: o.dirs,
                    bytes: o.bytes,
                    preview: o.preview.iter().map(|p| escape(p)).collect(),
                    from: self.opts.sender_addr,
                    peer: self.report.peer.clone(),
                };
                // A folder we could not write to is said now, before the
                // user is asked and before the sender's code is used up.
                if o.kind == OfferKind::Files {
                    crate::sink::check_output_dir(&self.opts.out_dir)?;
                }
                if !self.ui.consent(&summary) {
                    self.rx.refuse()?;
                    return Ok(());
                }
                if o.kind == OfferKind::Files {
                    // Asking: probes report a taken name (after checking it is
                    // not a folder) and the user decides per file.
                    let probing = if self.asking() { ConflictPolicy::Overwrite } else { self.opts.policy };
                    let dir = OutputDir::open(&self.opts.out_dir, probing)?;
                    // A sealed file does not resume: no journal.
                    if !self.to_the_end {
                        dir.start_journal(&journal_id(&o))?;
                    }
                    self.dir = Some(Arc::new(dir));
                }
                self.rx.accept()?;
                self.transmit()?;
            }
            Event::Folder { path, mtime } => {
                self.out_dir()?.create_dir(&path)?;
                // Folder times are restored at the end; the list is capped so a
                // hostile manifest of deep folders cannot grow it without bound.
                if self.dir_times.len() < MAX_DIR_TIMES {
                    self.dir_times.push((path, mtime));
                }
            }
            Event::CheckFile { index, path, size } => {
                let out = self.out_dir()?;
                let mut probe = out.probe_file(&path, size)?;
                if let Probe::Complete { hash, stamp } = probe {
                    // A file this receiver did not put there itself is never
                    // proven (no hash oracle): it is a taken name.
                    if !out.placed_earlier(&path, size, &hash, &stamp) {
                        probe = out.resolve_conflict(&path)?;
                    }
                }
                let mut keep = self.opts.policy == ConflictPolicy::Skip;
                if self.asking() && matches!(probe, Probe::Conflict { .. }) {
                    let choice = self.choose(&path)?;
                    self.chosen.insert(index, choice);
                    keep = choice == ConflictPolicy::Skip;
                }
                let state = match probe {
                    Probe::Complete { .. } | Probe::Conflict { .. } if keep && self.skip_agreed => {
                        self.report.kept.push(path.display());
                        FileState::Keep
                    }
                    // --skip-existing: whatever is there stays, and nothing
                    // about it is revealed (no proof is sent).
                    Probe::Conflict { .. } if keep => return Err(Error::Exists(path.display())),
                    Probe::Fresh => FileState::Fresh,
                    Probe::Partial { len, prefix_hash, hasher } => {
                        self.hashers.insert(index, Box::new(hasher));
                        FileState::Partial { len, hash: prefix_hash }
                    }
                    Probe::Complete { hash, .. } => FileState::Complete { hash },
                    // Overwrite or Rename: decided when the file is put in place.
                    Probe::Conflict { .. } => FileState::Fresh,
                };
                self.rx.file_checked(index, state)?;
                // Claims go out as they are made, so none pile up here.
                if self.rx.poll_transmit(&mut self.tx) {
                    let r = self.out.push_encoded(&self.tx);
                    self.tx.clear();
                    r?;
                }
            }
            Event::ManifestDone { to_come } => {
                // Before any data moves: is there room for what is to come?
                self.to_come = to_come;
                let free = crate::sink::free_space(&self.opts.out_dir)?;
                if to_come > free {
                    return Err(Error::NoSpace { dir: self.opts.out_dir.clone(), need: to_come, free: Some(free), kept: false });
                }
                self.rx.ready()?;
                self.transmit()?;
            }
            Event::FileStart { entry, path, offset, conflict } => {
                // The existing file differs from the sender's: a conflict, now.
                if conflict && self.opts.policy == ConflictPolicy::Refuse {
                    if !self.asking() {
                        return Err(Error::Exists(path.display()));
                    }
                    // Data is on its way: keeping the file is no longer a choice.
                    match self.choose(&path)? {
                        ConflictPolicy::Skip => return Err(Error::Exists(path.display())),
                        choice => {
                            self.chosen.insert(entry.index, choice);
                        }
                    }
                }
                let hasher = self.hashers.remove(&entry.index);
                let resume = if offset > 0 {
                    Some((offset, hasher.ok_or_else(|| Error::PeerViolation("resume without a partial".into()))?))
                } else {
                    None
                };
                let dir = Arc::clone(self.out_dir()?);
                self.ui.file(&path.display());
                // A file whose FileEnd carries no hash is not hashed here
                // either, unless it is small enough that hashing costs less
                // than the metadata stamp the journal would need instead.
                let hash = self.rx.file_hashed() || entry.size < HASH_SMALL_FILES;
                if self.to_the_end {
                    self.writing = Some(path.clone());
                }
                self.ops.push(Op::Begin(Box::new(Begin { dir, path, size: entry.size, resume, hash })));
                self.policy = self.chosen.get(&entry.index).copied().unwrap_or(self.opts.policy);
                self.ui.progress(self.rx.bytes_received() + self.rx.bytes_resumed(), total);
            }
            Event::Data(range) => {
                self.ops.push(Op::Write { start: offset32(range.start)?, len: offset32(range.len())? });
                self.ui.progress(self.rx.bytes_received() + self.rx.bytes_resumed(), total);
            }
            Event::Compressed { range, size } => {
                self.ops.push(Op::Zstd { start: offset32(range.start)?, len: offset32(range.len())?, size });
                self.ui.progress(self.rx.bytes_received() + self.rx.bytes_resumed(), total);
            }
            Event::FileEnd { hash, executable, mtime } => {
                self.writing = None;
                let mtime = i64::try_from(mtime).unwrap_or(i64::MAX);
                self.ops.push(Op::Finish(Box::new(Finish { hash, executable, mtime, policy: self.policy })));
            }
            Event::Skipped { index } => {
                self.hashers.remove(&index);
            }
            Event::PartialComplete { entry, path } => {
                let hasher = self.hashers.remove(&entry.index).ok_or_else(|| Error::PeerViolation("no partial file".into()))?;
                let hash = *hasher.finalize().as_bytes();
                let dir = Arc::clone(self.out_dir()?);
                let begin = Begin { dir, path, size: entry.size, resume: Some((entry.size, hasher)), hash: true };
                let mtime = i64::try_from(entry.mtime).unwrap_or(i64::MAX);
                self.ops.push(Op::Begin(Box::new(begin)));
                self.ops.push(Op::Finish(Box::new(Finish {
                    hash: Some(hash),
                    executable: entry.executable,
                    mtime,
                    policy: self.opts.policy,
                })));
            }
            Event::StreamData(range) => {
                self.ui.output(pt.get(range).unwrap_or_default())?;
                self.ui.progress(self.rx.bytes_received(), 0);
            }
            Event::Text(text) => self.ui.output(&text)?,
            Event::StreamEnd | Event::Done => {}
        }
        Ok(())
    }

    /// After `Done`: waits for the disk stage to verify and place every file,
    /// restores folder times, then lets the machine acknowledge.
    fn complete(&mut self) -> Result<()> {
        self.disk.sync()?;
        if let Some(out) = &self.dir {
            out.end_journal();
        }
        // Deepest first, so setting a folder's time is not undone by writing inside it.
        if let Some(out) = &self.dir {
            for (p, mtime) in self.dir_times.iter().rev() {
                if let Err(e) = out.set_dir_times(p, i64::try_from(*mtime).unwrap_or(i64::MAX)) {
                    tracing::debug!(error = %e, "could not set a folder's time");
                }
            }
        }
        self.rx.finish()?;
        Ok(())
    }
}

/// Names a transfer for its resume journal: the same send run again has the
/// same offer.
fn journal_id(o: &pqdrop_proto::transfer::Offer) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key("pqdrop resume journal v1 transfer");
    for n in [o.files, o.dirs, o.bytes, o.preview.len() as u64] {
        h.update(&n.to_le_bytes());
    }
    for name in &o.preview {
        h.update(&(name.len() as u64).to_le_bytes());
        h.update(name);
    }
    *h.finalize().as_bytes()
}

/// A record offset as the disk thread's `u32` (records are at most 1 MiB).
fn offset32(n: usize) -> Result<u32> {
    u32::try_from(n).map_err(|_| Error::PeerViolation("a record offset beyond 4 GiB".into()))
}
