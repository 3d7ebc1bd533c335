//! The receiving side of a transfer (the requester of the handshake).
//!
//! The receiver trusts nothing the sender says about where or how to write:
//! every entry is validated ([`crate::names`]), collisions are detected with
//! bounded memory, and all writes go through directory handles
//! ([`crate::sink`]) into temporary files that are verified (BLAKE3) before
//! they are renamed into place. Consent comes before anything is written.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use pqdrop_proto::code::Code;
use pqdrop_proto::handshake::Role;
use pqdrop_proto::primitives::ct_eq;
use pqdrop_proto::record::RecordOpener;
use pqdrop_proto::transfer::{chunk_data_len, Entry, EntryKind, Messages, Offer, OfferKind, TransferMsg};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;

use crate::conn::{self, local_capabilities, open_frame, read_frame, Outbound, RawFrame};
use crate::disk::{Batch, Disk, Finish, Op, MAX_OPS};
use crate::names::{escape, CollisionSet, SafePath};
use crate::sink::{ConflictPolicy, OutputDir, Probe};
use crate::{Error, Result};

/// Largest text message accepted (text is held in memory until verified).
pub const MAX_TEXT: u64 = 16 << 20;
/// Folders whose modification times are restored (beyond this, best effort is skipped).
const MAX_DIR_TIMES: usize = 100_000;
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
}

/// Callbacks to the user interface, called from the logic thread.
pub trait ReceiveUi: Send + Sync {
    /// Shows the offer and asks for consent. Nothing has been written yet.
    fn consent(&self, offer: &OfferSummary) -> bool;
    /// Bytes handled so far.
    fn progress(&self, done: u64, total: u64);
    /// Text or stream data for standard output (text only after verification).
    fn output(&self, data: &[u8]) -> std::io::Result<()>;
    /// A notice for the user.
    fn warn(&self, msg: &str);
}

/// Receiver options.
#[derive(Debug, Clone)]
pub struct ReceiveOptions {
    /// Where files go.
    pub out_dir: PathBuf,
    /// What to do when a file exists.
    pub policy: ConflictPolicy,
    /// Cap on entries.
    pub max_entries: usize,
    /// Ask for the cascade cipher.
    pub cascade: bool,
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
}

/// Receives over `stream`: runs the handshake as the requester, then the transfer.
pub async fn receive<S>(mut stream: S, code: &Code, opts: ReceiveOptions, ui: Arc<dyn ReceiveUi>) -> Result<ReceiveReport>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (session, leftover) = conn::handshake(&mut stream, Role::Requester, code, local_capabilities(opts.cascade)).await?;
    let (rd, wr) = tokio::io::split(stream);
    // Buffered, so the small frame-header reads do not each cost a syscall.
    let mut rd = tokio::io::BufReader::with_capacity(64 * 1024, tokio::io::AsyncReadExt::chain(std::io::Cursor::new(leftover), rd));
    let (in_tx, in_rx) = mpsc::channel::<Result<Option<RawFrame>>>(8);
    let (ret_tx, ret_rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let reader = tokio::spawn(async move {
        loop {
            let body = ret_rx.try_recv().unwrap_or_default();
            let f = read_frame(&mut rd, body, Some(conn::IDLE_TIMEOUT)).await;
            let stop = !matches!(f, Ok(Some(_)));
            if in_tx.send(f).await.is_err() || stop {
                break;
            }
        }
    });
    let (out, writer) = Outbound::start(wr, session.sealer);
    let opener = session.opener;
    let logic = tokio::task::spawn_blocking(move || {
        let disk = Disk::start(ret_tx)?;
        let mut r = ReceiverLogic::new(opts, ui, out, disk, opener, in_rx);
        let res = r.run();
        if let Err(e) = &res {
            if !matches!(e, Error::PeerGone(_) | Error::Refused) {
                let _ = r.out.push(&TransferMsg::Abort { reason: conn::abort_reason(e) });
                let _ = r.out.finish();
            }
        }
        res.map(|()| std::mem::take(&mut r.report))
    });
    let res = logic.await.map_err(|e| Error::Protocol(format!("receiver thread failed: {e}")))?;
    reader.abort();
    let _ = writer.await;
    res
}

/// Per-file state kept between the manifest and the data phase (sparse).
enum Local {
    /// A partial file we claimed: its length and hasher state, and the entry
    /// (needed if the sender says the partial is already the whole file).
    Partial(u64, Box<blake3::Hasher>, Box<Entry>),
    /// The final file exists with the right size; we claimed it.
    Complete,
}

