//! The receiving side of a transfer as a sans-IO state machine (PROTOCOL.md §8).
//!
//! [`Receiver`] holds every rule a receiver applies to what the sender says:
//! the order of messages, the counts and sizes promised by the offer, the path
//! rules and collisions of [`super::names`], the manifest digests, the resume
//! decisions, the capabilities agreed in the handshake, and the length and
//! BLAKE3 of text and streams. It does no I/O and reads no clock. The caller
//! decrypts a record and hands its plaintext to [`Receiver::poll_event`]
//! until it returns `None`; each call parses at most one message and returns
//! at most one [`Event`], so nothing is queued per message and a record of a
//! million tiny messages costs no memory. File data is reported as a range of
//! the caller's own record buffer (no copy). What the machine needs from the
//! file system (does a partial file exist, and what is its hash) it asks as
//! [`Event::CheckFile`], answered with [`Receiver::file_checked`]. Replies to
//! the sender come out of [`Receiver::poll_transmit`] as encoded message
//! bytes, for the caller to put into records.

use std::collections::HashMap;
use std::ops::Range;

use super::names::{escape, CollisionSet, SafePath};
use super::{chunk_data_len, next_message, Entry, EntryKind, Offer, OfferKind, SessionTranscript, StopCode, TransferMsg, MAX_PREVIEW};
use crate::identity::{Identity, ProofRole, PublicIdentity};
use crate::primitives::ct_eq;
use crate::{Error, Result};

/// Largest text a receiver takes by default (it is held in memory until
/// verified; PROTOCOL.md §8).
pub const MAX_TEXT: u64 = 16 << 20;

/// Limits and agreed capabilities of one receiving session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiverConfig {
    /// Most files plus folders accepted in one offer.
    pub max_entries: usize,
    /// Largest text accepted (it is held in memory until verified).
    pub max_text: u64,
    /// Resume was agreed in the handshake: `Have` claims may be sent.
    pub resume: bool,
    /// zstd was agreed in the handshake: compressed chunks are allowed.
    pub zstd: bool,
    /// Stop codes were agreed: stop with Stop (16) rather than Abort (14).
    pub stop_codes: bool,
    /// Skip was agreed: [`FileState::Keep`] may be answered.
    pub skip: bool,
    /// `UNHASHED_FRESH` was agreed: a file sent from offset 0 ends without a hash.
    pub unhashed_fresh: bool,
    /// `IDENTITY` was agreed: either side may send its public identity.
    pub identity: bool,
    /// The session's transcript hash, which identity proofs sign.
    pub transcript: SessionTranscript,
}

impl ReceiverConfig {
    /// The default limits with what the handshake agreed.
    pub fn agreed(agreed: &crate::msg::Agreed) -> Self {
        ReceiverConfig {
            resume: agreed.resume,
            zstd: agreed.zstd,
            stop_codes: agreed.stop_codes,
            skip: agreed.skip,
            unhashed_fresh: agreed.unhashed_fresh,
            identity: agreed.identity,
            ..ReceiverConfig::default()
        }
    }

    /// The default limits with what the handshake of `session` agreed, and its transcript.
    pub fn session(session: &crate::handshake::Established) -> Self {
        ReceiverConfig { transcript: SessionTranscript(session.transcript_hash), ..Self::agreed(&session.agreed) }
    }
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        ReceiverConfig {
            max_entries: super::names::DEFAULT_MAX_ENTRIES,
            max_text: MAX_TEXT,
            resume: true,
            zstd: true,
            stop_codes: true,
            skip: true,
            unhashed_fresh: false,
            identity: false,
            transcript: SessionTranscript::default(),
        }
    }
}

/// What the caller found on its disk for a file entry, the answer to
/// [`Event::CheckFile`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileState {
    /// Nothing to resume: the whole file will come.
    Fresh,
    /// pqdrop's partial file holds the first `len` bytes, whose BLAKE3 is `hash`.
    Partial {
        /// Bytes held.
        len: u64,
        /// BLAKE3 of those bytes.
        hash: [u8; 32],
    },
    /// The final file exists with the announced size, and this BLAKE3.
    Complete {
        /// BLAKE3 of the existing file.
        hash: [u8; 32],
    },
    /// A file exists there and the user keeps it: the sender is asked not to
    /// send this entry (Skip), and nothing about the file is revealed. Only
    /// when [`ReceiverConfig::skip`] was agreed.
    Keep,
}

