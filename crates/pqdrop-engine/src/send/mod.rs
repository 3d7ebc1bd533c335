//! The sending side of a transfer (the accepter of the handshake).
//!
//! Pipeline: a blocking logic thread reads files, hashes them (BLAKE3, while
//! streaming), packs and seals records, and hands frames to an async writer
//! task; an async reader task decrypts the receiver's small control messages.

pub mod source;

use std::io::Read;
use std::sync::Arc;

use pqdrop_proto::code::Code;
use pqdrop_proto::handshake::Role;
use pqdrop_proto::identity::{Identity, PublicIdentity};
use pqdrop_proto::record::RecordOpener;
use pqdrop_proto::transfer::{Offer, OfferKind, Sender, SenderConfig, SenderEvent, TransferMsg, MAX_CHUNK};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;

use crate::conn::{self, local_capabilities, open_frame, read_frame, IdleWatch, Outbound};
use crate::source::{walk, Source};
use crate::{Error, Result};
use pqdrop_proto::liveness::Side;

/// What to send.
#[derive(Debug, Clone)]
pub enum Payload {
    /// Files and folders.
    Paths(Vec<std::path::PathBuf>),
    /// A text message.
    Text(String),
    /// Standard input, streamed without knowing its size.
    Stdin,
}

/// When to compress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zstd {
    /// Per file, only if a sample compresses well.
    Auto,
    /// Always (if the receiver supports it).
    On,
    /// Never.
    Off,
}

/// Sender options.
#[derive(Debug, Clone)]
pub struct SendOptions {
    /// Compression mode.
    pub zstd: Zstd,
    /// Ask for the AES-GCM + ChaCha20-Poly1305 cascade.
    pub cascade: bool,
    /// How long the receiver may send nothing before we give up (with a
    /// receiver that sends KeepAlive; otherwise no limit).
    pub idle_timeout: std::time::Duration,
    /// This side's identity, shown to the receiver inside the session with a
    /// proof that it is ours (when it understands Identity messages), so it
    /// can save us as a contact.
    pub identity: Option<Arc<Identity>>,
}

impl Default for SendOptions {
    fn default() -> Self {
        Self { zstd: Zstd::Auto, cascade: false, idle_timeout: conn::IDLE_TIMEOUT, identity: None }
    }
}

/// Callbacks to the user interface. Called from the logic thread.
pub trait SendUi: Send + Sync {
    /// The handshake succeeded; the transfer starts.
    fn connected(&self, offer: &Offer);
    /// Bytes of file data handled so far.
    fn progress(&self, done: u64, total: u64);
    /// File `shown` (its path in the transfer, escaped) starts; the progress
    /// that follows is its data.
    fn file(&self, shown: &str) {
        let _ = shown;
    }
    /// Something was skipped.
    fn warn(&self, msg: &str);
}

/// Outcome of a successful send.
#[derive(Debug, Clone, Default)]
pub struct SendReport {
    /// Files sent (including those skipped as already complete).
    pub files: u64,
    /// Bytes of file data actually put on the wire (before compression).
    pub bytes_sent: u64,
    /// Bytes the receiver already had (resume).
    pub bytes_skipped: u64,
    /// The receiver's public identity, if it told it.
    pub peer: Option<PublicIdentity>,
}

/// What the reader task hands the logic thread.
#[derive(Debug)]
enum Incoming {
    /// The plaintext of one record from the receiver.
    Record(Vec<u8>),
    /// The receiver's direction ended: cleanly after its final record
    /// (`None`), or with this error.
    Closed(Option<Error>),
}

/// Records queued from the receiver, at most. The receiver only ever sends
/// small control messages; a receiver that sends more just waits.
const INCOMING: usize = 8;