#[derive(Debug, Default)]
struct Seen {
    files: u64,
    dirs: u64,
    bytes: u64,
}

struct Current {
    entry: Entry,
    policy: ConflictPolicy,
    /// Bytes of the file still to come: every chunk is counted against it
    /// when parsed, before it is decompressed or queued.
    remaining: u64,
}

struct ReceiverLogic {
    opts: ReceiveOptions,
    ui: Arc<dyn ReceiveUi>,
    out: Outbound,
    disk: Disk,
    /// Disk operations of the record being handled (at most [`MAX_OPS`] + 1
    /// before they are handed on).
    ops: Vec<Op>,
    /// Address of the current record's plaintext, to turn chunk slices into ranges.
    base: usize,
    /// `Done` arrived; acknowledge once the disk stage has caught up.
    done_pending: bool,
    opener: RecordOpener,
    incoming: mpsc::Receiver<Result<Option<RawFrame>>>,
    report: ReceiveReport,
    dir: Option<OutputDir>,
    offer: Option<Offer>,
    collisions: CollisionSet,
    /// BLAKE3 (first 16 bytes) of each manifest entry, so FileStart must repeat it exactly.
    digests: Vec<[u8; 16]>,
    local: HashMap<u64, Local>,
    manifest_done: bool,
    manifest_files: u64,
    /// Files, folders and bytes seen in the manifest so far.
    seen: Seen,
    /// Folders and their mtimes, set once their contents are written.
    dir_times: Vec<(SafePath, u64)>,
    stream_ended: bool,
    current: Option<Current>,
    next_file: usize,
    stream_hash: blake3::Hasher,
    stream_len: u64,
    text: Vec<u8>,
    done: u64,
    finished: bool,
}

fn digest(e: &Entry) -> [u8; 16] {
    let mut b = Vec::with_capacity(64 + e.path.len());
    TransferMsg::Entry(e.clone()).encode(&mut b);
    let h = blake3::hash(&b);
    let mut d = [0u8; 16];
    d.copy_from_slice(&h.as_bytes()[..16]);
    d
}

fn proto(msg: &str) -> Error {
    Error::Protocol(msg.into())
}

impl ReceiverLogic {
    fn new(
        opts: ReceiveOptions,
        ui: Arc<dyn ReceiveUi>,
        out: Outbound,
        disk: Disk,
        opener: RecordOpener,
        incoming: mpsc::Receiver<Result<Option<RawFrame>>>,
    ) -> Self {
        let max = opts.max_entries;
        Self {
            opts,
            ui,
            out,
            disk,
            ops: Vec::new(),
            base: 0,
            done_pending: false,
            opener,
            incoming,
            report: ReceiveReport::default(),
            dir: None,
            offer: None,
            collisions: CollisionSet::new(max),
            digests: Vec::new(),
            local: HashMap::new(),
            manifest_done: false,
            manifest_files: 0,
            seen: Seen::default(),
            dir_times: Vec::new(),
            stream_ended: false,
            current: None,
            next_file: 0,
            stream_hash: blake3::Hasher::new(),
            stream_len: 0,
            text: Vec::new(),
            done: 0,
            finished: false,
        }
    }

    fn run(&mut self) -> Result<()> {
        while !self.finished {
            let mut frame = match self.incoming.blocking_recv() {
                Some(Ok(Some(f))) => f,
                Some(Ok(None)) | None => return Err(Error::PeerGone("the sender closed the connection".into())),
                Some(Err(e)) => return Err(e),
            };
            let n = open_frame(&mut self.opener, &mut frame)?.len();
            let body = Arc::new(frame.body);
            let pt = &body[..n];
            self.base = pt.as_ptr() as usize;
            let mut it = Messages::new(pt);
            while let Some(m) = it.next().map_err(conn::proto_err)? {
                self.handle(m)?;
                if self.ops.len() >= MAX_OPS {
                    let ops = std::mem::replace(&mut self.ops, Vec::with_capacity(MAX_OPS + 1));
                    self.disk.send(Batch { body: Arc::clone(&body), ops })?;
                }
            }
            // Hand the record's file data to the disk stage (or the buffer back
            // to the reader when there is none).
            let ops = std::mem::take(&mut self.ops);
            self.disk.send(Batch { body, ops })?;
            if self.done_pending {
                self.acknowledge()?;
            }
            if self.opener.is_finished() && !self.finished {
                return Err(proto("the sender ended the stream early"));
            }
        }
        Ok(())
    }

