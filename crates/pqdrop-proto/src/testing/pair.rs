//! [`Pair`]: a whole transfer between the two machines, in memory.
//!
//! The handshake runs for real (CPace, X25519, ML-KEM-768 from a fixed
//! stream), records are sealed and opened for real, and the link between the
//! two sides is a list of frames that the test can cut, corrupt, drop,
//! duplicate or reorder. Each side's "disk" is a [`Tree`] plus, on the
//! receiver, its partial files, so an interrupted run can be resumed by a
//! second `Pair` over what survived.
//!
//! Time is virtual. Moving frames takes none; when nothing can move, the
//! clock jumps to the earliest deadline of the sides' liveness timers
//! ([`crate::liveness`]) or of the receiver's user, so a ten-minute consent
//! or a one-minute stall runs in microseconds and ends at an exact time.

use std::collections::BTreeMap;
use std::time::Duration;

pub use super::link::Fault;
use super::link::Link;
use super::tree::{Node, Tree};
use crate::code::Code;
use crate::handshake::Established;
use crate::identity::{Identity, PublicIdentity};

/// The identity of `seed`, for a simulated side.
fn sim_identity(seed: [u8; 32]) -> Identity {
    Identity::from_seed(crate::keys::Seed::from_bytes(seed)).expect("an identity from any seed")
}
use crate::liveness::{IdleTimer, KeepAliveTimer, Reading, Side, IDLE_TIMEOUT, KEEPALIVE_RECORD};
use crate::msg::{parse_frame_header, Capabilities, MsgType};
use crate::transfer::{
    Entry, EntryKind, Event, FileState, Offer, OfferKind, Receiver, ReceiverConfig, Sender, SenderConfig, SenderEvent, StopCode,
    TransferMsg, MAX_CHUNK,
};
use crate::Error;

mod receiver;
use receiver::SimReceiver;

/// How the simulated sides behave.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Capabilities each side offers (receiver, sender).
    pub caps: (Capabilities, Capabilities),
    /// The sender compresses file chunks (when zstd was agreed).
    pub compress: bool,
    /// Size of the sender's chunks.
    pub chunk: usize,
    /// The receiver consents to the offer.
    pub consent: bool,
    /// How long the receiver's user takes to answer the offer.
    pub consent_after: Duration,
    /// Each side's idle limit (used when KeepAlive is agreed).
    pub idle: Duration,
    /// The receiver may replace existing files.
    pub overwrite: bool,
    /// The receiver keeps existing files and asks the sender to skip them.
    pub keep_existing: bool,
    /// Plaintext bytes per record the sender aims for.
    pub record: usize,
    /// Seed of the fixed randomness.
    pub seed: String,
    /// The seed of the identity each side shares (receiver, sender).
    pub identities: (Option<[u8; 32]>, Option<[u8; 32]>),
}

impl Default for SimOptions {
    fn default() -> Self {
        let all = Capabilities(
            Capabilities::CHACHA20_POLY1305
                | Capabilities::RESUME
                | Capabilities::ZSTD
                | Capabilities::STOP_CODES
                | Capabilities::KEEPALIVE
                | Capabilities::SKIP
                | Capabilities::UNHASHED_FRESH
                | Capabilities::IDENTITY,
        );
        SimOptions {
            caps: (all, all),
            compress: false,
            chunk: 64 << 10,
            consent: true,
            consent_after: Duration::ZERO,
            idle: IDLE_TIMEOUT,
            keep_existing: false,
            overwrite: false,
            record: 128 << 10,
            seed: "pair".into(),
            identities: (None, None),
        }
    }
}

