//! The transfer protocol: messages carried inside encrypted records after the
//! handshake.
//!
//! A record's plaintext holds one or more whole messages (a message never spans
//! records), so many small files pack into few records. Each message is
//! `IxiVarUInt(type) || fields`. Decoding is total and bounded: every length is
//! capped before use.
//!
//! Flow (S = sender/accepter, R = receiver/requester), one round trip before data:
//! ```text
//! S: Offer                         R: Accept | Refuse
//! S: Entry* ManifestEnd            R: Have* Ready        (resume claims)
//! S: (FileStart Chunk* FileEnd | FileSkip)* Done
//!                                  R: DoneAck
//! ```
//! For text and stdin the data phase is `Chunk* StreamEnd` right after Accept.

use crate::codec::{put_bytes, put_varuint, Reader};
use crate::{Error, Result};

pub mod names;
mod receiver;
mod sender;

pub use receiver::{Event, FileState, Receiver, ReceiverConfig, MAX_TEXT};
pub use sender::{Sender, SenderConfig, SenderEvent};

/// The message that stops a transfer for `reason`: Stop with its code when
/// both sides agreed on STOP_CODES, else Abort (PROTOCOL.md §8).
fn stop_message(stop_codes: bool, code: StopCode, reason: &str) -> TransferMsg<'static> {
    if stop_codes {
        TransferMsg::Stop { code, reason: reason.to_owned() }
    } else {
        TransferMsg::Abort { reason: reason.to_owned() }
    }
}

/// Largest path (bytes) in an entry.
pub const MAX_PATH: usize = 4096;
/// Most names shown in an offer's preview.
pub const MAX_PREVIEW: usize = 16;
/// Largest chunk payload (after decompression too).
pub const MAX_CHUNK: usize = 1 << 20;
/// Largest error text.
pub const MAX_REASON: usize = 1024;

/// Why a side stopped (the code of a Stop message, PROTOCOL.md §8). It says
/// whose side the problem is on, so the other side can report it truly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StopCode(pub u64);

impl StopCode {
    /// No particular reason given.
    pub const UNSPECIFIED: Self = Self(0);
    /// A file exists at the destination and the user did not allow replacing it.
    pub const EXISTS: Self = Self(1);
    /// A local problem of the side that stops (disk, permissions, a read-only folder).
    pub const LOCAL_IO: Self = Self(2);
    /// The side that stops has no space left for the transfer.
    pub const NO_SPACE: Self = Self(3);
    /// The other side (the receiver of this message) broke the protocol.
    pub const PEER_VIOLATION: Self = Self(4);
    /// Data of the other side failed verification.
    pub const INTEGRITY: Self = Self(5);
    /// The offer is over a limit of the side that stops.
    pub const LIMIT: Self = Self(6);
    /// The user of the side that stops interrupted it.
    pub const INTERRUPTED: Self = Self(7);
    /// An internal error of the side that stops (a bug).
    pub const INTERNAL: Self = Self(8);
}

/// The transcript hash of the session a transfer runs in (the handshake's
/// `transcript_hash`), which identity proofs sign.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SessionTranscript(pub [u8; 64]);

impl Default for SessionTranscript {
    fn default() -> Self {
        SessionTranscript([0; 64])
    }
}

impl core::fmt::Debug for SessionTranscript {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "SessionTranscript({:02x}{:02x}..)", self.0[0], self.0[1])
    }
}

/// What is being sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OfferKind {
    /// Files and folders.
    Files,
    /// A text message (printed by the receiver).
    Text,
    /// A stream of unknown size (the sender's stdin), written to the receiver's stdout.
    Stream,
}

/// The sender's offer, shown to the receiver before anything is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// Kind of transfer.
    pub kind: OfferKind,
    /// Number of files.
    pub files: u64,
    /// Number of folders.
    pub dirs: u64,
    /// Total bytes (for streams: 0, unknown).
    pub bytes: u64,
    /// Up to [`MAX_PREVIEW`] top-level names, raw (the receiver escapes them).
    pub preview: Vec<Vec<u8>>,
}

/// Kind of a manifest entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A folder (possibly empty).
    Dir,
}