/// Something the caller must act on. Ranges index the record plaintext
/// passed to the [`Receiver::poll_event`] call that returned the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The sender's public identity (only with `IDENTITY` agreed, at most
    /// once, before the offer). It came inside the code-authenticated
    /// session, so it is the identity of whoever holds the code.
    PeerIdentity(PublicIdentity),
    /// The offer: show it and ask for consent, then call
    /// [`Receiver::accept`] or [`Receiver::refuse`]. Nothing else arrives
    /// before that.
    Offer(Offer),
    /// A folder of the manifest, validated: create it (parents included).
    Folder {
        /// Where.
        path: SafePath,
        /// Modification time (Unix seconds), to set once its contents are written.
        mtime: u64,
    },
    /// A file of the manifest, validated: look at what exists for it and
    /// answer with [`Receiver::file_checked`] before the next
    /// [`Receiver::poll_event`].
    CheckFile {
        /// Manifest index.
        index: u64,
        /// Where.
        path: SafePath,
        /// Announced size.
        size: u64,
    },
    /// The manifest is complete and every file was checked. `to_come` bytes
    /// of file data will arrive (the offer's total minus what the caller
    /// already holds): check there is room for them, then call
    /// [`Receiver::ready`] (or stop).
    ManifestDone {
        /// Bytes still to come.
        to_come: u64,
    },
    /// Data of this file follows from `offset` (0, or the length of the
    /// partial file the caller reported).
    FileStart {
        /// The manifest entry, exactly as announced.
        entry: Entry,
        /// Where.
        path: SafePath,
        /// First byte that will come.
        offset: u64,
        /// The caller reported a complete file here, and the sender's differs:
        /// it is a conflict now, to resolve by the caller's policy.
        conflict: bool,
    },
    /// Raw file data: append `record[range]` to the current file.
    Data(Range<usize>),
    /// A zstd frame at `record[range]` that declared `size` bytes of content,
    /// already counted against the file: decompress it to exactly that many
    /// bytes and append them.
    Compressed {
        /// The frame.
        range: Range<usize>,
        /// Its declared content size (at most 1 MiB).
        size: u32,
    },
    /// The current file ended. Verify its length (the announced size) and
    /// `hash`, and put it in place; a short or different file is refused.
    /// `hash` is `None` only for a file that started at offset 0 with
    /// `UNHASHED_FRESH` agreed ([`Receiver::hashes`] said so at its start):
    /// the record layer already authenticated every byte.
    FileEnd {
        /// The sender's BLAKE3 of the whole file.
        hash: Option<[u8; 32]>,
        /// The executable bit.
        executable: bool,
        /// Modification time (Unix seconds).
        mtime: u64,
    },
    /// The caller's complete copy of this file was confirmed: nothing to do.
    Skipped {
        /// Manifest index.
        index: u64,
    },
    /// The caller's partial file already holds every byte and the sender
    /// confirmed its hash: verify it and put it in place.
    PartialComplete {
        /// The manifest entry.
        entry: Entry,
        /// Where.
        path: SafePath,
    },
    /// Stream data (stdin of the sender): write `record[range]` out.
    StreamData(Range<usize>),
    /// The whole text, verified (length and BLAKE3).
    Text(Vec<u8>),
    /// The stream ended and was verified (length and BLAKE3).
    StreamEnd,
    /// The sender is done and everything it offered came. Finish writing
    /// (sync, folder times), then call [`Receiver::finish`].
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    ExpectOffer,
    AwaitConsent,
    ExpectEntry,
    /// ManifestEnd came; `Ready` waits for [`Receiver::ready`].
    AwaitReady,
    ExpectFile,
    InFile,
    ExpectStream,
    ExpectDone,
    AwaitFinish,
    Finished,
    Refused,
    Failed,
}

