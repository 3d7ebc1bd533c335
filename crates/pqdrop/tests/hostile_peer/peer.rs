//! [`Peer`]: the scripted hostile sender and what it reads back.

use super::*;

/// A reply from the receiver, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Consent given.
    Accept,
    /// Declined.
    Refuse,
    /// A resume claim.
    Have { index: u64, len: u64, hash: [u8; 32] },
    /// Manifest processed.
    Ready,
    /// Everything verified.
    DoneAck,
    /// The receiver stopped, and why.
    Abort(String),
    /// Something a receiver never sends.
    Unexpected(String),
    /// The stream ended (cleanly or not).
    Closed,
    /// Reading or decrypting failed.
    Error(String),
}

/// What [`Peer::expect`] waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// `Accept`.
    Accept,
    /// `Ready` (the `Have` claims before it are kept in [`Peer::haves`]).
    Ready,
    /// `DoneAck`.
    DoneAck,
}

type ReadSide = Chain<std::io::Cursor<Vec<u8>>, OwnedReadHalf>;

/// The hostile sender: an authenticated session whose messages the test writes.
pub struct Peer {
    rd: ReadSide,
    wr: OwnedWriteHalf,
    sealer: RecordSealer,
    /// Plaintext of the record being built.
    pending: Vec<u8>,
    opener: RecordOpener,
    replies: VecDeque<Reply>,
    /// Records already sealed (a record is cut before it would pass
    /// [`RECORD_SPLIT`]), written by the next `flush`.
    sealed: Vec<u8>,
    /// `Have` claims seen while waiting for `Ready`: (index, len, hash).
    pub haves: Vec<(u64, u64, [u8; 32])>,
    ended: bool,
}

impl Peer {
    /// Connects to the relay as the sender and runs the handshake as the accepter.
    pub async fn connect(relay: SocketAddr, code: &str) -> Result<Peer, String> {
        let code = Code::parse(code).map_err(|e| format!("code: {e}"))?;
        let nameplate = code.nameplate().to_string();
        let addr = relay.to_string();
        let mut stream = tokio::time::timeout(PEER_TIMEOUT, pqdrop_relay::connect(&addr, &nameplate, pqdrop_relay::Role::Sender, || {}))
            .await
            .map_err(|_| "the relay did not pair us in time".to_string())?
            .map_err(|e| format!("relay: {e}"))?;
        let (session, leftover) = tokio::time::timeout(PEER_TIMEOUT, handshake(&mut stream, Role::Accepter, &code, peer_capabilities()))
            .await
            .map_err(|_| "the handshake timed out".to_string())?
            .map_err(|e| format!("handshake: {e}"))?;
        let (rd, wr) = stream.into_split();
        let rd = tokio::io::AsyncReadExt::chain(std::io::Cursor::new(leftover), rd);
        Ok(Peer {
            rd,
            wr,
            sealer: session.sealer,
            pending: Vec::new(),
            opener: session.opener,
            replies: VecDeque::new(),
            sealed: Vec::new(),
            haves: Vec::new(),
            ended: false,
        })
    }

    /// Queues any message.
    pub fn push(&mut self, m: &TransferMsg<'_>) -> &mut Self {
        let mut b = Vec::new();
        m.encode(&mut b);
        self.raw(&b)
    }