/// One file or folder of the tree, as announced in the manifest and again at
/// the start of the file's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Position in the manifest, counting from 0 without gaps.
    pub index: u64,
    /// File or folder.
    pub kind: EntryKind,
    /// Relative path with `/` separators, raw bytes (validated by the receiver).
    pub path: Vec<u8>,
    /// Size in bytes (0 for folders).
    pub size: u64,
    /// The executable bit.
    pub executable: bool,
    /// Modification time, seconds since the Unix epoch (clamped at 0).
    pub mtime: u64,
}

/// A transfer message. `Chunk` borrows its payload from the record buffer, so
/// file data is never copied on receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransferMsg<'a> {
    /// 1: S→R.
    Offer(Offer),
    /// 2: R→S, consent given.
    Accept,
    /// 3: R→S, declined.
    Refuse,
    /// 4: S→R manifest entry.
    Entry(Entry),
    /// 5: S→R, no more entries.
    ManifestEnd,
    /// 6: R→S resume claim: "I hold the first `len` bytes of entry `index`, whose BLAKE3 is `hash`".
    Have {
        /// Entry index.
        index: u64,
        /// Bytes held.
        len: u64,
        /// BLAKE3 of those bytes.
        hash: [u8; 32],
    },
    /// 7: R→S, manifest processed; send data.
    Ready,
    /// 8: S→R, data of `entry` follows from byte `offset`.
    FileStart {
        /// The entry, repeated so the receiver keeps no manifest in memory.
        entry: Entry,
        /// First byte sent (non-zero only when a Have claim was verified).
        offset: u64,
    },
    /// 9: S→R file or stream data. `compressed` means zstd.
    Chunk {
        /// zstd-compressed payload.
        compressed: bool,
        /// Payload.
        data: &'a [u8],
    },
    /// 10: S→R, end of the current file and the BLAKE3 of the whole file
    /// (empty for a file sent from offset 0 when both agreed
    /// `UNHASHED_FRESH`).
    FileEnd {
        /// BLAKE3 of the complete file, or `None` (encoded as empty bytes).
        hash: Option<[u8; 32]>,
    },
    /// 11: S→R, the receiver's copy of this entry was verified complete; nothing to send.
    FileSkip {
        /// Entry index.
        index: u64,
    },
    /// 12: S→R, all entries sent.
    Done,
    /// 13: R→S, everything was verified and put in place.
    DoneAck,
    /// 14: either way, the sender of this stops and says why (encrypted, so it may be specific).
    Abort {
        /// Human-readable reason.
        reason: String,
    },
    /// 15: S→R, end of a text or stream, with its length and BLAKE3.
    StreamEnd {
        /// Total bytes.
        len: u64,
        /// BLAKE3 of all bytes.
        hash: [u8; 32],
    },
    /// 18: R→S, do not send entry `index`: the receiver keeps the file it has
    /// (only when both set the SKIP capability; before Ready).
    Skip {
        /// Entry index.
        index: u64,
    },
    /// 17: either way, "still here" while a side has nothing else to send
    /// (only when both set the KEEPALIVE capability). Ignored by the machines.
    KeepAlive,
    /// 19: either way, the public identity of the side that sends it (only
    /// when both set the IDENTITY capability; at most once, as the first
    /// message of its direction).
    Identity {
        /// The encoded public identity ([`crate::identity::PUBLIC_LEN`] bytes).
        public: &'a [u8],
        /// Its proof for this session ([`crate::identity::Identity::prove`]).
        proof: &'a [u8],
    },
    /// 16: either way, like Abort with a reason code (only when both sides
    /// set the STOP_CODES capability).
    Stop {
        /// Why.
        code: StopCode,
        /// Human-readable reason.
        reason: String,
    },
}

fn kind_code(k: OfferKind) -> u64 {
    match k {
        OfferKind::Files => 1,
        OfferKind::Text => 2,
        OfferKind::Stream => 3,
    }
}

fn put_entry(out: &mut Vec<u8>, e: &Entry) {
    put_varuint(out, e.index);
    put_varuint(out, if e.kind == EntryKind::File { 1 } else { 2 });
    put_bytes(out, &e.path);
    put_varuint(out, e.size);
    put_varuint(out, u64::from(e.executable));
    put_varuint(out, e.mtime);
}