/// A resume claim the caller reported for a file.
#[derive(Debug)]
struct Claim {
    /// Bytes held (the size, for a complete file).
    len: u64,
    /// pqdrop's partial file, rather than a complete final file.
    partial: bool,
    /// The entry, for a partial that turns out complete.
    entry: Entry,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counts {
    files: u64,
    dirs: u64,
    bytes: u64,
}

/// The receiver's transfer machine. See the module documentation.
#[derive(Debug)]
pub struct Receiver {
    config: ReceiverConfig,
    state: State,
    offer: Option<Offer>,
    /// Parse position in the current record plaintext.
    cursor: usize,
    /// Encoded messages for the sender, not yet taken.
    out: Vec<u8>,
    /// After the pending messages, this side's direction ends.
    close: bool,
    collisions: CollisionSet,
    /// `BLAKE3(encoded Entry)[..16]` per manifest entry, so FileStart must repeat it.
    digests: Vec<[u8; 16]>,
    /// The file entry whose [`Event::CheckFile`] is not answered yet.
    awaiting_check: Option<Entry>,
    claims: HashMap<u64, Claim>,
    /// Files the receiver keeps (Skip sent): the sender sends nothing for them.
    skipped: std::collections::HashSet<u64>,
    /// Their announced sizes, which will not come.
    kept_bytes: u64,
    /// What the manifest announced so far.
    seen: Counts,
    manifest_files: u64,
    files_done: u64,
    next_file: u64,
    /// The file being received and the bytes it still has to get.
    /// The file being received: its entry, the bytes still owed, and
    /// whether its FileEnd must carry a hash.
    current: Option<(Entry, u64, bool)>,
    stream_hash: blake3::Hasher,
    stream_len: u64,
    text: Vec<u8>,
    /// Plaintext bytes of file and stream data received (decompressed sizes).
    received: u64,
    /// Bytes the caller already held (resumed).
    resumed: u64,
    /// The sender's Identity came.
    peer_identity: bool,
    /// This side answered the offer or sent its identity.
    answered: bool,
}

fn violation(msg: &str) -> Error {
    Error::Violation(msg.into())
}

/// The 16-byte digest that pins a manifest entry (PROTOCOL.md §8).
fn digest(e: &Entry) -> [u8; 16] {
    let mut b = Vec::with_capacity(64 + e.path.len());
    TransferMsg::Entry(e.clone()).encode(&mut b);
    let mut d = [0u8; 16];
    d.copy_from_slice(&blake3::hash(&b).as_bytes()[..16]);
    d
}

impl Receiver {
    /// A receiver that waits for the sender's offer.
    pub fn new(config: ReceiverConfig) -> Self {
        Receiver {
            config,
            state: State::ExpectOffer,
            offer: None,
            cursor: 0,
            out: Vec::new(),
            close: false,
            collisions: CollisionSet::new(config.max_entries),
            digests: Vec::new(),
            awaiting_check: None,
            claims: HashMap::new(),
            skipped: std::collections::HashSet::new(),
            kept_bytes: 0,
            seen: Counts::default(),
            manifest_files: 0,
            files_done: 0,
            next_file: 0,
            current: None,
            stream_hash: blake3::Hasher::new(),
            stream_len: 0,
            text: Vec::new(),
            received: 0,
            resumed: 0,
            peer_identity: false,
            answered: false,
        }
    }

    /// The offer, once it arrived.
    pub fn offer(&self) -> Option<&Offer> {
        self.offer.as_ref()
    }

    /// Files verified or confirmed so far.
    pub fn files_done(&self) -> u64 {
        self.files_done
    }

    /// Folders in the manifest so far.
    pub fn dirs_seen(&self) -> u64 {
        self.seen.dirs
    }

    /// Plaintext bytes of data received so far (decompressed sizes).
    pub fn bytes_received(&self) -> u64 {
        self.received
    }

    /// Bytes the caller already held from an earlier run.
    pub fn bytes_resumed(&self) -> u64 {
        self.resumed
    }

    /// The transfer completed: `DoneAck` is queued.
    pub fn is_finished(&self) -> bool {
        self.state == State::Finished
    }

    /// The sender is done and waits for [`Receiver::finish`].
    pub fn awaits_finish(&self) -> bool {
        self.state == State::AwaitFinish
    }

    /// After the bytes of [`Receiver::poll_transmit`], this side sends its
    /// final record and closes (after Refuse, Abort or DoneAck).
    pub fn wants_close(&self) -> bool {
        self.close
    }

    /// Moves the encoded messages for the sender into `out` (appending).
    /// Returns whether there were any.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> bool {
        if self.out.is_empty() {
            return false;
        }
        out.append(&mut self.out);
        true
    }

    fn send(&mut self, m: &TransferMsg<'_>) {
        m.encode(&mut self.out);
    }