/// How one side ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// Completed.
    Done,
    /// The protocol machine or the record layer refused something.
    Failed(Error),
    /// A local refusal of the simulated disk (a file exists, integrity).
    Local(String),
    /// The link ended before this side finished.
    Closed,
    /// Nothing more happened, and no timer was left to end the wait.
    Stalled,
    /// The other side sent nothing for this long, so this side gave up
    /// (and closed the connection).
    TimedOut(Duration),
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The sender's end (`Err` from the handshake included).
    pub sender: End,
    /// The receiver's end.
    pub receiver: End,
    /// The receiver's files after the run.
    pub out: Tree,
    /// The receiver's partial files after the run (path → bytes held).
    pub partials: BTreeMap<String, Vec<u8>>,
    /// Text or stream output of the receiver.
    pub stdout: Vec<u8>,
    /// File bytes the sender put on the wire (before compression).
    pub sent: u64,
    /// File bytes the receiver already held.
    pub resumed: u64,
    /// Virtual time when the run ended.
    pub elapsed: Duration,
    /// KeepAlive records each side sealed (receiver, sender).
    pub keepalives: (u64, u64),
    /// The identity each side learnt of the other (receiver, sender).
    pub identities: (Option<PublicIdentity>, Option<PublicIdentity>),
}

enum Payload {
    Files(Tree),
    Text(Vec<u8>),
    Stream(Vec<u8>),
}

/// The simulator. Build it, optionally add faults and receiver state, then [`Pair::run`].
pub struct Pair {
    payload: Payload,
    opts: SimOptions,
    faults: Vec<Fault>,
    out: Tree,
    partials: BTreeMap<String, Vec<u8>>,
    codes: (String, String),
}

impl Pair {
    fn new(payload: Payload) -> Self {
        Pair {
            payload,
            opts: SimOptions::default(),
            faults: Vec::new(),
            out: Tree::new(),
            partials: BTreeMap::new(),
            codes: ("7-lemon-tiger".into(), "7-lemon-tiger".into()),
        }
    }

    /// Sends the files and folders of `tree`.
    pub fn files(tree: Tree) -> Self {
        Pair::new(Payload::Files(tree))
    }

    /// Sends a text.
    pub fn text(text: &str) -> Self {
        Pair::new(Payload::Text(text.as_bytes().to_vec()))
    }

    /// Sends a stream of unknown size.
    pub fn stream(data: &[u8]) -> Self {
        Pair::new(Payload::Stream(data.to_vec()))
    }

    /// Options.
    pub fn options(mut self, opts: SimOptions) -> Self {
        self.opts = opts;
        self
    }

    /// Adds a fault on the sender-to-receiver link.
    pub fn fault(mut self, f: Fault) -> Self {
        self.faults.push(f);
        self
    }

    /// The codes typed on each side (receiver, sender).
    pub fn codes(mut self, receiver: &str, sender: &str) -> Self {
        self.codes = (receiver.into(), sender.into());
        self
    }

    /// What the receiver's folder holds before the run (files, and partial
    /// files from an earlier run).
    pub fn receiver_state(mut self, out: Tree, partials: BTreeMap<String, Vec<u8>>) -> Self {
        self.out = out;
        self.partials = partials;
        self
    }