    fn handle(&mut self, m: TransferMsg<'_>) -> Result<()> {
        match m {
            TransferMsg::Offer(o) if self.offer.is_none() => self.on_offer(o),
            TransferMsg::Abort { reason } => Err(Error::Protocol(format!("the sender stopped: {}", escape(reason.as_bytes())))),
            _ if self.offer.is_none() => Err(proto("expected an offer")),
            TransferMsg::Entry(e) if !self.manifest_done => self.on_entry(e),
            TransferMsg::ManifestEnd if !self.manifest_done => {
                let o = self.offer.as_ref().ok_or_else(|| proto("no offer"))?;
                if (self.seen.files, self.seen.dirs, self.seen.bytes) != (o.files, o.dirs, o.bytes) {
                    return Err(proto("the manifest does not match the offer you accepted"));
                }
                self.manifest_done = true;
                self.out.push(&TransferMsg::Ready)?;
                self.out.flush()
            }
            TransferMsg::FileStart { entry, offset } if self.manifest_done && self.current.is_none() => self.on_file_start(entry, offset),
            TransferMsg::Chunk { compressed, data } => self.on_chunk(compressed, data),
            TransferMsg::FileEnd { hash } => self.on_file_end(hash),
            TransferMsg::FileSkip { index } if self.manifest_done && self.current.is_none() => self.on_skip(index),
            TransferMsg::StreamEnd { len, hash } => self.on_stream_end(len, hash),
            TransferMsg::Done if self.current.is_none() && !self.done_pending => self.on_done(),
            _ => Err(proto("message out of order")),
        }
    }

    fn kind(&self) -> OfferKind {
        self.offer.as_ref().map(|o| o.kind).unwrap_or(OfferKind::Files)
    }

    fn on_offer(&mut self, o: Offer) -> Result<()> {
        if o.kind == OfferKind::Text && o.bytes > MAX_TEXT {
            return Err(Error::Protocol(format!(
                "the text is {} bytes, more than the {} MiB limit; send it as a file",
                o.bytes,
                MAX_TEXT >> 20
            )));
        }
        if o.kind == OfferKind::Files && o.files.saturating_add(o.dirs) > self.opts.max_entries as u64 {
            return Err(Error::Protocol(format!(
                "the offer has {} entries, more than the limit of {}",
                o.files.saturating_add(o.dirs),
                self.opts.max_entries
            )));
        }
        let summary = OfferSummary {
            kind: o.kind,
            files: o.files,
            dirs: o.dirs,
            bytes: o.bytes,
            preview: o.preview.iter().map(|p| escape(p)).collect(),
        };
        self.report.kind = Some(o.kind);
        if !self.ui.consent(&summary) {
            self.out.push(&TransferMsg::Refuse)?;
            self.out.finish()?;
            return Err(Error::Refused);
        }
        if o.kind == OfferKind::Files {
            self.dir = Some(OutputDir::open(&self.opts.out_dir, self.opts.policy)?);
        }
        self.offer = Some(o);
        self.out.push(&TransferMsg::Accept)?;
        self.out.flush()
    }

    fn out_dir(&self) -> Result<&OutputDir> {
        self.dir.as_ref().ok_or_else(|| proto("file data in a text transfer"))
    }

    fn on_entry(&mut self, e: Entry) -> Result<()> {
        if self.kind() != OfferKind::Files || e.index != self.digests.len() as u64 {
            return Err(proto("manifest entries out of order"));
        }
        if self.digests.len() >= self.opts.max_entries {
            return Err(Error::Protocol(format!("more than {} entries", self.opts.max_entries)));
        }
        let p = SafePath::parse(&e.path)?;
        self.check_within_offer(&e)?;
        self.collisions.insert(&p, e.kind == EntryKind::Dir)?;
        self.digests.push(digest(&e));
        if e.kind == EntryKind::Dir {
            self.out_dir()?.create_dir(&p)?;
            // Folder times are restored at the end; the list is capped so a
            // hostile manifest of deep folders cannot grow it without bound.
            if self.dir_times.len() < MAX_DIR_TIMES {
                self.dir_times.push((p, e.mtime));
            }
            self.report.dirs += 1;
            return Ok(());
        }
        self.manifest_files += 1;
        match self.out_dir()?.probe_file(&p, e.size)? {
            Probe::Fresh => {}
            Probe::Partial { len, prefix_hash, hasher } => {
                self.out.push(&TransferMsg::Have { index: e.index, len, hash: prefix_hash })?;
                self.local.insert(e.index, Local::Partial(len, Box::new(hasher), Box::new(e.clone())));
            }
            Probe::Complete { hash } => {
                self.out.push(&TransferMsg::Have { index: e.index, len: e.size, hash })?;
                self.local.insert(e.index, Local::Complete);
            }
            // Overwrite or Rename: decided when the file is put in place.
            Probe::Conflict { .. } => {}
        }
        Ok(())
    }