fn read_entry(r: &mut Reader<'_>) -> Result<Entry> {
    let index = r.varuint("entry.index")?;
    let kind = match r.varuint("entry.kind")? {
        1 => EntryKind::File,
        2 => EntryKind::Dir,
        _ => return Err(Error::Decode { what: "entry.kind", why: "unknown kind" }),
    };
    let path = r.bytes("entry.path", MAX_PATH)?.to_vec();
    let size = r.varuint("entry.size")?;
    let executable = match r.varuint("entry.flags")? {
        0 => false,
        1 => true,
        _ => return Err(Error::Decode { what: "entry.flags", why: "unknown flag bits" }),
    };
    let mtime = r.varuint("entry.mtime")?;
    if kind == EntryKind::Dir && (size != 0 || executable) {
        return Err(Error::Decode { what: "entry", why: "a folder has no size or executable bit" });
    }
    Ok(Entry { index, kind, path, size, executable, mtime })
}

impl TransferMsg<'_> {
    /// Appends the encoding of this message.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            TransferMsg::Offer(o) => {
                put_varuint(out, 1);
                put_varuint(out, kind_code(o.kind));
                put_varuint(out, o.files);
                put_varuint(out, o.dirs);
                put_varuint(out, o.bytes);
                put_varuint(out, o.preview.len() as u64);
                for p in &o.preview {
                    put_bytes(out, p);
                }
            }
            TransferMsg::Accept => put_varuint(out, 2),
            TransferMsg::Refuse => put_varuint(out, 3),
            TransferMsg::Entry(e) => {
                put_varuint(out, 4);
                put_entry(out, e);
            }
            TransferMsg::ManifestEnd => put_varuint(out, 5),
            TransferMsg::Have { index, len, hash } => {
                put_varuint(out, 6);
                put_varuint(out, *index);
                put_varuint(out, *len);
                put_bytes(out, hash);
            }
            TransferMsg::Ready => put_varuint(out, 7),
            TransferMsg::FileStart { entry, offset } => {
                put_varuint(out, 8);
                put_entry(out, entry);
                put_varuint(out, *offset);
            }
            TransferMsg::Chunk { compressed, data } => {
                put_varuint(out, 9);
                put_varuint(out, u64::from(*compressed));
                put_bytes(out, data);
            }
            TransferMsg::FileEnd { hash } => {
                put_varuint(out, 10);
                put_bytes(out, hash.as_ref().map_or(&[][..], |h| &h[..]));
            }
            TransferMsg::FileSkip { index } => {
                put_varuint(out, 11);
                put_varuint(out, *index);
            }
            TransferMsg::Done => put_varuint(out, 12),
            TransferMsg::DoneAck => put_varuint(out, 13),
            TransferMsg::Abort { reason } => {
                put_varuint(out, 14);
                let b = reason.as_bytes();
                put_bytes(out, &b[..b.len().min(MAX_REASON)]);
            }
            TransferMsg::StreamEnd { len, hash } => {
                put_varuint(out, 15);
                put_varuint(out, *len);
                put_bytes(out, hash);
            }
            TransferMsg::KeepAlive => put_varuint(out, 17),
            TransferMsg::Skip { index } => {
                put_varuint(out, 18);
                put_varuint(out, *index);
            }
            TransferMsg::Identity { public, proof } => {
                put_varuint(out, 19);
                put_bytes(out, public);
                put_bytes(out, proof);
            }
            TransferMsg::Stop { code, reason } => {
                put_varuint(out, 16);
                put_varuint(out, code.0);
                let b = reason.as_bytes();
                put_bytes(out, &b[..b.len().min(MAX_REASON)]);
            }
        }
    }
}

/// How many bytes of file data a chunk carries, read from the chunk itself
/// before anything is decompressed.
///
/// A raw chunk carries its own length. A zstd chunk must declare its content
/// size in its frame header (RFC 8878 §3.1.1.1.4, `Frame_Content_Size`), at
/// most [`MAX_CHUNK`]: this is what lets a receiver refuse a chunk that would
/// take a file past its announced size while it is still a few bytes of
/// compressed input, so a record of many tiny frames can never make it
/// decompress, or hold, more than the file may contain (PROTOCOL.md §8). The
/// decompressor must then produce exactly this many bytes.
pub fn chunk_data_len(compressed: bool, data: &[u8]) -> Result<u64> {
    if !compressed {
        return Ok(data.len() as u64);
    }
    match zstd_safe::get_frame_content_size(data) {
        Ok(Some(n)) if n <= MAX_CHUNK as u64 => Ok(n),
        Ok(Some(n)) => Err(Error::TooLarge { what: "a compressed chunk's declared content", len: n, cap: MAX_CHUNK as u64 }),
        Ok(None) => Err(Error::Decode { what: "compressed chunk", why: "the zstd frame header does not declare its content size" }),
        Err(_) => Err(Error::Decode { what: "compressed chunk", why: "not a zstd frame header" }),
    }
}