    /// Tells the sender this side's public identity (an Identity message),
    /// when `IDENTITY` was agreed; without it, nothing is sent. Only before
    /// the offer is answered, and only once.
    pub fn share_identity(&mut self, identity: &Identity) -> Result<()> {
        if self.answered || !matches!(self.state, State::ExpectOffer | State::AwaitConsent) {
            return Err(Error::Misuse("share_identity() after the offer was answered, or twice"));
        }
        self.answered = true;
        if self.config.identity {
            let proof = identity.prove(ProofRole::Receiver, &self.config.transcript.0);
            self.send(&TransferMsg::Identity { public: &identity.public().to_bytes(), proof: &proof });
        }
        Ok(())
    }

    /// Consent given to [`Event::Offer`].
    pub fn accept(&mut self) -> Result<()> {
        if self.state != State::AwaitConsent {
            return Err(Error::Misuse("accept() without an offer waiting"));
        }
        self.answered = true;
        self.send(&TransferMsg::Accept);
        if let Some(o) = self.offer.as_ref().filter(|o| o.kind == OfferKind::Files) {
            // Sized once from the offer's counts (already capped at
            // max_entries), so the tables never hold two copies while
            // growing. A sender that announces more than it sends only costs
            // this bounded reservation.
            let n = usize::try_from(o.files.saturating_add(o.dirs)).unwrap_or(usize::MAX).min(self.config.max_entries);
            self.digests.reserve_exact(n);
            self.collisions.reserve(n.saturating_add(1));
        }
        self.state = match self.offer.as_ref().map(|o| o.kind) {
            Some(OfferKind::Files) => State::ExpectEntry,
            _ => State::ExpectStream,
        };
        Ok(())
    }

    /// Consent refused: `Refuse` is queued and the transfer is over.
    pub fn refuse(&mut self) -> Result<()> {
        self.answer(State::AwaitConsent, "refuse() without an offer waiting", TransferMsg::Refuse, State::Refused)
    }

    /// The caller's answer in state `from`: queues `m` and moves to `to`
    /// (closing this side's direction when `to` ends the transfer).
    fn answer(&mut self, from: State, misuse: &'static str, m: TransferMsg<'_>, to: State) -> Result<()> {
        if self.state != from {
            return Err(Error::Misuse(misuse));
        }
        self.send(&m);
        self.answered = true;
        self.close |= matches!(to, State::Refused | State::Finished);
        self.state = to;
        Ok(())
    }

    /// Stops the transfer for a reason of this side: Stop(code, reason), or
    /// Abort(reason) to a peer without STOP_CODES, is queued.
    pub fn abort(&mut self, code: StopCode, reason: &str) {
        if !self.close {
            self.send(&super::stop_message(self.config.stop_codes, code, reason));
            self.close = true;
        }
        self.state = State::Failed;
    }

    /// The answer to [`Event::CheckFile`] for entry `index`. With resume
    /// agreed, a partial or complete file becomes a `Have` claim.
    pub fn file_checked(&mut self, index: u64, state: FileState) -> Result<()> {
        let entry = match self.awaiting_check.take() {
            Some(e) if e.index == index => e,
            other => {
                self.awaiting_check = other;
                return Err(Error::Misuse("file_checked() for a file that is not waiting"));
            }
        };
        if state == FileState::Keep {
            if !self.config.skip {
                self.awaiting_check = Some(entry);
                return Err(Error::Misuse("FileState::Keep needs the SKIP capability"));
            }
            self.send(&TransferMsg::Skip { index });
            self.skipped.insert(index);
            self.kept_bytes += entry.size;
            self.files_done += 1;
            return Ok(());
        }
        let claim = match state {
            FileState::Keep | FileState::Fresh => None,
            FileState::Partial { len, .. } if len == 0 || len > entry.size => None,
            FileState::Partial { len, hash } => Some((len, hash, true)),
            FileState::Complete { hash } => Some((entry.size, hash, false)),
        };
        if let (true, Some((len, hash, partial))) = (self.config.resume, claim) {
            self.send(&TransferMsg::Have { index, len, hash });
            self.claims.insert(index, Claim { len, partial, entry });
        }
        Ok(())
    }

    /// After [`Event::ManifestDone`]: there is room, send the data (`Ready`).
    pub fn ready(&mut self) -> Result<()> {
        self.answer(State::AwaitReady, "ready() before the manifest ended", TransferMsg::Ready, State::ExpectFile)
    }

    /// After [`Event::Done`], once every file is written, verified and in
    /// place: queues `DoneAck` and closes.
    pub fn finish(&mut self) -> Result<()> {
        self.answer(State::AwaitFinish, "finish() before the sender is done", TransferMsg::DoneAck, State::Finished)
    }

