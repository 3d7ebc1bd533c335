//! The sending side of a transfer as a sans-IO state machine (PROTOCOL.md §8).
//!
//! [`Sender`] holds the sender's rules: what may be sent when, that the
//! manifest stays within the offer, that file data never passes an entry's
//! announced size, that resume offsets and skips follow only the receiver's
//! claims, and what the receiver may answer at each point. The caller owns
//! the files: it reads them, hashes them, checks the receiver's claims
//! against its own bytes, and writes chunk payloads straight into its record
//! buffer after [`Sender::chunk`] has counted them. Every other message the
//! machine encodes itself; take them with [`Sender::poll_transmit`] after
//! each call, before writing a chunk, so that the order on the wire is the
//! order of the calls.

use std::collections::HashMap;

use super::names::escape;
use super::{next_message, Entry, EntryKind, Offer, OfferKind, SessionTranscript, StopCode, TransferMsg, MAX_CHUNK};
use crate::identity::{Identity, ProofRole, PublicIdentity};
use crate::{Error, Result};

/// Capabilities agreed in the handshake that change what the sender may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SenderConfig {
    /// Resume was agreed: the receiver may claim partial files.
    pub resume: bool,
    /// zstd was agreed: chunks may be compressed.
    pub zstd: bool,
    /// Stop codes were agreed: stop with Stop (16) rather than Abort (14).
    pub stop_codes: bool,
    /// Skip was agreed: the receiver may ask to skip entries.
    pub skip: bool,
    /// `UNHASHED_FRESH` was agreed: a file sent from offset 0 ends without a hash.
    pub unhashed_fresh: bool,
    /// `IDENTITY` was agreed: either side may send its public identity.
    pub identity: bool,
    /// The session's transcript hash, which identity proofs sign.
    pub transcript: SessionTranscript,
}

impl SenderConfig {
    /// What the handshake agreed.
    pub fn agreed(agreed: &crate::msg::Agreed) -> Self {
        SenderConfig {
            resume: agreed.resume,
            zstd: agreed.zstd,
            stop_codes: agreed.stop_codes,
            skip: agreed.skip,
            unhashed_fresh: agreed.unhashed_fresh,
            identity: agreed.identity,
            transcript: SessionTranscript::default(),
        }
    }

    /// What the handshake of `session` agreed, and its transcript.
    pub fn session(session: &crate::handshake::Established) -> Self {
        SenderConfig { transcript: SessionTranscript(session.transcript_hash), ..Self::agreed(&session.agreed) }
    }
}

/// What the receiver said, for the caller to act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SenderEvent {
    /// The receiver's public identity (only with `IDENTITY` agreed, at most
    /// once, before its answer). It came inside the code-authenticated
    /// session, so it is the identity of whoever holds the code.
    PeerIdentity(PublicIdentity),
    /// The receiver accepted the offer: send the manifest (files), or the
    /// data (text, stream).
    Accepted,
    /// The receiver declined. The transfer is over.
    Refused,
    /// The receiver holds the first `len` bytes of file `index`, with this
    /// BLAKE3. Check it against the file when its turn comes
    /// ([`Sender::claim`] returns it again).
    Claim {
        /// Manifest index.
        index: u64,
        /// Bytes it holds.
        len: u64,
        /// BLAKE3 of those bytes.
        hash: [u8; 32],
    },
    /// The receiver keeps its own file for entry `index`: send nothing for it.
    Skip {
        /// Manifest index.
        index: u64,
    },
    /// Every claim is in: send the files.
    Ready,
    /// The receiver verified and placed everything. The transfer is complete.
    DoneAck,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    AwaitAnswer,
    Manifest,
    AwaitReady,
    ExpectFile,
    InFile,
    Stream,
    AwaitDoneAck,
    Finished,
    Refused,
    Failed,
}

/// The sender's transfer machine. See the module documentation.
#[derive(Debug)]
pub struct Sender {
    config: SenderConfig,
    offer: Offer,
    state: State,
    out: Vec<u8>,
    close: bool,
    cursor: usize,
    /// Size of each file entry announced so far ([`FOLDER`] for folders): 8
    /// bytes an entry, for transfers of a million entries.
    sizes: Vec<u64>,
    files: u64,
    dirs: u64,
    bytes: u64,
    manifest_ended: bool,
    claims: HashMap<u64, (u64, [u8; 32])>,
    /// Files the receiver keeps (it sent Skip).
    skipped: std::collections::HashSet<u64>,
    next_file: u64,
    files_sent: u64,
    /// Bytes the current file still has to get.
    remaining: u64,
    /// The current file's FileEnd must carry its hash.
    hashed: bool,
    stream_len: u64,
    /// The receiver's Identity came.
    peer_identity: bool,
}