/// Reads and decrypts the receiver's records. The machine on the logic thread
/// judges what they say.
async fn reader_task<R: AsyncRead + Unpin>(mut r: R, mut opener: RecordOpener, tx: mpsc::Sender<Incoming>, mut watch: IdleWatch) {
    let mut body = Vec::new();
    let end = loop {
        // With KeepAlive agreed the receiver is never silent for long, even
        // while its user decides; without it, a dead peer is detected by TCP
        // keepalive, or by the relay.
        let mut frame = match read_frame(&mut r, std::mem::take(&mut body), &mut watch).await {
            Ok(Some(f)) => f,
            Ok(None) if opener.is_finished() => break None,
            Ok(None) => break Some(Error::PeerGone("the receiver closed the connection".into())),
            Err(e) => break Some(e),
        };
        let pt = match open_frame(&mut opener, &mut frame) {
            Ok(pt) => pt.to_vec(),
            Err(e) => break Some(e),
        };
        if tx.send(Incoming::Record(pt)).await.is_err() {
            return;
        }
        watch.resumed();
        body = frame.body;
        if opener.is_finished() {
            break None;
        }
    };
    let _ = tx.send(Incoming::Closed(end)).await;
}

/// A payload checked and walked, ready to send.
#[derive(Debug)]
pub struct Prepared {
    payload: Payload,
    source: Option<Source>,
}

impl Prepared {
    /// Warnings from the walk (skipped symlinks and special files).
    pub fn warnings(&self) -> &[String] {
        self.source.as_ref().map(|s| &s.warnings[..]).unwrap_or_default()
    }
}

/// Walks the paths (stat only; nothing is hashed yet). Call it before waiting
/// for a peer, so that a missing file fails at once.
pub fn prepare(payload: Payload) -> Result<Prepared> {
    let source = match &payload {
        Payload::Paths(p) => Some(walk(p)?),
        _ => None,
    };
    Ok(Prepared { payload, source })
}

/// Sends a prepared payload over `stream` (already connected to the receiver,
/// directly or through a relay): runs the handshake as the accepter, then the
/// transfer.
pub async fn send<S>(mut stream: S, code: &Code, prepared: Prepared, opts: SendOptions, ui: Arc<dyn SendUi>) -> Result<SendReport>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (session, leftover) = conn::handshake(&mut stream, Role::Accepter, code, local_capabilities(opts.cascade)).await?;
    send_over(stream, session, leftover, prepared, opts, ui).await
}

/// The transfer of `prepared` over an established `session` on `stream`
/// (`leftover`: bytes already read past the handshake), however the
/// session was made: with a code, or between contacts.
pub(crate) async fn send_over<S>(
    stream: S,
    session: pqdrop_proto::handshake::Established,
    leftover: Vec<u8>,
    prepared: Prepared,
    opts: SendOptions,
    ui: Arc<dyn SendUi>,
) -> Result<SendReport>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (rd, wr) = tokio::io::split(stream);
    // Buffered, so the small frame-header reads do not each cost a syscall.
    let rd = tokio::io::BufReader::with_capacity(64 * 1024, std::io::Cursor::new(leftover).chain_reader(rd));
    // The receiver's silence is bounded only when it sends KeepAlive: an
    // older receiver is silent while its user decides.
    let watch = IdleWatch::new(&session.agreed, Side::Sender, opts.idle_timeout);
    let (ctl_tx, ctl_rx) = mpsc::channel(INCOMING);
    let config = SenderConfig::session(&session);
    let reader = tokio::spawn(reader_task(rd, session.opener, ctl_tx, watch));
    let r = drive(wr, Session { agreed: session.agreed, config, sealer: session.sealer }, ctl_rx, prepared, opts, ui).await;
    reader.abort();
    r
}