    /// Runs the handshake and the transfer to the end, or until nothing moves.
    pub fn run(self) -> Outcome {
        let Pair { payload, opts, faults, out, partials, codes } = self;
        let mut rx = SimReceiver {
            m: None,
            keep_existing: opts.keep_existing,
            session: None,
            frames: Vec::new(),
            out,
            partials,
            stdout: Vec::new(),
            current: None,
            end: None,
            overwrite: opts.overwrite,
            consent: opts.consent,
            consent_after: opts.consent_after,
            answer_at: None,
            identity: opts.identities.0.map(sim_identity),
            peer: None,
        };
        let parse = |c: &str| Code::parse(c).expect("a valid code");
        let (rc, sc) = (parse(&codes.0), parse(&codes.1));
        let (rs, ss) = match super::handshake(&rc, &sc, opts.caps, &opts.seed) {
            Ok(pair) => pair,
            Err(e) => {
                return Outcome {
                    sender: End::Failed(e.clone()),
                    receiver: End::Failed(e),
                    out: rx.out,
                    partials: rx.partials,
                    stdout: Vec::new(),
                    sent: 0,
                    resumed: 0,
                    elapsed: Duration::ZERO,
                    keepalives: (0, 0),
                    identities: (None, None),
                }
            }
        };
        let (mut rclock, mut sclock) = (Clock::new(&rs, Side::Receiver, opts.idle), Clock::new(&ss, Side::Sender, opts.idle));
        let mut tx = SimSender::new(payload, ss, &opts);
        rx.start(rs);
        let mut link = Link::new(faults);
        let mut now = Duration::ZERO;
        // Bounded: every round moves a frame, fires a timer or ends the run.
        for _ in 0..1_000_000 {
            let frames = tx.step();
            sclock.sent(now, frames.len(), tx.session.sealer.is_finished());
            let mut moved = !frames.is_empty();
            for f in link.carry(frames) {
                rclock.idle.on_receive(now);
                rx.on_frame(&f, now);
            }
            if link.cut && rx.end.is_none() {
                rx.end = Some(End::Closed);
            }
            let replies = rx.take_frames();
            rclock.sent(now, replies.len(), rx.session.as_ref().is_some_and(|s| s.sealer.is_finished()));
            moved |= !replies.is_empty();
            if !link.cut {
                for f in link.carry_back(replies) {
                    sclock.idle.on_receive(now);
                    tx.on_frame(&f);
                }
            } else if tx.end.is_none() {
                tx.end = Some(End::Closed);
            }
            if tx.end.is_some() && rx.end.is_some() {
                break;
            }
            if moved || tx.busy() {
                continue;
            }
            // Nothing moves now: go to the next deadline.
            let next = [sclock.deadline(tx.end.is_none()), rclock.deadline(rx.end.is_none()), rx.answer_at.filter(|_| rx.end.is_none())]
                .into_iter()
                .flatten()
                .min();
            let Some(at) = next else {
                tx.end.get_or_insert(End::Stalled);
                rx.end.get_or_insert(End::Stalled);
                break;
            };
            now = now.max(at);
            // What is due goes out first; an arrival at a deadline is in time.
            let mut fired = false;
            if tx.end.is_none() && sclock.keepalive.handle_timeout(now) {
                tx.keepalive();
                sclock.keepalives += 1;
                fired = true;
            }
            if rx.end.is_none() && rclock.keepalive.handle_timeout(now) {
                rx.keepalive();
                rclock.keepalives += 1;
                fired = true;
            }
            fired |= rx.answer(now);
            if fired {
                continue;
            }
            for (clock, end) in [(&mut sclock, &mut tx.end), (&mut rclock, &mut rx.end)] {
                if end.is_none() {
                    if let Some(limit) = clock.idle.handle_timeout(now, Reading::BetweenRecords) {
                        *end = Some(End::TimedOut(limit));
                        link.cut = true;
                    }
                }
            }
        }
        let resumed = rx.m.as_ref().map_or(0, Receiver::bytes_resumed);
        Outcome {
            sender: tx.end.unwrap_or(End::Stalled),
            receiver: rx.end.unwrap_or(End::Stalled),
            out: rx.out,
            partials: rx.partials,
            stdout: rx.stdout,
            sent: tx.sent,
            resumed,
            elapsed: now,
            keepalives: (rclock.keepalives, sclock.keepalives),
            identities: (rx.peer, tx.peer),
        }
    }
}

/// One side's liveness timers, on the simulator's virtual clock. The whole
/// frames of the simulated link are never read halfway, so the reader is
/// always between records.
struct Clock {
    idle: IdleTimer,
    keepalive: KeepAliveTimer,
    keepalives: u64,
}

impl Clock {
    fn new(session: &Established, side: Side, idle: Duration) -> Self {
        Clock {
            idle: IdleTimer::new(&session.agreed, side, idle, Duration::ZERO),
            keepalive: KeepAliveTimer::new(&session.agreed, idle, Duration::ZERO),
            keepalives: 0,
        }
    }

    /// The side sealed `frames` frames at `now`.
    fn sent(&mut self, now: Duration, frames: usize, finished: bool) {
        if frames > 0 {
            self.keepalive.on_transmit(now);
        }
        if finished {
            self.keepalive.finish();
        }
    }

    /// The earliest deadline of a side still running.
    fn deadline(&self, running: bool) -> Option<Duration> {
        if !running {
            return None;
        }
        [self.keepalive.poll_timeout(), self.idle.poll_timeout(Reading::BetweenRecords)].into_iter().flatten().min()
    }
}

/// Seals a KeepAlive record into `frames`, unless the final record went out.
fn seal_keepalive(session: &mut Established, frames: &mut Vec<Vec<u8>>) {
    let mut frame = Vec::new();
    if !session.sealer.is_finished() && session.sealer.seal_to_vec(&KEEPALIVE_RECORD, false, &mut frame).is_ok() {
        frames.push(frame);
    }
}