/// The `sizes` mark of a folder (no file is 2^64 - 1 bytes long).
const FOLDER: u64 = u64::MAX;

fn violation(msg: &str) -> Error {
    Error::Violation(msg.into())
}

impl Sender {
    /// A sender of `offer`; the Offer message is queued at once.
    pub fn new(offer: Offer, config: SenderConfig) -> Self {
        Self::sharing(offer, config, None)
    }

    /// [`Sender::new`] that first tells the receiver this side's public
    /// identity, with its proof for this session (an Identity message before
    /// the Offer), when `IDENTITY` was agreed; without it nothing is sent.
    pub fn sharing(offer: Offer, config: SenderConfig, identity: Option<&Identity>) -> Self {
        let mut s = Sender {
            config,
            offer: offer.clone(),
            state: State::AwaitAnswer,
            out: Vec::new(),
            close: false,
            cursor: 0,
            sizes: Vec::new(),
            files: 0,
            dirs: 0,
            bytes: 0,
            manifest_ended: false,
            claims: HashMap::new(),
            skipped: std::collections::HashSet::new(),
            next_file: 0,
            files_sent: 0,
            remaining: 0,
            hashed: true,
            stream_len: 0,
            peer_identity: false,
        };
        if let Some(id) = identity.filter(|_| config.identity) {
            let proof = id.prove(ProofRole::Sender, &config.transcript.0);
            s.send(&TransferMsg::Identity { public: &id.public().to_bytes(), proof: &proof });
        }
        s.send(&TransferMsg::Offer(offer));
        s
    }

    fn send(&mut self, m: &TransferMsg<'_>) {
        m.encode(&mut self.out);
    }

    /// The offer being made.
    pub fn offer(&self) -> &Offer {
        &self.offer
    }

    /// Moves the encoded messages into `out` (appending); whether there were any.
    pub fn poll_transmit(&mut self, out: &mut Vec<u8>) -> bool {
        if self.out.is_empty() {
            return false;
        }
        out.append(&mut self.out);
        true
    }

    /// After the bytes of [`Sender::poll_transmit`], send the final record
    /// and close (after DoneAck, Refuse or Abort).
    pub fn wants_close(&self) -> bool {
        self.close
    }

    /// The transfer completed (DoneAck received).
    pub fn is_finished(&self) -> bool {
        self.state == State::Finished
    }

    /// Stops for a reason of this side: Stop(code, reason), or Abort(reason)
    /// to a peer without STOP_CODES, is queued.
    pub fn abort(&mut self, code: StopCode, reason: &str) {
        if !self.close {
            self.send(&super::stop_message(self.config.stop_codes, code, reason));
            self.close = true;
        }
        self.state = State::Failed;
    }

    fn expect(&self, state: State, what: &'static str) -> Result<()> {
        if self.state == state {
            Ok(())
        } else {
            Err(Error::Misuse(what))
        }
    }

    /// Announces one manifest entry (after [`SenderEvent::Accepted`]).
    pub fn entry(&mut self, e: &Entry) -> Result<()> {
        self.expect(State::Manifest, "entry() outside the manifest")?;
        if e.index != self.sizes.len() as u64 {
            return Err(Error::Misuse("entries must be numbered from 0 without gaps"));
        }
        if self.sizes.is_empty() {
            // Sized once from the offer, which bounds the manifest.
            let n = self.offer.files.saturating_add(self.offer.dirs);
            self.sizes.reserve_exact(usize::try_from(n).unwrap_or(0).min(1 << 24));
        }
        match e.kind {
            EntryKind::File => {
                if e.size == FOLDER {
                    return Err(Error::Misuse("a file of 2^64 - 1 bytes"));
                }
                self.files += 1;
                self.bytes = self.bytes.saturating_add(e.size);
                self.sizes.push(e.size);
            }
            EntryKind::Dir => {
                self.dirs += 1;
                self.sizes.push(FOLDER);
            }
        }
        if self.files > self.offer.files || self.dirs > self.offer.dirs || self.bytes > self.offer.bytes {
            return Err(Error::Misuse("the manifest goes beyond the offer"));
        }
        self.send(&TransferMsg::Entry(e.clone()));
        Ok(())
    }

    /// Ends the manifest; the receiver answers with its claims and Ready.
    pub fn manifest_end(&mut self) -> Result<()> {
        self.expect(State::Manifest, "manifest_end() outside the manifest")?;
        if (self.files, self.dirs, self.bytes) != (self.offer.files, self.offer.dirs, self.offer.bytes) {
            return Err(Error::Misuse("the manifest does not match the offer"));
        }
        self.send(&TransferMsg::ManifestEnd);
        self.manifest_ended = true;
        self.state = State::AwaitReady;
        Ok(())
    }