/// Writes `prepared` as the records of a sealed file (PROTOCOL.md §13.5)
/// to `w`, after its header, which the caller wrote: the same machine and
/// file pipeline as a live transfer, in constant memory. The receiver's
/// answers are the ones every receiver gives (Accept, Ready, DoneAck).
pub async fn send_sealed<W>(
    w: W,
    sealer: pqdrop_proto::record::RecordSealer,
    prepared: Prepared,
    opts: SendOptions,
    ui: Arc<dyn SendUi>,
) -> Result<SendReport>
where
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (ctl_tx, ctl_rx) = mpsc::channel(INCOMING);
    for m in [TransferMsg::Accept, TransferMsg::Ready, TransferMsg::DoneAck] {
        let mut pt = Vec::new();
        m.encode(&mut pt);
        ctl_tx.try_send(Incoming::Record(pt)).map_err(|_| Error::Bug("the sealed file's answers do not fit".into()))?;
    }
    drop(ctl_tx);
    let opts = SendOptions { identity: None, ..opts };
    let config = SenderConfig::agreed(&pqdrop_proto::sealed::AGREED);
    drive(w, Session { agreed: pqdrop_proto::sealed::AGREED, config, sealer }, ctl_rx, prepared, opts, ui).await
}

/// What the transfer runs under: the agreement, the machine's settings and
/// the sending direction of the record layer.
struct Session {
    agreed: pqdrop_proto::msg::Agreed,
    config: SenderConfig,
    sealer: pqdrop_proto::record::RecordSealer,
}

/// The transfer after the handshake: records out to `wr`, the receiver's
/// records in from `ctl`.
async fn drive<W>(
    wr: W,
    session: Session,
    ctl_rx: mpsc::Receiver<Incoming>,
    prepared: Prepared,
    opts: SendOptions,
    ui: Arc<dyn SendUi>,
) -> Result<SendReport>
where
    W: AsyncWrite + Unpin + Send + 'static,
{
    let Prepared { payload, source } = prepared;
    let Session { agreed, config, sealer } = session;
    let zstd_ok = agreed.zstd;
    let (out, writer) = Outbound::start(wr, sealer, &agreed, opts.idle_timeout);
    let logic = tokio::task::spawn_blocking(move || {
        let offer = match (&payload, &source) {
            (_, Some(s)) => Offer { kind: OfferKind::Files, files: s.files, dirs: s.dirs, bytes: s.bytes, preview: s.preview.clone() },
            (Payload::Text(t), _) => Offer { kind: OfferKind::Text, files: 0, dirs: 0, bytes: t.len() as u64, preview: Vec::new() },
            _ => Offer { kind: OfferKind::Stream, files: 0, dirs: 0, bytes: 0, preview: Vec::new() },
        };
        let mut s = SenderLogic {
            m: Sender::sharing(offer, config, opts.identity.as_deref()),
            out,
            ctl: ctl_rx,
            record: None,
            tx: Vec::new(),
            ui,
            zstd: if zstd_ok { opts.zstd } else { Zstd::Off },
            report: SendReport::default(),
        };
        let r = s.run(payload, source).map_err(|e| s.explain(e).stopped_by("receiver"));
        if let Err(e) = &r {
            if !matches!(e, Error::PeerGone(_) | Error::Refused) {
                let (code, reason) = conn::abort_reason(e);
                s.m.abort(code, &reason);
                let _ = s.drain();
                let _ = s.out.finish();
            }
        }
        drop(s.out);
        r.map(|()| s.report)
    });
    let result = logic.await.map_err(|e| Error::Bug(format!("the sender thread failed: {e}").into()))?;
    let w = writer.await.map_err(|e| Error::Bug(format!("the writer task failed: {e}").into()))?;
    let report = result?;
    w?;
    Ok(report)
}

/// Reaches the receiver over `route` (see [`crate::transport::rendezvous`])
/// and sends `prepared` to it.
///
/// With `allocate`, a relay numbers the room: `code`'s words are kept and its
/// nameplate is replaced by the relay's (a relay too old to allocate gets
/// `code`'s own). `on_ready` is called once, before the transfer, with the
/// code to give the receiver and what the connection waits for; through a
/// relay that is after the room is ours, so a refused `--code` ("room
/// taken") is reported before any code is shown.
pub async fn send_to(
    route: &crate::transport::Route,
    code: &Code,
    request: crate::transport::RoomRequest,
    prepared: Prepared,
    opts: SendOptions,
    ui: Arc<dyn SendUi>,
    on_ready: impl FnOnce(&Code, crate::transport::Waiting),
) -> Result<SendReport> {
    let (stream, code) = rendezvous_as_accepter(route, code, request, on_ready).await?;
    send(stream, &code, prepared, opts, ui).await
}