/// Splits one frame into its type and body.
fn split_frame(frame: &[u8]) -> Result<(MsgType, Vec<u8>), Error> {
    let h = parse_frame_header(frame)?.ok_or(Error::Decode { what: "frame", why: "truncated" })?;
    let body = frame.get(h.header_len..h.header_len + h.body_len).ok_or(Error::Decode { what: "frame", why: "truncated" })?;
    Ok((h.msg_type, body.to_vec()))
}

struct SimSender {
    m: Sender,
    session: Established,
    payload: Payload,
    entries: Vec<(Entry, Option<Vec<u8>>)>,
    pt: Vec<u8>,
    frames: Vec<Vec<u8>>,
    record: usize,
    chunk: usize,
    compress: bool,
    /// The data phase may proceed.
    go: bool,
    /// Everything was queued; waiting for the receiver.
    queued: bool,
    end: Option<End>,
    sent: u64,
    /// The receiver's identity, once told.
    peer: Option<PublicIdentity>,
}

impl SimSender {
    fn new(payload: Payload, session: Established, opts: &SimOptions) -> Self {
        let mut entries = Vec::new();
        let offer = match &payload {
            Payload::Files(tree) => {
                let (mut files, mut dirs, mut bytes) = (0, 0, 0);
                let mut preview: Vec<Vec<u8>> = Vec::new();
                for (i, (path, node)) in tree.0.iter().enumerate() {
                    let top = path.split('/').next().unwrap_or_default().as_bytes().to_vec();
                    if !preview.contains(&top) {
                        preview.push(top);
                    }
                    let (kind, size, executable, mtime, data) = match node {
                        Node::File { data, executable, mtime } => {
                            (EntryKind::File, data.len() as u64, *executable, *mtime, Some(data.clone()))
                        }
                        Node::Dir { mtime } => (EntryKind::Dir, 0, false, *mtime, None),
                    };
                    if kind == EntryKind::File {
                        files += 1;
                        bytes += size;
                    } else {
                        dirs += 1;
                    }
                    entries.push((Entry { index: i as u64, kind, path: path.as_bytes().to_vec(), size, executable, mtime }, data));
                }
                preview.truncate(crate::transfer::MAX_PREVIEW);
                Offer { kind: OfferKind::Files, files, dirs, bytes, preview }
            }
            Payload::Text(t) => Offer { kind: OfferKind::Text, files: 0, dirs: 0, bytes: t.len() as u64, preview: Vec::new() },
            Payload::Stream(_) => Offer { kind: OfferKind::Stream, files: 0, dirs: 0, bytes: 0, preview: Vec::new() },
        };
        let config = SenderConfig::session(&session);
        SimSender {
            m: Sender::sharing(offer, config, opts.identities.1.map(sim_identity).as_ref()),
            compress: opts.compress && session.agreed.zstd,
            session,
            payload,
            entries,
            pt: Vec::new(),
            frames: Vec::new(),
            record: opts.record,
            chunk: opts.chunk.clamp(1, MAX_CHUNK),
            go: false,
            queued: false,
            end: None,
            sent: 0,
            peer: None,
        }
    }

    fn busy(&self) -> bool {
        self.go && !self.queued && self.end.is_none()
    }

    /// Seals the pending plaintext into a frame.
    fn seal(&mut self, last: bool) {
        if self.pt.is_empty() && !last {
            return;
        }
        let mut frame = Vec::new();
        if self.session.sealer.seal_to_vec(&self.pt, last, &mut frame).is_ok() {
            self.frames.push(frame);
        }
        self.pt.clear();
    }

    /// Seals a KeepAlive record (the timer said one is due).
    fn keepalive(&mut self) {
        seal_keepalive(&mut self.session, &mut self.frames);
    }

    fn drain(&mut self) {
        self.m.poll_transmit(&mut self.pt);
        if self.pt.len() >= self.record {
            self.seal(false);
        }
    }