    /// Call before the first [`Receiver::poll_event`] of each new record.
    pub fn start_record(&mut self) {
        self.cursor = 0;
    }

    /// Whether the current file's FileEnd will carry a hash: `false` only
    /// for a file sent from offset 0 with `UNHASHED_FRESH` agreed. Valid
    /// from its [`Event::FileStart`] to its [`Event::FileEnd`].
    pub fn file_hashed(&self) -> bool {
        self.current.as_ref().is_none_or(|c| c.2)
    }

    /// The next event of `record` (the plaintext of the current record),
    /// `None` when the record is used up. An error leaves the machine failed:
    /// the caller sends [`Receiver::abort`] and stops.
    pub fn poll_event(&mut self, record: &[u8]) -> Result<Option<Event>> {
        if self.awaiting_check.is_some() {
            return Err(Error::Misuse("poll_event() before file_checked() answered the last CheckFile"));
        }
        if matches!(self.state, State::Failed | State::Refused | State::Finished) && self.cursor < record.len() {
            return Err(violation("the sender sent more after the transfer ended"));
        }
        let r = self.next_event(record);
        if r.is_err() {
            self.state = State::Failed;
        }
        r
    }

    fn next_event(&mut self, record: &[u8]) -> Result<Option<Event>> {
        while let Some(m) = next_message(record, &mut self.cursor)? {
            if let Some(ev) = self.handle(m, record)? {
                return Ok(Some(ev));
            }
        }
        Ok(None)
    }

    fn handle(&mut self, m: TransferMsg<'_>, record: &[u8]) -> Result<Option<Event>> {
        use State as S;
        match (self.state, m) {
            (_, TransferMsg::Abort { reason }) => Err(Error::PeerStopped { code: None, reason: escape(reason.as_bytes()) }),
            (_, TransferMsg::Stop { code, reason }) => Err(Error::PeerStopped { code: Some(code), reason: escape(reason.as_bytes()) }),
            // The peer's engine sends it when idle; it only proves the peer is there.
            (_, TransferMsg::KeepAlive) => Ok(None),
            (S::ExpectOffer, TransferMsg::Identity { public, proof }) if self.config.identity && !self.peer_identity => {
                self.peer_identity = true;
                let id = PublicIdentity::from_bytes(public).map_err(|_| violation("the sender's public identity is not valid"))?;
                id.verify_proof(ProofRole::Sender, &self.config.transcript.0, proof)
                    .map_err(|_| violation("the sender showed an identity it cannot prove is its own"))?;
                Ok(Some(Event::PeerIdentity(id)))
            }
            (S::ExpectOffer, TransferMsg::Offer(o)) => self.on_offer(o).map(Some),
            (S::ExpectOffer, _) => Err(violation("expected an offer")),
            (S::ExpectEntry, TransferMsg::Entry(e)) => self.on_entry(e).map(Some),
            (S::ExpectEntry, TransferMsg::ManifestEnd) => {
                let o = self.offer.as_ref().ok_or_else(|| violation("no offer"))?;
                if self.seen != (Counts { files: o.files, dirs: o.dirs, bytes: o.bytes }) {
                    return Err(violation("the manifest does not match the offer you accepted"));
                }
                let held: u64 = self.claims.values().map(|c| c.len).sum::<u64>() + self.kept_bytes;
                self.state = S::AwaitReady;
                Ok(Some(Event::ManifestDone { to_come: self.seen.bytes.saturating_sub(held) }))
            }
            (S::ExpectFile, TransferMsg::FileStart { entry, offset }) => self.on_file_start(entry, offset).map(Some),
            (S::ExpectFile, TransferMsg::FileSkip { index }) => self.on_skip(index).map(Some),
            (S::ExpectFile, TransferMsg::Done) => {
                if self.files_done != self.manifest_files {
                    return Err(violation("the sender finished without sending everything it offered"));
                }
                self.state = S::AwaitFinish;
                Ok(Some(Event::Done))
            }
            (S::InFile | S::ExpectStream, TransferMsg::Chunk { compressed, data }) => self.on_chunk(compressed, data, record),
            (S::InFile, TransferMsg::FileEnd { hash }) => {
                // A file that ended short fails the caller's check of its
                // length, like one whose hash differs.
                let (entry, _remaining, hashed) = self.current.take().ok_or_else(|| violation("file end outside a file"))?;
                if hashed && hash.is_none() {
                    return Err(violation("a resumed file, or one without UNHASHED_FRESH agreed, ended without its hash"));
                }
                if !hashed && hash.is_some() {
                    return Err(violation("a file sent whole under UNHASHED_FRESH ended with a hash"));
                }
                self.files_done += 1;
                self.state = S::ExpectFile;
                Ok(Some(Event::FileEnd { hash, executable: entry.executable, mtime: entry.mtime }))
            }
            (S::ExpectStream, TransferMsg::StreamEnd { len, hash }) => self.on_stream_end(len, hash).map(Some),
            (S::ExpectDone, TransferMsg::Done) => {
                self.state = S::AwaitFinish;
                Ok(Some(Event::Done))
            }
            (S::ExpectStream, TransferMsg::Done) => Err(violation("the sender finished without sending everything it offered")),
            (S::ExpectFile, TransferMsg::Chunk { .. }) => Err(violation("data outside a file")),
            (S::AwaitConsent, _) => Err(violation("the sender went on before the offer was answered")),
            (S::AwaitReady, _) => Err(violation("the sender sent data before the receiver was ready")),
            (S::ExpectEntry, TransferMsg::Chunk { .. } | TransferMsg::FileStart { .. }) => {
                Err(violation("file data before the manifest ended"))
            }
            _ => Err(violation("message out of order")),
        }
    }