/// The accepter's side of the rendezvous (the side that made the code):
/// the stream to the other side and the code as the relay numbered it.
/// `on_ready` as for [`send_to`].
pub(crate) async fn rendezvous_as_accepter(
    route: &crate::transport::Route,
    code: &Code,
    request: crate::transport::RoomRequest,
    on_ready: impl FnOnce(&Code, crate::transport::Waiting),
) -> Result<(tokio::net::TcpStream, Code)> {
    let nameplate = *code.nameplate();
    let mut on_ready = Some(on_ready);
    let mut final_code = None;
    let (stream, np) = crate::transport::rendezvous(route, nameplate, request, crate::transport::Side::Sender, |np, w| {
        let c = renumbered(code, np);
        if let Some(f) = on_ready.take() {
            f(&c, w);
        }
        final_code = Some(c);
    })
    .await?;
    let code = match final_code {
        Some(c) => c,
        None => {
            // Paired at once (the receiver was already waiting): no "waiting".
            let c = renumbered(code, np);
            if let Some(f) = on_ready.take() {
                f(&c, crate::transport::Waiting::Relay);
            }
            c
        }
    };
    Ok((stream, code))
}

/// `code` under nameplate `np` (as the relay gave it).
fn renumbered(code: &Code, np: pqdrop_proto::code::Nameplate) -> Code {
    if np == *code.nameplate() {
        code.clone()
    } else {
        code.with_nameplate(np)
    }
}

/// Extension to chain a cursor of already-read bytes in front of a reader.
trait ChainReader: Sized {
    fn chain_reader<R: AsyncRead>(self, r: R) -> tokio::io::Chain<Self, R>;
}
impl ChainReader for std::io::Cursor<Vec<u8>> {
    fn chain_reader<R: AsyncRead>(self, r: R) -> tokio::io::Chain<Self, R> {
        tokio::io::AsyncReadExt::chain(self, r)
    }
}

/// Size of the file-data chunks the sender reads (two fill a record).
const CHUNK: usize = 256 * 1024;

struct SenderLogic {
    /// The protocol machine: every rule about what may be sent and answered.
    m: Sender,
    out: Outbound,
    ctl: mpsc::Receiver<Incoming>,
    /// The receiver's record being read by the machine.
    record: Option<Vec<u8>>,
    /// Encoded messages from the machine, on their way into records.
    tx: Vec<u8>,
    ui: Arc<dyn SendUi>,
    zstd: Zstd,
    report: SendReport,
}