    /// The receiver asked to skip file `index` (send nothing for it).
    pub fn is_skipped(&self, index: u64) -> bool {
        self.skipped.contains(&index)
    }

    /// The receiver's claim on file `index`, if it made one.
    pub fn claim(&self, index: u64) -> Option<(u64, [u8; 32])> {
        self.claims.get(&index).copied()
    }

    /// Starts file `entry`'s data at `offset`: 0, or the length of the
    /// receiver's claim after the caller checked it against its own bytes.
    pub fn file_start(&mut self, entry: &Entry, offset: u64) -> Result<()> {
        self.expect(State::ExpectFile, "file_start() outside the data phase")?;
        self.next_file_index(entry.index)?;
        if offset > 0 && self.claims.get(&entry.index).map(|c| c.0) != Some(offset) {
            return Err(Error::Misuse("file_start() from an offset the receiver did not claim"));
        }
        self.remaining = entry.size.checked_sub(offset).ok_or(Error::Misuse("offset beyond the file"))?;
        self.hashed = !(self.config.unhashed_fresh && offset == 0);
        self.send(&TransferMsg::FileStart { entry: entry.clone(), offset });
        self.state = State::InFile;
        Ok(())
    }

    /// Whether the current file's [`Sender::file_end`] needs the BLAKE3 of
    /// the whole file: always, except for a file sent from offset 0 when
    /// `UNHASHED_FRESH` was agreed. A caller hashes only when it does.
    pub fn hashes(&self) -> bool {
        self.hashed
    }

    /// Skips file `index`: the receiver claimed all of it and the caller
    /// checked the claim.
    pub fn file_skip(&mut self, index: u64) -> Result<()> {
        self.expect(State::ExpectFile, "file_skip() outside the data phase")?;
        let size = self.next_file_index(index)?;
        if self.claims.get(&index).map(|c| c.0) != Some(size) {
            return Err(Error::Misuse("file_skip() without a claim on the whole file"));
        }
        self.send(&TransferMsg::FileSkip { index });
        self.files_sent += 1;
        Ok(())
    }

    fn next_file_index(&mut self, index: u64) -> Result<u64> {
        if self.skipped.contains(&index) {
            return Err(Error::Misuse("the receiver asked to skip this file"));
        }
        let size = usize::try_from(index).ok().and_then(|i| self.sizes.get(i)).copied().filter(|&s| s != FOLDER);
        match size {
            Some(size) if index >= self.next_file => {
                self.next_file = index + 1;
                Ok(size)
            }
            _ => Err(Error::Misuse("files must be sent in manifest order, once each")),
        }
    }

    /// Counts a chunk of `len` bytes of data (before compression) that the
    /// caller is about to write, compressed or not. Take
    /// [`Sender::poll_transmit`] first.
    pub fn chunk(&mut self, len: usize, compressed: bool) -> Result<()> {
        if len > MAX_CHUNK {
            return Err(Error::Misuse("a chunk holds at most 1 MiB"));
        }
        if compressed && (!self.config.zstd || self.state != State::InFile) {
            return Err(Error::Misuse("compressed chunks need zstd agreed, and only carry file data"));
        }
        match self.state {
            State::InFile if len as u64 <= self.remaining => self.remaining -= len as u64,
            State::InFile => return Err(Error::Misuse("more data than the file's announced size")),
            State::Stream => self.stream_len += len as u64,
            _ => return Err(Error::Misuse("chunk() outside a file or stream")),
        }
        if self.offer.kind == OfferKind::Text && self.stream_len > self.offer.bytes {
            return Err(Error::Misuse("more text than offered"));
        }
        Ok(())
    }

    /// Ends the current file with the BLAKE3 of all of it.
    pub fn file_end(&mut self, hash: Option<[u8; 32]>) -> Result<()> {
        self.expect(State::InFile, "file_end() outside a file")?;
        if self.remaining != 0 {
            return Err(Error::Misuse("file_end() before all of the file was sent"));
        }
        if self.hashed && hash.is_none() {
            return Err(Error::Misuse("file_end() without the hash this file needs"));
        }
        self.send(&TransferMsg::FileEnd { hash });
        self.files_sent += 1;
        self.state = State::ExpectFile;
        Ok(())
    }