    /// Holds the manifest to what the user consented to: no more files, folders
    /// or bytes than offered, and (when the offer listed every top-level name)
    /// no top-level name that was not shown.
    fn check_within_offer(&mut self, e: &Entry) -> Result<()> {
        let o = self.offer.as_ref().ok_or_else(|| proto("no offer"))?;
        match e.kind {
            EntryKind::File => {
                self.seen.files += 1;
                self.seen.bytes = self.seen.bytes.saturating_add(e.size);
            }
            EntryKind::Dir => self.seen.dirs += 1,
        }
        if self.seen.files > o.files || self.seen.dirs > o.dirs || self.seen.bytes > o.bytes {
            return Err(Error::Hostile { name: escape(&e.path), reason: "the sender's manifest goes beyond the offer you accepted" });
        }
        let top = e.path.split(|&b| b == b'/').next().unwrap_or_default();
        if o.preview.len() < pqdrop_proto::transfer::MAX_PREVIEW && !o.preview.iter().any(|n| n == top) {
            return Err(Error::Hostile { name: escape(&e.path), reason: "not under a name shown in the offer" });
        }
        Ok(())
    }

    /// Checks that a data-phase entry is the next file of the manifest, unchanged.
    fn check_next_file(&mut self, index: u64) -> Result<()> {
        if index as usize >= self.digests.len() || (index as usize) < self.next_file {
            return Err(proto("file data for an entry that is not in the manifest, or twice"));
        }
        self.next_file = index as usize + 1;
        Ok(())
    }

    fn on_file_start(&mut self, e: Entry, offset: u64) -> Result<()> {
        self.check_next_file(e.index)?;
        if e.kind != EntryKind::File || digest(&e) != self.digests[e.index as usize] {
            return Err(proto("a file's header differs from its manifest entry"));
        }
        let p = SafePath::parse(&e.path)?;
        let local = self.local.remove(&e.index);
        let policy = self.opts.policy;
        let resume = match (local, offset) {
            (Some(Local::Partial(len, hasher, _)), o) if o == len && o > 0 => Some((len, *hasher)),
            (_, o) if o > 0 => return Err(proto("the sender resumed from an offset we did not offer")),
            // The existing file differs from the sender's: a conflict, now.
            (Some(Local::Complete), _) if policy == ConflictPolicy::Refuse => return Err(Error::Exists(p.display())),
            _ => None,
        };
        let remaining = e.size.checked_sub(offset).ok_or_else(|| proto("a resume offset beyond the file's size"))?;
        self.report.bytes_resumed += offset;
        self.done += offset;
        let writer = self.out_dir()?.begin_file(&p, e.size, resume)?;
        self.ops.push(Op::Begin(Box::new(writer)));
        self.current = Some(Current { entry: e, policy, remaining });
        Ok(())
    }

    fn on_chunk(&mut self, compressed: bool, data: &[u8]) -> Result<()> {
        if compressed && !matches!(self.kind(), OfferKind::Files) {
            return Err(proto("compressed text"));
        }
        let wire = data.len() as u64;
        let total = self.offer.as_ref().map(|o| o.bytes).unwrap_or(0);
        self.report.bytes_received += wire;
        match self.kind() {
            OfferKind::Files => {
                let cur = self.current.as_mut().ok_or_else(|| proto("data outside a file"))?;
                // The chunk's size is known before anything is decompressed or
                // queued: a zstd chunk declares it in its frame header.
                let len = chunk_data_len(compressed, data).map_err(|e| match e {
                    pqdrop_proto::Error::TooLarge { .. } => proto("a compressed chunk declares more than the 1 MiB a chunk may hold"),
                    _ => proto("a compressed chunk is not a zstd frame that declares its content size"),
                })?;
                if len > cur.remaining {
                    return Err(Error::Protocol(format!(
                        "the sender sent more bytes than announced for {} ({} bytes)",
                        escape(&cur.entry.path),
                        cur.entry.size
                    )));
                }
                cur.remaining -= len;
                let start = (data.as_ptr() as usize).wrapping_sub(self.base);
                let (start, wire_len) = (u32::try_from(start).map_err(|_| proto("chunk offset"))?, data.len() as u32);
                self.ops.push(if compressed {
                    Op::Zstd { start, len: wire_len, size: len as u32 }
                } else {
                    Op::Write { start, len: wire_len }
                });
                self.done += len;
                self.ui.progress(self.done, total);
            }
            OfferKind::Text => {
                if self.text.len() as u64 + wire > total {
                    return Err(proto("more text than offered"));
                }
                self.stream_hash.update(data);
                self.text.extend_from_slice(data);
            }
            OfferKind::Stream => {
                self.stream_hash.update(data);
                self.stream_len += wire;
                self.ui.output(data)?;
                self.ui.progress(self.stream_len, 0);
            }
        }
        Ok(())
    }