impl SenderLogic {
    /// Moves the machine's messages into records (in call order).
    fn drain(&mut self) -> Result<()> {
        if self.m.poll_transmit(&mut self.tx) {
            let r = self.out.push_encoded(&self.tx);
            self.tx.clear();
            r?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.drain()?;
        self.out.flush()
    }

    /// The next thing the receiver said (waits for it).
    fn event(&mut self) -> Result<SenderEvent> {
        loop {
            if let Some(rec) = &self.record {
                if let Some(ev) = self.m.poll_event(rec)? {
                    return Ok(ev);
                }
                self.record = None;
            }
            match self.ctl.blocking_recv() {
                Some(Incoming::Record(r)) => {
                    self.m.start_record();
                    self.record = Some(r);
                }
                Some(Incoming::Closed(e)) => return Err(e.unwrap_or_else(|| Error::PeerGone("the receiver closed the connection".into()))),
                None => return Err(Error::PeerGone("the connection closed".into())),
            }
        }
    }

    /// When the connection failed under us, the receiver has usually said why
    /// (an Abort) just before closing: prefer that to "the connection closed".
    fn explain(&mut self, e: Error) -> Error {
        if !matches!(e, Error::PeerGone(_)) {
            return e;
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        while std::time::Instant::now() < deadline {
            match self.ctl.try_recv() {
                Ok(Incoming::Record(r)) => {
                    self.m.start_record();
                    loop {
                        match self.m.poll_event(&r) {
                            Ok(Some(_)) => {}
                            Ok(None) => break,
                            Err(stopped @ pqdrop_proto::Error::PeerStopped { .. }) => return Error::from(stopped),
                            Err(_) => return e,
                        }
                    }
                }
                Ok(Incoming::Closed(Some(err))) if !matches!(err, Error::PeerGone(_)) => return err,
                Ok(Incoming::Closed(_)) | Err(mpsc::error::TryRecvError::Disconnected) => return e,
                Err(mpsc::error::TryRecvError::Empty) => std::thread::sleep(std::time::Duration::from_millis(10)),
            }
        }
        e
    }

    fn run(&mut self, payload: Payload, source: Option<Source>) -> Result<()> {
        let offer = self.m.offer().clone();
        self.ui.connected(&offer);
        self.flush()?;
        let mut answer = self.event()?;
        if let SenderEvent::PeerIdentity(id) = answer {
            self.report.peer = Some(id);
            answer = self.event()?;
        }
        match answer {
            SenderEvent::Accepted => {}
            SenderEvent::Refused => {
                self.drain()?;
                self.out.finish()?;
                return Err(Error::Refused);
            }
            _ => return Err(Error::PeerViolation("expected the receiver's answer to the offer".into())),
        }
        match (payload, source) {
            (_, Some(src)) => {
                self.send_files(&src, offer.bytes)?;
                self.m.done()?;
            }
            (Payload::Text(t), _) => self.send_stream(&mut t.as_bytes())?,
            _ => self.send_stream(&mut std::io::stdin().lock())?,
        }
        self.flush()?;
        match self.event()? {
            SenderEvent::DoneAck => {}
            _ => return Err(Error::PeerViolation("expected the receiver's final acknowledgement".into())),
        }
        self.drain()?;
        self.out.finish()
    }

    fn send_files(&mut self, src: &Source, total: u64) -> Result<()> {
        for i in 0..src.entries.len() {
            self.m.entry(&src.entry(i))?;
            self.drain()?;
        }
        self.m.manifest_end()?;
        self.flush()?;
        // Claims are kept by the machine; wait for Ready.
        while self.event()? != SenderEvent::Ready {}
        let mut done = 0u64;
        let mut scratch = Vec::new();
        let mut zbuf = Vec::new();
        let mut compressor = zstd::bulk::Compressor::new(1).map_err(Error::from)?;
        // Receivers refuse a zstd chunk that does not declare its size (PROTOCOL.md §8).
        compressor.include_contentsize(true).map_err(Error::from)?;
        let mut opener = source::TreeOpener::default();
        for (i, se) in src.entries.iter().enumerate().filter(|(_, e)| e.is_file()) {
            let e = &src.entry(i);
            if self.m.is_skipped(e.index) {
                // The receiver keeps its own file of this name.
                self.report.files += 1;
                self.report.bytes_skipped += e.size;
                done += e.size;
                self.ui.progress(done, total);
                continue;
            }
            let path = src.path_of(se);
            let mut f = opener.open(src, se)?;
            let meta = f.metadata().map_err(|err| Error::io(&path, err))?;
            if !meta.is_file() || meta.len() != e.size {
                return Err(Error::io(&path, std::io::Error::other("the file changed size while sending; run the command again")));
            }
            let mut hasher = blake3::Hasher::new();
            let mut offset = 0u64;
            let claim = self.m.claim(e.index);
            if let Some((len, claimed)) = claim {
                // Verify the receiver's prefix with our own bytes before skipping them.
                let mut prefix = (&mut f).take(len);
                let n = std::io::copy(&mut prefix, &mut HashWriter(&mut hasher)).map_err(|err| Error::io(&path, err))?;
                let ours: [u8; 32] = *hasher.finalize().as_bytes();
                if n == len && bool::from(subtle::ConstantTimeEq::ct_eq(&ours[..], &claimed[..])) {
                    offset = len;
                } else {
                    hasher = blake3::Hasher::new();
                    std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(0)).map_err(|err| Error::io(&path, err))?;
                }
            }
            self.report.files += 1;
            if offset == e.size && claim.is_some() {
                self.m.file_skip(e.index)?;
                self.drain()?;
                self.report.bytes_skipped += e.size;
                done += e.size;
                self.ui.progress(done, total);
                continue;
            }
            self.report.bytes_skipped += offset;
            done += offset;
            self.ui.file(&pqdrop_proto::transfer::names::escape(&e.path));
            self.m.file_start(e, offset)?;
            self.drain()?;
            // A file sent whole needs no hash when the receiver agreed to
            // trust the record layer's authentication (UNHASHED_FRESH).
            let mut hasher = self.m.hashes().then_some(hasher);
            let mut remaining = e.size - offset;
            let mut compress = match self.zstd {
                Zstd::Off => false,
                Zstd::On => true,
                Zstd::Auto => remaining >= 16 * 1024,
            };
            let mut first = true;
            while remaining > 0 {
                let want = remaining.min(CHUNK as u64) as usize;
                if compress {
                    scratch.resize(want, 0);
                    f.read_exact(&mut scratch).map_err(|err| Error::io(&path, err))?;
                    if let Some(h) = hasher.as_mut() {
                        h.update(&scratch);
                    }
                    zbuf.resize(zstd::zstd_safe::compress_bound(want), 0);
                    let n = compressor.compress_to_buffer(&scratch[..], &mut zbuf[..]).map_err(Error::from)?;
                    if first && self.zstd == Zstd::Auto && n * 10 > want * 9 {
                        // The sample does not compress: send this file raw.
                        compress = false;
                        self.m.chunk(want, false)?;
                        self.out.push(&TransferMsg::Chunk { compressed: false, data: &scratch })?;
                    } else {
                        self.m.chunk(want, true)?;
                        self.out.push(&TransferMsg::Chunk { compressed: true, data: &zbuf[..n] })?;
                    }
                } else {
                    self.m.chunk(want, false)?;
                    self.push_raw_chunk(&mut f, want, hasher.as_mut(), &path)?;
                }
                first = false;
                remaining -= want as u64;
                done += want as u64;
                self.report.bytes_sent += want as u64;
                self.ui.progress(done, total);
            }
            self.m.file_end(hasher.map(|h| *h.finalize().as_bytes()))?;
            self.drain()?;
        }
        Ok(())
    }

    /// Reads `want` bytes of file data straight into the record buffer, behind a
    /// chunk header: no intermediate copy.
    fn push_raw_chunk(
        &mut self,
        f: &mut std::fs::File,
        want: usize,
        hasher: Option<&mut blake3::Hasher>,
        path: &std::path::Path,
    ) -> Result<()> {
        debug_assert!(want <= MAX_CHUNK);
        let slot = self.out.chunk_slot(want)?;
        f.read_exact(slot).map_err(|err| Error::io(path, err))?;
        if let Some(h) = hasher {
            h.update(slot);
        }
        self.out.maybe_ship()
    }

    fn send_stream(&mut self, r: &mut dyn Read) -> Result<()> {
        let mut hasher = blake3::Hasher::new();
        let mut buf = vec![0u8; CHUNK];
        let mut total = 0u64;
        loop {
            let n = match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            hasher.update(&buf[..n]);
            total += n as u64;
            self.m.chunk(n, false)?;
            self.out.push(&TransferMsg::Chunk { compressed: false, data: &buf[..n] })?;
            // Stdin may be interactive: do not sit on data.
            self.out.flush()?;
            self.ui.progress(total, 0);
        }
        self.report.bytes_sent = total;
        self.m.stream_end(total, *hasher.finalize().as_bytes())?;
        self.drain()
    }
}

struct HashWriter<'a>(&'a mut blake3::Hasher);
impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.update(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