/// Parses the message at `*cursor` of `record` and moves the cursor past it;
/// `Ok(None)` at the end of the record. The machines read a record one
/// message per call this way, so nothing is queued per message.
fn next_message<'r>(record: &'r [u8], cursor: &mut usize) -> Result<Option<TransferMsg<'r>>> {
    let rest = record.get(*cursor..).unwrap_or_default();
    let mut it = Messages::new(rest);
    let m = it.next();
    *cursor += rest.len() - it.remaining();
    m
}

/// Bytes a chunk message adds in front of its payload, at most.
pub const CHUNK_HEADER_MAX: usize = 1 + 1 + 5;

/// Iterates over the messages of one record plaintext.
#[derive(Debug)]
pub struct Messages<'a> {
    r: Reader<'a>,
}

impl<'a> Messages<'a> {
    /// Messages of `plaintext`.
    pub fn new(plaintext: &'a [u8]) -> Self {
        Self { r: Reader::new(plaintext) }
    }

    /// Bytes not parsed yet.
    pub fn remaining(&self) -> usize {
        self.r.remaining()
    }

    /// The next message, `Ok(None)` at the end of the record.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<TransferMsg<'a>>> {
        if self.r.is_empty() {
            return Ok(None);
        }
        let r = &mut self.r;
        let m = match r.varuint("message type")? {
            1 => {
                let kind = match r.varuint("offer.kind")? {
                    1 => OfferKind::Files,
                    2 => OfferKind::Text,
                    3 => OfferKind::Stream,
                    _ => return Err(Error::Decode { what: "offer.kind", why: "unknown kind" }),
                };
                let files = r.varuint("offer.files")?;
                let dirs = r.varuint("offer.dirs")?;
                let bytes = r.varuint("offer.bytes")?;
                let n = r.varuint("offer.preview count")?;
                if n > MAX_PREVIEW as u64 {
                    return Err(Error::TooMany { what: "names in the offer", count: n, cap: MAX_PREVIEW as u64 });
                }
                let mut preview = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    preview.push(r.bytes("offer.preview", MAX_PATH)?.to_vec());
                }
                TransferMsg::Offer(Offer { kind, files, dirs, bytes, preview })
            }
            2 => TransferMsg::Accept,
            3 => TransferMsg::Refuse,
            4 => TransferMsg::Entry(read_entry(r)?),
            5 => TransferMsg::ManifestEnd,
            6 => TransferMsg::Have { index: r.varuint("have.index")?, len: r.varuint("have.len")?, hash: r.array("have.hash")? },
            7 => TransferMsg::Ready,
            8 => TransferMsg::FileStart { entry: read_entry(r)?, offset: r.varuint("fileStart.offset")? },
            9 => {
                let compressed = match r.varuint("chunk.flags")? {
                    0 => false,
                    1 => true,
                    _ => return Err(Error::Decode { what: "chunk.flags", why: "unknown flag bits" }),
                };
                TransferMsg::Chunk { compressed, data: r.bytes("chunk.data", MAX_CHUNK)? }
            }
            10 => TransferMsg::FileEnd {
                hash: match r.bytes("fileEnd.hash", 32)? {
                    [] => None,
                    h => Some(h.try_into().map_err(|_| Error::Decode { what: "fileEnd.hash", why: "neither 32 bytes nor empty" })?),
                },
            },
            11 => TransferMsg::FileSkip { index: r.varuint("fileSkip.index")? },
            12 => TransferMsg::Done,
            13 => TransferMsg::DoneAck,
            14 => TransferMsg::Abort { reason: String::from_utf8_lossy(r.bytes("abort.reason", MAX_REASON)?).into_owned() },
            15 => TransferMsg::StreamEnd { len: r.varuint("streamEnd.len")?, hash: r.array("streamEnd.hash")? },
            17 => TransferMsg::KeepAlive,
            18 => TransferMsg::Skip { index: r.varuint("skip.index")? },
            19 => {
                let public = r.bytes("identity", crate::identity::PUBLIC_LEN)?;
                let proof = r.bytes("identity proof", crate::identity::PROOF_LEN)?;
                if public.len() != crate::identity::PUBLIC_LEN || proof.len() != crate::identity::PROOF_LEN {
                    return Err(Error::Decode { what: "identity", why: "a public identity is 1280 bytes and its proof 64" });
                }
                TransferMsg::Identity { public, proof }
            }
            16 => TransferMsg::Stop {
                code: StopCode(r.varuint("stop.code")?),
                reason: String::from_utf8_lossy(r.bytes("stop.reason", MAX_REASON)?).into_owned(),
            },
            _ => return Err(Error::Decode { what: "transfer message", why: "unknown type" }),
        };
        Ok(Some(m))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_entry() -> impl Strategy<Value = Entry> {
        (any::<u64>(), any::<bool>(), proptest::collection::vec(any::<u8>(), 0..64), any::<u64>(), any::<bool>(), any::<u64>()).prop_map(
            |(index, f, path, size, x, mtime)| {
                if f {
                    Entry { index, kind: EntryKind::File, path, size, executable: x, mtime }
                } else {
                    Entry { index, kind: EntryKind::Dir, path, size: 0, executable: false, mtime }
                }
            },
        )
    }

    fn arb_msg() -> impl Strategy<Value = TransferMsg<'static>> {
        prop_oneof![
            (
                0u8..3,
                any::<u64>(),
                any::<u64>(),
                any::<u64>(),
                proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..20), 0..=MAX_PREVIEW)
            )
                .prop_map(|(k, files, dirs, bytes, preview)| {
                    let kind = [OfferKind::Files, OfferKind::Text, OfferKind::Stream][k as usize];
                    TransferMsg::Offer(Offer { kind, files, dirs, bytes, preview })
                }),
            Just(TransferMsg::Accept),
            Just(TransferMsg::Refuse),
            arb_entry().prop_map(TransferMsg::Entry),
            Just(TransferMsg::ManifestEnd),
            (any::<u64>(), any::<u64>(), any::<[u8; 32]>()).prop_map(|(index, len, hash)| TransferMsg::Have { index, len, hash }),
            Just(TransferMsg::Ready),
            (arb_entry(), any::<u64>()).prop_map(|(entry, offset)| TransferMsg::FileStart { entry, offset }),
            (any::<bool>(), proptest::collection::vec(any::<u8>(), 0..100))
                .prop_map(|(compressed, d)| TransferMsg::Chunk { compressed, data: Box::leak(d.into_boxed_slice()) }),
            proptest::option::of(any::<[u8; 32]>()).prop_map(|hash| TransferMsg::FileEnd { hash }),
            any::<u64>().prop_map(|index| TransferMsg::FileSkip { index }),
            Just(TransferMsg::Done),
            Just(TransferMsg::DoneAck),
            Just(TransferMsg::KeepAlive),
            any::<u64>().prop_map(|index| TransferMsg::Skip { index }),
            any::<u8>().prop_map(|b| TransferMsg::Identity {
                public: Box::leak(vec![b; crate::identity::PUBLIC_LEN].into_boxed_slice()),
                proof: Box::leak(vec![b; crate::identity::PROOF_LEN].into_boxed_slice()),
            }),
            "[a-z ]{0,40}".prop_map(|reason| TransferMsg::Abort { reason }),
            (any::<u64>(), any::<[u8; 32]>()).prop_map(|(len, hash)| TransferMsg::StreamEnd { len, hash }),
            (any::<u64>(), "[a-z ]{0,40}").prop_map(|(code, reason)| TransferMsg::Stop { code: StopCode(code), reason }),
        ]
    }

    proptest! {
        #[test]
        fn round_trip_several_per_record(msgs in proptest::collection::vec(arb_msg(), 1..8)) {
            let mut buf = Vec::new();
            for m in &msgs {
                m.encode(&mut buf);
            }
            let mut it = Messages::new(&buf);
            for m in &msgs {
                let got = it.next().unwrap();
                prop_assert_eq!(got.as_ref(), Some(m));
            }
            prop_assert_eq!(it.next().unwrap(), None);
        }

        #[test]
        fn arbitrary_bytes_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut it = Messages::new(&buf);
            for _ in 0..600 {
                match it.next() {
                    Ok(Some(_)) => {}
                    _ => break,
                }
            }
        }
    }

    #[test]
    fn caps_are_enforced_before_allocation() {
        let mut buf = Vec::new();
        put_varuint(&mut buf, 1);
        for v in [1u64, 0, 0, 0, 1 << 40] {
            put_varuint(&mut buf, v);
        }
        assert!(matches!(Messages::new(&buf).next(), Err(Error::TooMany { count, .. }) if count == 1 << 40));
        let mut buf = Vec::new();
        put_varuint(&mut buf, 9);
        put_varuint(&mut buf, 0);
        put_varuint(&mut buf, (MAX_CHUNK + 1) as u64);
        assert!(matches!(Messages::new(&buf).next(), Err(Error::TooLarge { .. })));
    }

    #[test]
    fn chunk_lengths_come_from_the_frame_header() {
        assert_eq!(chunk_data_len(false, b"abc"), Ok(3));
        // What the sender's one-shot compressor emits declares its size.
        let z = zstd::bulk::compress(&vec![7u8; MAX_CHUNK], 1).unwrap();
        assert!(z.len() < 100, "{} bytes", z.len());
        assert_eq!(chunk_data_len(true, &z), Ok(MAX_CHUNK as u64));
        assert_eq!(chunk_data_len(true, &zstd::bulk::compress(b"", 1).unwrap()), Ok(0));
        // Over the cap, declared: refused from the header alone.
        let big = zstd::bulk::compress(&vec![0u8; MAX_CHUNK + 1], 1).unwrap();
        assert!(matches!(chunk_data_len(true, &big), Err(Error::TooLarge { len, .. }) if len == MAX_CHUNK as u64 + 1));
        // A streamed frame does not declare its size: refused.
        let streamed = zstd::stream::encode_all(std::io::Read::take(std::io::repeat(1), 64 << 10), 1).unwrap();
        assert!(matches!(chunk_data_len(true, &streamed), Err(Error::Decode { .. })));
        // Not zstd, truncated header, empty.
        for bad in [&b"not zstd at all"[..], &z[..5], &[][..]] {
            assert!(matches!(chunk_data_len(true, bad), Err(Error::Decode { .. })), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn chunk_data_len_never_panics(compressed in any::<bool>(), data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = chunk_data_len(compressed, &data);
        }
    }

    #[test]
    fn file_end_encodings_match_protocol_md() {
        let mut b = Vec::new();
        TransferMsg::FileEnd { hash: None }.encode(&mut b);
        assert_eq!(hex::encode(&b), "0a00");
        assert_eq!(Messages::new(&b).next().unwrap(), Some(TransferMsg::FileEnd { hash: None }));
        b.clear();
        TransferMsg::FileEnd { hash: Some([0xab; 32]) }.encode(&mut b);
        assert_eq!(hex::encode(&b), format!("0a20{}", "ab".repeat(32)));
        // Any length but 0 and 32 is refused.
        for n in [1u8, 31, 33] {
            let mut bad = vec![10, n];
            bad.resize(2 + n as usize, 0);
            assert!(Messages::new(&bad).next().is_err(), "{n}");
        }
    }

    #[test]
    fn stop_encoding_matches_protocol_md() {
        let mut b = Vec::new();
        TransferMsg::Stop { code: StopCode::EXISTS, reason: "a.txt already exists".into() }.encode(&mut b);
        assert_eq!(hex::encode(&b), "100114612e74787420616c726561647920657869737473");
        assert_eq!(
            Messages::new(&b).next().unwrap(),
            Some(TransferMsg::Stop { code: StopCode::EXISTS, reason: "a.txt already exists".into() })
        );
    }

    #[test]
    fn folder_with_size_is_malformed() {
        let mut buf = Vec::new();
        put_varuint(&mut buf, 4);
        for v in [0u64, 2] {
            put_varuint(&mut buf, v);
        }
        put_bytes(&mut buf, b"d");
        for v in [5u64, 0, 0] {
            put_varuint(&mut buf, v);
        }
        assert!(Messages::new(&buf).next().is_err());
    }
}