    /// Queues raw message bytes (for encodings `TransferMsg` cannot express).
    pub fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        if !self.pending.is_empty() && self.pending.len() + bytes.len() > RECORD_SPLIT {
            let pt = std::mem::take(&mut self.pending);
            self.sealer.seal_to_vec(&pt, false, &mut self.sealed).expect("seal");
        }
        self.pending.extend_from_slice(bytes);
        self
    }

    /// Queues a files offer.
    pub fn offer(&mut self, files: u64, dirs: u64, bytes: u64, preview: &[&[u8]]) -> &mut Self {
        self.push(&TransferMsg::Offer(Offer {
            kind: OfferKind::Files,
            files,
            dirs,
            bytes,
            preview: preview.iter().map(|p| p.to_vec()).collect(),
        }))
    }

    /// Queues a manifest entry.
    pub fn entry(&mut self, e: &Entry) -> &mut Self {
        self.push(&TransferMsg::Entry(e.clone()))
    }

    /// Queues the end of the manifest.
    pub fn manifest_end(&mut self) -> &mut Self {
        self.push(&TransferMsg::ManifestEnd)
    }

    /// Queues a file header.
    pub fn file_start(&mut self, e: &Entry, offset: u64) -> &mut Self {
        self.push(&TransferMsg::FileStart { entry: e.clone(), offset })
    }

    /// Queues plain file data.
    pub fn chunk(&mut self, data: &[u8]) -> &mut Self {
        self.push(&TransferMsg::Chunk { compressed: false, data })
    }

    /// Queues a chunk flagged as zstd-compressed, with `data` as its payload as is.
    pub fn zchunk(&mut self, data: &[u8]) -> &mut Self {
        self.push(&TransferMsg::Chunk { compressed: true, data })
    }

    /// Queues the end of a file.
    pub fn file_end(&mut self, hash: [u8; 32]) -> &mut Self {
        self.push(&TransferMsg::FileEnd { hash: Some(hash) })
    }

    /// Queues a whole, honest file: header, data (in chunks of at most
    /// 256 KiB), end with the right hash.
    pub fn send_file(&mut self, e: &Entry, data: &[u8]) -> &mut Self {
        self.file_start(e, 0);
        for c in data.chunks(256 << 10) {
            self.chunk(c);
        }
        self.file_end(hash(data))
    }

    /// Queues a skip.
    pub fn file_skip(&mut self, index: u64) -> &mut Self {
        self.push(&TransferMsg::FileSkip { index })
    }

    /// Queues the end of the transfer.
    pub fn done(&mut self) -> &mut Self {
        self.push(&TransferMsg::Done)
    }

    /// Seals the queued messages (one record unless they pass
    /// [`RECORD_SPLIT`]) and returns the frame bytes without writing them
    /// (for replay and reordering).
    pub fn seal(&mut self, last: bool) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.sealed);
        let pt = std::mem::take(&mut self.pending);
        if !pt.is_empty() || last {
            self.sealer.seal_to_vec(&pt, last, &mut out).expect("seal");
        }
        out
    }

    /// Writes raw bytes to the connection.
    pub async fn write_raw(&mut self, bytes: &[u8]) -> Result<(), String> {
        tokio::time::timeout(PEER_TIMEOUT, async {
            self.wr.write_all(bytes).await?;
            self.wr.flush().await
        })
        .await
        .map_err(|_| "write timed out".to_string())?
        .map_err(|e| format!("write: {e}"))
    }

    /// Seals the queued messages into one (non-final) record and writes it.
    pub async fn flush(&mut self) -> Result<(), String> {
        let f = self.seal(false);
        self.write_raw(&f).await
    }

    /// Seals the queued messages into the final record and writes it.
    pub async fn flush_final(&mut self) -> Result<(), String> {
        let f = self.seal(true);
        self.write_raw(&f).await
    }

    /// Closes our sending side (TCP half-close).
    pub async fn shutdown(&mut self) {
        let _ = self.wr.shutdown().await;
    }

    /// The next reply, reading a record when none is queued.
    pub async fn next_reply(&mut self) -> Reply {
        if let Some(r) = self.replies.pop_front() {
            return r;
        }
        if self.ended {
            return Reply::Closed;
        }
        // PEER_TIMEOUT bounds the wait; the watch adds no limit of its own.
        let none = pqdrop_proto::msg::Agreed::negotiate(pqdrop_proto::msg::Capabilities(0), pqdrop_proto::msg::Capabilities(0));
        let mut watch = IdleWatch::new(&none, pqdrop_proto::liveness::Side::Sender, PEER_TIMEOUT);
        let frame = match tokio::time::timeout(PEER_TIMEOUT, read_frame(&mut self.rd, Vec::new(), &mut watch)).await {
            Err(_) => return Reply::Error("no reply in time".into()),
            Ok(Err(e)) => {
                self.ended = true;
                return Reply::Error(e.to_string());
            }
            Ok(Ok(None)) => {
                self.ended = true;
                return Reply::Closed;
            }
            Ok(Ok(Some(f))) => f,
        };
        let mut frame = frame;
        let pt = match open_frame(&mut self.opener, &mut frame) {
            Ok(pt) => pt,
            Err(e) => {
                self.ended = true;
                return Reply::Error(e.to_string());
            }
        };
        let mut it = Messages::new(pt);
        loop {
            let r = match it.next() {
                Ok(None) => break,
                Err(e) => Reply::Error(e.to_string()),
                Ok(Some(m)) => match m {
                    TransferMsg::Accept => Reply::Accept,
                    TransferMsg::Refuse => Reply::Refuse,
                    TransferMsg::Have { index, len, hash } => Reply::Have { index, len, hash },
                    TransferMsg::Ready => Reply::Ready,
                    TransferMsg::DoneAck => Reply::DoneAck,
                    TransferMsg::Abort { reason } | TransferMsg::Stop { reason, .. } => Reply::Abort(reason),
                    other => Reply::Unexpected(format!("{other:?}")),
                },
            };
            let stop = matches!(r, Reply::Error(_));
            self.replies.push_back(r);
            if stop {
                break;
            }
        }
        if self.opener.is_finished() {
            self.ended = true;
        }
        self.replies.pop_front().unwrap_or(Reply::Closed)
    }

    /// Waits for `want`; any other reply is an error naming it.
    pub async fn expect(&mut self, want: Expect) -> Result<(), String> {
        loop {
            let r = self.next_reply().await;
            match (want, &r) {
                (Expect::Accept, Reply::Accept) | (Expect::Ready, Reply::Ready) | (Expect::DoneAck, Reply::DoneAck) => return Ok(()),
                (Expect::Ready, Reply::Have { index, len, hash }) => self.haves.push((*index, *len, *hash)),
                _ => {
                    // Keep it for `drain` (an Abort is what the test looks at).
                    let msg = format!("expected {want:?}, the receiver sent {r:?}");
                    self.replies.push_front(r);
                    return Err(msg);
                }
            }
        }
    }

    /// After a manifest the receiver should have refused: if it answers
    /// Ready instead, sends every file honestly (`size` bytes of `x`) and Done,
    /// so that a receiver that wrongly accepts ends with exit 0 at once
    /// instead of hanging until the deadline.
    pub async fn follow_through(&mut self, entries: &[Entry]) {
        if self.expect(Expect::Ready).await.is_err() {
            return;
        }
        for e in entries.iter().filter(|e| e.kind == EntryKind::File) {
            let data = vec![b'x'; usize::try_from(e.size).unwrap_or(0).min(16 << 20)];
            self.send_file(e, &data);
            if self.flush().await.is_err() {
                return;
            }
        }
        self.done();
        let _ = self.flush().await;
    }

    /// Reads until the stream ends; returns the receiver's Abort reason, if any.
    pub async fn drain(&mut self) -> Option<String> {
        let mut abort = None;
        let deadline = Instant::now() + CHILD_DEADLINE;
        while Instant::now() < deadline {
            match self.next_reply().await {
                Reply::Abort(r) => abort = Some(r),
                Reply::Closed | Reply::Error(_) => break,
                _ => {}
            }
        }
        abort
    }

    /// Offer (one `Files` offer with `files`/`dirs`/`bytes`, the preview
    /// being the entries' paths), wait for Accept, then the whole manifest.
    /// Errors only before the manifest went out; what follows is the test's.
    pub async fn open_manifest(&mut self, entries: &[Entry]) -> Result<(), String> {
        let files = entries.iter().filter(|e| e.kind == EntryKind::File).count() as u64;
        let dirs = entries.len() as u64 - files;
        let bytes = entries.iter().map(|e| e.size).fold(0u64, u64::saturating_add);
        // Like the real sender: the distinct top-level names, at most 16 (longer
        // ones are left out, as they are capped like entry paths).
        let mut preview: Vec<&[u8]> = Vec::new();
        for e in entries.iter().filter(|e| e.path.len() <= 4096) {
            let top = e.path.split(|&b| b == b'/').next().unwrap_or_default();
            if preview.len() < 16 && !preview.contains(&top) {
                preview.push(top);
            }
        }
        self.offer(files, dirs, bytes, &preview).flush().await?;
        self.expect(Expect::Accept).await?;
        for e in entries {
            self.entry(e);
        }
        self.manifest_end();
        self.flush().await
    }
}

/// What the test peer offers: pqdrop's own capabilities except
/// UNHASHED_FRESH, so every FileEnd it sends carries a hash for the receiver
/// to check (the rule for hashless FileEnds is tested on the machine itself,
/// in pqdrop-proto's sim_hostile.rs).
fn peer_capabilities() -> pqdrop_proto::msg::Capabilities {
    let all = local_capabilities(false);
    pqdrop_proto::msg::Capabilities(all.0 & !pqdrop_proto::msg::Capabilities::UNHASHED_FRESH)
}