    /// Ends a text or stream with its length and BLAKE3.
    pub fn stream_end(&mut self, len: u64, hash: [u8; 32]) -> Result<()> {
        self.expect(State::Stream, "stream_end() outside a stream")?;
        if len != self.stream_len || self.offer.kind == OfferKind::Text && len != self.offer.bytes {
            return Err(Error::Misuse("stream_end() with a length that is not what was sent or offered"));
        }
        self.send(&TransferMsg::StreamEnd { len, hash });
        self.send(&TransferMsg::Done);
        self.state = State::AwaitDoneAck;
        Ok(())
    }

    /// After the last file: Done; the receiver answers DoneAck.
    pub fn done(&mut self) -> Result<()> {
        self.expect(State::ExpectFile, "done() outside the data phase")?;
        if self.files_sent + self.skipped.len() as u64 != self.files {
            return Err(Error::Misuse("done() before every file was sent"));
        }
        self.send(&TransferMsg::Done);
        self.state = State::AwaitDoneAck;
        Ok(())
    }

    /// Call before the first [`Sender::poll_event`] of each new record.
    pub fn start_record(&mut self) {
        self.cursor = 0;
    }

    /// The next event in `record` (the plaintext of a record from the
    /// receiver), `None` when it is used up. An error leaves the machine
    /// failed.
    pub fn poll_event(&mut self, record: &[u8]) -> Result<Option<SenderEvent>> {
        let r = self.next_event(record);
        if r.is_err() {
            self.state = State::Failed;
        }
        r
    }

    fn next_event(&mut self, record: &[u8]) -> Result<Option<SenderEvent>> {
        while let Some(m) = next_message(record, &mut self.cursor)? {
            if let Some(ev) = self.handle(m)? {
                return Ok(Some(ev));
            }
        }
        Ok(None)
    }

    fn handle(&mut self, m: TransferMsg<'_>) -> Result<Option<SenderEvent>> {
        use State as S;
        let ev = match (self.state, m) {
            (_, TransferMsg::Abort { reason }) => return Err(Error::PeerStopped { code: None, reason: escape(reason.as_bytes()) }),
            (_, TransferMsg::Stop { code, reason }) => {
                return Err(Error::PeerStopped { code: Some(code), reason: escape(reason.as_bytes()) })
            }
            // The peer's engine sends it when idle; it only proves the peer is there.
            (_, TransferMsg::KeepAlive) => return Ok(None),
            (S::AwaitAnswer, TransferMsg::Identity { public, proof }) if self.config.identity && !self.peer_identity => {
                self.peer_identity = true;
                let id = PublicIdentity::from_bytes(public).map_err(|_| violation("the receiver's public identity is not valid"))?;
                id.verify_proof(ProofRole::Receiver, &self.config.transcript.0, proof)
                    .map_err(|_| violation("the receiver showed an identity it cannot prove is its own"))?;
                SenderEvent::PeerIdentity(id)
            }
            (S::AwaitAnswer, TransferMsg::Accept) => {
                self.state = if self.offer.kind == OfferKind::Files { S::Manifest } else { S::Stream };
                SenderEvent::Accepted
            }
            (S::AwaitAnswer, TransferMsg::Refuse) => {
                self.state = S::Refused;
                self.close = true;
                SenderEvent::Refused
            }
            (S::Manifest | S::AwaitReady, TransferMsg::Have { index, len, hash }) => {
                let size = usize::try_from(index).ok().and_then(|i| self.sizes.get(i)).copied().filter(|&s| s != FOLDER);
                if !self.config.resume {
                    return Err(violation("a resume claim, but resume was not agreed"));
                }
                match size {
                    Some(size) if len <= size && !self.claims.contains_key(&index) && !self.skipped.contains(&index) => {
                        self.claims.insert(index, (len, hash));
                    }
                    _ => return Err(violation("invalid resume claim")),
                }
                SenderEvent::Claim { index, len, hash }
            }
            (S::Manifest | S::AwaitReady, TransferMsg::Skip { index }) => {
                let is_file = usize::try_from(index).ok().and_then(|i| self.sizes.get(i)).copied().is_some_and(|s| s != FOLDER);
                if !self.config.skip {
                    return Err(violation("a skip, but skip was not agreed"));
                }
                if !is_file || self.claims.contains_key(&index) || !self.skipped.insert(index) {
                    return Err(violation("invalid skip"));
                }
                SenderEvent::Skip { index }
            }
            (S::AwaitReady, TransferMsg::Ready) => {
                self.state = S::ExpectFile;
                SenderEvent::Ready
            }
            (S::AwaitDoneAck, TransferMsg::DoneAck) => {
                self.state = S::Finished;
                self.close = true;
                SenderEvent::DoneAck
            }
            _ => return Err(violation("unexpected message from the receiver")),
        };
        Ok(Some(ev))
    }
}