    fn fail(&mut self, e: Error) {
        self.m.abort(StopCode::PEER_VIOLATION, &e.to_string());
        self.m.poll_transmit(&mut self.pt);
        self.seal(true);
        self.end = Some(End::Failed(e));
    }

    /// Moves the transfer on as far as it can without hearing from the
    /// receiver; returns the frames to send.
    fn step(&mut self) -> Vec<Vec<u8>> {
        if self.end.is_none() && self.go && !self.queued {
            if let Err(e) = self.send_all() {
                self.fail(e);
            }
            self.queued = true;
        }
        self.drain();
        self.seal(false);
        if self.m.wants_close() && !self.session.sealer.is_finished() {
            self.seal(true);
        }
        std::mem::take(&mut self.frames)
    }

    fn send_all(&mut self) -> Result<(), Error> {
        match std::mem::replace(&mut self.payload, Payload::Stream(Vec::new())) {
            Payload::Files(_) => {
                let entries = std::mem::take(&mut self.entries);
                for (e, data) in &entries {
                    let Some(data) = data else { continue };
                    let mut offset = 0;
                    if self.m.is_skipped(e.index) {
                        continue;
                    }
                    if let Some((len, hash)) = self.m.claim(e.index) {
                        let ours = data.get(..len as usize).map(blake3::hash);
                        if ours.is_some_and(|h| *h.as_bytes() == hash) {
                            offset = len;
                        }
                    }
                    if offset == e.size && self.m.claim(e.index).is_some() {
                        self.m.file_skip(e.index)?;
                        self.drain();
                        continue;
                    }
                    self.m.file_start(e, offset)?;
                    self.drain();
                    for c in data[offset as usize..].chunks(self.chunk) {
                        self.chunk_out(c, true)?;
                    }
                    // Hashed only when the machine says the FileEnd needs it.
                    let hash = self.m.hashes().then(|| *blake3::hash(data).as_bytes());
                    self.m.file_end(hash)?;
                    self.drain();
                }
                self.m.done()
            }
            Payload::Text(d) | Payload::Stream(d) => {
                for c in d.chunks(self.chunk) {
                    self.chunk_out(c, false)?;
                }
                self.m.stream_end(d.len() as u64, *blake3::hash(&d).as_bytes())
            }
        }
    }

    fn chunk_out(&mut self, c: &[u8], file: bool) -> Result<(), Error> {
        if file && self.compress {
            let mut z = vec![0u8; zstd_safe::compress_bound(c.len())];
            let n = zstd_safe::compress(&mut z[..], c, 1).map_err(|_| Error::Misuse("zstd"))?;
            self.m.chunk(c.len(), true)?;
            self.drain();
            TransferMsg::Chunk { compressed: true, data: &z[..n] }.encode(&mut self.pt);
        } else {
            self.m.chunk(c.len(), false)?;
            self.drain();
            TransferMsg::Chunk { compressed: false, data: c }.encode(&mut self.pt);
        }
        self.sent += c.len() as u64;
        if self.pt.len() >= self.record {
            self.seal(false);
        }
        Ok(())
    }

    fn on_frame(&mut self, frame: &[u8]) {
        if self.end.is_some() {
            return;
        }
        let r = split_frame(frame).and_then(|(t, mut body)| {
            let n = self.session.opener.open(t, &mut body)?;
            body.truncate(n);
            self.m.start_record();
            while let Some(ev) = self.m.poll_event(&body)? {
                match ev {
                    SenderEvent::Accepted => {
                        let entries: Vec<Entry> = self.entries.iter().map(|(e, _)| e.clone()).collect();
                        if matches!(self.payload, Payload::Files(_)) {
                            for e in &entries {
                                self.m.entry(e)?;
                                self.drain();
                            }
                            self.m.manifest_end()?;
                        } else {
                            self.go = true;
                        }
                    }
                    SenderEvent::Ready => self.go = true,
                    SenderEvent::Claim { .. } | SenderEvent::Skip { .. } => {}
                    SenderEvent::PeerIdentity(id) => self.peer = Some(id),
                    SenderEvent::Refused => self.end = Some(End::Local("refused".into())),
                    SenderEvent::DoneAck => self.end = Some(End::Done),
                }
            }
            Ok(())
        });
        if let Err(e) = r {
            self.fail(e);
        }
    }
}