    fn kind(&self) -> OfferKind {
        self.offer.as_ref().map_or(OfferKind::Files, |o| o.kind)
    }

    fn on_offer(&mut self, o: Offer) -> Result<Event> {
        if o.kind == OfferKind::Text && o.bytes > self.config.max_text {
            return Err(Error::Limit(format!(
                "the text is {} bytes, more than the {} MiB limit; send it as a file",
                o.bytes,
                self.config.max_text >> 20
            )));
        }
        let entries = o.files.saturating_add(o.dirs);
        if o.kind == OfferKind::Files && entries > self.config.max_entries as u64 {
            return Err(Error::Limit(format!("the offer has {entries} entries, more than the limit of {}", self.config.max_entries)));
        }
        if o.kind != OfferKind::Files && (o.files, o.dirs) != (0, 0) || o.kind == OfferKind::Stream && o.bytes != 0 {
            return Err(violation("a text or stream offer counts files or folders"));
        }
        self.offer = Some(o.clone());
        self.state = State::AwaitConsent;
        Ok(Event::Offer(o))
    }

    fn on_entry(&mut self, e: Entry) -> Result<Event> {
        if e.index != self.digests.len() as u64 {
            return Err(violation("manifest entries out of order"));
        }
        if self.digests.len() >= self.config.max_entries {
            return Err(Error::Limit(format!("more than {} entries", self.config.max_entries)));
        }
        let path = SafePath::parse(&e.path)?;
        self.check_within_offer(&e)?;
        self.collisions.insert(&path, e.kind == EntryKind::Dir)?;
        self.digests.push(digest(&e));
        if e.kind == EntryKind::Dir {
            return Ok(Event::Folder { path, mtime: e.mtime });
        }
        self.manifest_files += 1;
        let ev = Event::CheckFile { index: e.index, path, size: e.size };
        self.awaiting_check = Some(e);
        Ok(ev)
    }

    /// Holds the manifest to what the user consented to: no more files,
    /// folders or bytes than offered, and (when the offer listed every
    /// top-level name) no top-level name that was not shown.
    fn check_within_offer(&mut self, e: &Entry) -> Result<()> {
        let o = self.offer.as_ref().ok_or_else(|| violation("no offer"))?;
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
        if o.preview.len() < MAX_PREVIEW && !o.preview.iter().any(|n| n == top) {
            return Err(Error::Hostile { name: escape(&e.path), reason: "not under a name shown in the offer" });
        }
        Ok(())
    }

    /// Checks that a data-phase index is the next file of the manifest.
    fn take_next_file(&mut self, index: u64) -> Result<()> {
        if self.skipped.contains(&index) {
            return Err(violation("the sender sent a file the receiver asked it to skip"));
        }
        if index >= self.digests.len() as u64 || index < self.next_file {
            return Err(violation("file data for an entry that is not in the manifest, or twice"));
        }
        self.next_file = index + 1;
        Ok(())
    }