    fn on_file_end(&mut self, hash: [u8; 32]) -> Result<()> {
        let cur = self.current.take().ok_or_else(|| proto("file end outside a file"))?;
        // A short file (remaining > 0) fails the disk stage's length check,
        // which also removes its temporary file.
        let mtime = i64::try_from(cur.entry.mtime).unwrap_or(i64::MAX);
        self.ops.push(Op::Finish(Box::new(Finish { hash, executable: cur.entry.executable, mtime, policy: cur.policy })));
        self.report.files += 1;
        Ok(())
    }

    fn on_skip(&mut self, index: u64) -> Result<()> {
        self.check_next_file(index)?;
        match self.local.remove(&index) {
            Some(Local::Complete) => {}
            // The partial already holds every byte (the connection dropped
            // just before the file's end): the sender verified our hash of it
            // against its own, so verify and put it in place.
            Some(Local::Partial(len, hasher, entry)) if len == entry.size => {
                let p = SafePath::parse(&entry.path)?;
                let hash = *hasher.finalize().as_bytes();
                let writer = self.out_dir()?.begin_file(&p, entry.size, Some((len, *hasher)))?;
                let mtime = i64::try_from(entry.mtime).unwrap_or(i64::MAX);
                self.ops.push(Op::Begin(Box::new(writer)));
                self.ops.push(Op::Finish(Box::new(Finish { hash, executable: entry.executable, mtime, policy: self.opts.policy })));
                self.report.bytes_resumed += len;
            }
            _ => return Err(proto("the sender skipped a file we do not have")),
        }
        self.report.files += 1;
        Ok(())
    }

    fn on_stream_end(&mut self, len: u64, hash: [u8; 32]) -> Result<()> {
        if self.kind() == OfferKind::Files {
            return Err(proto("a stream end in a file transfer"));
        }
        let ours = *self.stream_hash.finalize().as_bytes();
        let got = if self.kind() == OfferKind::Text { self.text.len() as u64 } else { self.stream_len };
        if got != len || !ct_eq(&ours, &hash) {
            return Err(Error::Integrity(if self.kind() == OfferKind::Text { "the text".into() } else { "the stream".into() }));
        }
        if self.stream_ended {
            return Err(proto("the stream ended twice"));
        }
        self.stream_ended = true;
        self.report.bytes_received = got;
        if self.kind() == OfferKind::Text {
            let text = std::mem::take(&mut self.text);
            self.ui.output(&text)?;
        }
        Ok(())
    }

    fn on_done(&mut self) -> Result<()> {
        let complete = match self.kind() {
            OfferKind::Files => self.manifest_done && self.report.files == self.manifest_files,
            _ => self.stream_ended,
        };
        if !complete {
            return Err(proto("the sender finished without sending everything it offered"));
        }
        self.done_pending = true;
        Ok(())
    }

    /// After `Done`: waits for the disk stage to verify and place every file,
    /// restores folder times, then acknowledges and closes our direction.
    fn acknowledge(&mut self) -> Result<()> {
        self.disk.sync()?;
        // Deepest first, so setting a folder's time is not undone by writing inside it.
        if let Some(out) = &self.dir {
            for (p, mtime) in self.dir_times.iter().rev() {
                if let Err(e) = out.set_dir_times(p, i64::try_from(*mtime).unwrap_or(i64::MAX)) {
                    tracing::debug!(error = %e, "could not set a folder's time");
                }
            }
        }
        self.out.push(&TransferMsg::DoneAck)?;
        self.out.finish()?;
        self.finished = true;
        Ok(())
    }
}