    fn on_file_start(&mut self, entry: Entry, offset: u64) -> Result<Event> {
        self.take_next_file(entry.index)?;
        let pinned = usize::try_from(entry.index).ok().and_then(|i| self.digests.get(i));
        if entry.kind != EntryKind::File || pinned != Some(&digest(&entry)) {
            return Err(violation("a file's header differs from its manifest entry"));
        }
        let path = SafePath::parse(&entry.path)?;
        let claim = self.claims.remove(&entry.index);
        let conflict = match (&claim, offset) {
            (Some(c), o) if c.partial && o == c.len && o > 0 => false,
            (_, o) if o > 0 => return Err(violation("the sender resumed from an offset we did not offer")),
            (Some(c), _) => !c.partial,
            (None, _) => false,
        };
        let remaining = entry.size - offset;
        self.resumed += offset;
        self.current = Some((entry.clone(), remaining, !(self.config.unhashed_fresh && offset == 0)));
        self.state = State::InFile;
        Ok(Event::FileStart { entry, path, offset, conflict })
    }

    fn on_skip(&mut self, index: u64) -> Result<Event> {
        self.take_next_file(index)?;
        let ev = match self.claims.remove(&index) {
            Some(c) if !c.partial => {
                self.resumed += c.len;
                Event::Skipped { index }
            }
            // The partial already holds every byte (the connection dropped
            // just before the file's end) and the sender confirmed its hash.
            Some(c) if c.len == c.entry.size => {
                self.resumed += c.len;
                let path = SafePath::parse(&c.entry.path)?;
                Event::PartialComplete { entry: c.entry, path }
            }
            _ => return Err(violation("the sender skipped a file we do not have")),
        };
        self.files_done += 1;
        Ok(ev)
    }

    fn on_chunk(&mut self, compressed: bool, data: &[u8], record: &[u8]) -> Result<Option<Event>> {
        let start = (data.as_ptr() as usize).wrapping_sub(record.as_ptr() as usize);
        let range = start..start + data.len();
        if record.get(range.clone()).map(<[u8]>::as_ptr) != Some(data.as_ptr()) {
            return Err(Error::Misuse("poll_event() was given a different record"));
        }
        if compressed && (self.kind() != OfferKind::Files || !self.config.zstd) {
            return Err(violation("a compressed chunk, but zstd was not agreed for this data"));
        }
        match self.kind() {
            OfferKind::Files => {
                let (entry, remaining, _) = self.current.as_mut().ok_or_else(|| violation("data outside a file"))?;
                // Counted before anything is decompressed or queued: a zstd
                // chunk declares its size in its frame header.
                let len = chunk_data_len(compressed, data).map_err(|e| match e {
                    Error::TooLarge { .. } => violation("a compressed chunk declares more than the 1 MiB a chunk may hold"),
                    _ => violation("a compressed chunk is not a zstd frame that declares its content size"),
                })?;
                if len > *remaining {
                    return Err(Error::Violation(format!(
                        "the sender sent more bytes than announced for {} ({} bytes)",
                        escape(&entry.path),
                        entry.size
                    )));
                }
                *remaining -= len;
                self.received += len;
                Ok(Some(if compressed { Event::Compressed { range, size: len as u32 } } else { Event::Data(range) }))
            }
            OfferKind::Text => {
                let total = self.offer.as_ref().map_or(0, |o| o.bytes);
                if self.text.len() as u64 + data.len() as u64 > total {
                    return Err(violation("more text than offered"));
                }
                self.stream_hash.update(data);
                self.text.extend_from_slice(data);
                self.received += data.len() as u64;
                Ok(None)
            }
            OfferKind::Stream => {
                self.stream_hash.update(data);
                self.stream_len += data.len() as u64;
                self.received += data.len() as u64;
                Ok(Some(Event::StreamData(range)))
            }
        }
    }

    fn on_stream_end(&mut self, len: u64, hash: [u8; 32]) -> Result<Event> {
        let text = self.kind() == OfferKind::Text;
        let ours = *self.stream_hash.finalize().as_bytes();
        let got = if text { self.text.len() as u64 } else { self.stream_len };
        if got != len || !ct_eq(&ours, &hash) {
            return Err(Error::Integrity(if text { "the text" } else { "the stream" }));
        }
        self.state = State::ExpectDone;
        Ok(if text { Event::Text(std::mem::take(&mut self.text)) } else { Event::StreamEnd })
    }
}
