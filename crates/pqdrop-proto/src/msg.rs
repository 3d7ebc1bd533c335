//! Handshake messages and the frame that carries every message on the wire.
//!
//! A frame is `IxiVarUInt(type) || IxiVarUInt(body_len) || body`. The body length
//! is capped per type before anything is buffered: handshake bodies at
//! [`MAX_HANDSHAKE_BODY`], records at [`MAX_RECORD_BODY`].
//!
//! The handshake messages follow Ixian's pattern (PROTOCOL.md §4):
//! requestAdd2 (40), acceptAdd2 (41) and keys2 (42), then pqdrop's own
//! key confirmation (43), abort (44) and the encrypted records (50, 51).

use crate::codec::{decode_varuint_partial, put_bytes, put_varuint, Partial, Reader};
use crate::primitives::{MLKEM768_CT_LEN, MLKEM768_EK_LEN, X25519_LEN};
use crate::{Error, Result};

/// The protocol version this implementation speaks (and the only one so far).
pub const PROTOCOL_VERSION: u64 = 1;
/// The oldest version this implementation accepts.
pub const MIN_PROTOCOL_VERSION: u64 = 1;

/// Cap on a handshake message body. acceptAdd2, the largest, is about 1.3 KB.
pub const MAX_HANDSHAKE_BODY: usize = 4096;
/// Largest plaintext a record may carry.
pub const MAX_RECORD_PLAINTEXT: usize = 1 << 20;
/// Cap on a record body: the plaintext plus up to two AEAD tags (cascade).
pub const MAX_RECORD_BODY: usize = MAX_RECORD_PLAINTEXT + 32;

/// Wire message type codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MsgType(pub u64);

impl MsgType {
    /// requestAdd2: the requester (who typed the code) opens the handshake.
    pub const REQUEST_ADD2: Self = Self(40);
    /// acceptAdd2: the accepter (who made the code) answers with its CPace value and ML-KEM key.
    pub const ACCEPT_ADD2: Self = Self(41);
    /// keys2: the requester's CPace value and ML-KEM ciphertext.
    pub const KEYS2: Self = Self(42);
    /// Explicit key confirmation (an HMAC over the transcript).
    pub const CONFIRM: Self = Self(43);
    /// The handshake was abandoned; carries an [`AbortReason`].
    pub const ABORT: Self = Self(44);
    /// contactHello: a contact transfer's initiator opens the handshake (PROTOCOL.md §13.7).
    pub const CONTACT_HELLO: Self = Self(45);
    /// contactAnswer: the responder's ephemeral key and ML-KEM ciphertexts.
    pub const CONTACT_ANSWER: Self = Self(46);
    /// An encrypted record that is not the last of its direction.
    pub const RECORD: Self = Self(50);
    /// The last encrypted record of its direction (STREAM's final chunk).
    pub const RECORD_FINAL: Self = Self(51);

    /// The body cap for this type; `None` for an unknown type.
    pub fn body_cap(self) -> Option<usize> {
        match self {
            Self::REQUEST_ADD2
            | Self::ACCEPT_ADD2
            | Self::KEYS2
            | Self::CONFIRM
            | Self::ABORT
            | Self::CONTACT_HELLO
            | Self::CONTACT_ANSWER => Some(MAX_HANDSHAKE_BODY),
            Self::RECORD | Self::RECORD_FINAL => Some(MAX_RECORD_BODY),
            _ => None,
        }
    }
}

/// Why a handshake was abandoned. Sent in clear, so it says nothing secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortReason(pub u64);

impl AbortReason {
    /// The accepter could not verify the requester's key confirmation: the codes differ.
    pub const KEY_CONFIRMATION: Self = Self(1);
    /// No common protocol version.
    pub const INCOMPATIBLE_VERSION: Self = Self(2);
    /// The peer sent something malformed or out of order.
    pub const PROTOCOL_ERROR: Self = Self(3);
    /// Contact handshake: the responder does not accept the initiator's
    /// identity (not one of its contacts, or not the one it waits for).
    pub const UNKNOWN_IDENTITY: Self = Self(4);
}

/// Capability bits, exchanged in acceptAdd2 and keys2. Unknown bits are ignored,
/// so later versions can add bits without breaking older peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Capabilities(pub u64);

impl Capabilities {
    /// The sender of these capabilities has AES hardware and is willing to use AES-256-GCM.
    pub const AES_256_GCM: u64 = 1 << 0;
    /// ChaCha20-Poly1305 (mandatory to implement; always assumed).
    pub const CHACHA20_POLY1305: u64 = 1 << 1;
    /// Requests the Ixian cascade: AES-256-GCM, then ChaCha20-Poly1305 over it.
    pub const CASCADE: u64 = 1 << 2;
    /// Can resume an interrupted transfer.
    pub const RESUME: u64 = 1 << 3;
    /// Can decompress zstd chunks.
    pub const ZSTD: u64 = 1 << 4;
    /// Stop messages with a reason code (transfer message 16, PROTOCOL.md §8).
    pub const STOP_CODES: u64 = 1 << 5;
    /// KeepAlive messages (transfer message 17) while a side has nothing else
    /// to send, so a side can bound how long the other may stay silent.
    pub const KEEPALIVE: u64 = 1 << 6;
    /// The receiver may ask the sender to skip an entry (transfer message 18),
    /// to keep a file it already has without proving anything about it.
    pub const SKIP: u64 = 1 << 7;
    /// A file sent from its first byte ends with an empty FileEnd hash: the
    /// record layer's authentication is its integrity check (PROTOCOL.md §8).
    pub const UNHASHED_FRESH: u64 = 1 << 8;
    /// Identity messages (transfer message 19): a side may tell the other its
    /// public identity inside the session, so either can save the other as a
    /// contact (PROTOCOL.md §8, §13.4).
    pub const IDENTITY: u64 = 1 << 9;
    /// What an absent capabilities field means.
    pub const DEFAULTS: Self = Self(Self::CHACHA20_POLY1305);

    /// True if every bit of `bits` is set.
    pub fn has(self, bits: u64) -> bool {
        self.0 & bits == bits
    }
}

/// What two peers agreed on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Agreed {
    /// The record cipher.
    pub cipher: DataCipher,
    /// Both can resume.
    pub resume: bool,
    /// Both can do zstd.
    pub zstd: bool,
    /// Both send Stop (16) with a reason code instead of Abort (14).
    pub stop_codes: bool,
    /// Both send KeepAlive (17) when idle, and time out a silent peer.
    pub keepalive: bool,
    /// The receiver may send Skip (18).
    pub skip: bool,
    /// FileEnd of a file sent from offset 0 carries no hash.
    pub unhashed_fresh: bool,
    /// Either side may send its public identity (Identity, 19).
    pub identity: bool,
}

/// The cipher the record layer uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataCipher {
    /// AES-256-GCM.
    Aes256Gcm,
    /// ChaCha20-Poly1305.
    ChaCha20Poly1305,
    /// AES-256-GCM then ChaCha20-Poly1305 over its output, each with its own key.
    Cascade,
}

impl Agreed {
    /// The negotiation rule, the same on both sides: cascade if either side asks
    /// for it; otherwise AES-256-GCM if both have AES hardware; otherwise
    /// ChaCha20-Poly1305. Optional features need both bits.
    pub fn negotiate(a: Capabilities, b: Capabilities) -> Self {
        let cipher = if a.has(Capabilities::CASCADE) || b.has(Capabilities::CASCADE) {
            DataCipher::Cascade
        } else if a.has(Capabilities::AES_256_GCM) && b.has(Capabilities::AES_256_GCM) {
            DataCipher::Aes256Gcm
        } else {
            DataCipher::ChaCha20Poly1305
        };
        Self {
            cipher,
            resume: a.has(Capabilities::RESUME) && b.has(Capabilities::RESUME),
            zstd: a.has(Capabilities::ZSTD) && b.has(Capabilities::ZSTD),
            stop_codes: a.has(Capabilities::STOP_CODES) && b.has(Capabilities::STOP_CODES),
            keepalive: a.has(Capabilities::KEEPALIVE) && b.has(Capabilities::KEEPALIVE),
            skip: a.has(Capabilities::SKIP) && b.has(Capabilities::SKIP),
            unhashed_fresh: a.has(Capabilities::UNHASHED_FRESH) && b.has(Capabilities::UNHASHED_FRESH),
            identity: a.has(Capabilities::IDENTITY) && b.has(Capabilities::IDENTITY),
        }
    }
}

/// requestAdd2 (40): version and a fresh 32-byte nonce that goes into the CPace sid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestAdd2 {
    /// Highest protocol version the requester speaks.
    pub version: u64,
    /// Requester's fresh randomness for the session id.
    pub nonce: [u8; 32],
}

/// acceptAdd2 (41).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptAdd2 {
    /// The version the accepter chose (at most the requester's).
    pub version: u64,
    /// The accepter's CPace public value Ya (an X25519 u-coordinate).
    pub ecdh_pub_key: [u8; X25519_LEN],
    /// The accepter's ML-KEM-768 encapsulation key.
    pub mlkem_pub_key: Vec<u8>,
    /// 32 random bytes: HKDF salt of the AES key, and the accepter's share of the sid.
    pub aes_salt: [u8; 32],
    /// Capabilities; `None` (field absent) means [`Capabilities::DEFAULTS`].
    pub capabilities: Option<Capabilities>,
}

/// keys2 (42).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys2 {
    /// The requester's CPace public value Yb.
    pub ecdh_pub_key: [u8; X25519_LEN],
    /// ML-KEM-768 ciphertext encapsulated to the accepter's key.
    pub mlkem_ciphertext: Vec<u8>,
    /// 32 random bytes: HKDF salt of the ChaCha20-Poly1305 key.
    pub chacha_salt: [u8; 32],
    /// Capabilities; `None` means the defaults.
    pub capabilities: Option<Capabilities>,
}

/// contactHello (45): the initiator of a contact transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactHello {
    /// Highest protocol version the initiator speaks.
    pub version: u64,
    /// The initiator's fresh X25519 public key.
    pub ecdh_pub_key: [u8; X25519_LEN],
    /// ML-KEM-768 ciphertext to the responder's static encapsulation key.
    pub mlkem_ciphertext: Vec<u8>,
    /// A fresh ML-KEM-768 encapsulation key for this session only.
    pub mlkem_pub_key: Vec<u8>,
    /// 32 random bytes: HKDF salt of the ChaCha20-Poly1305 keys.
    pub chacha_salt: [u8; 32],
    /// The initiator's capabilities.
    pub capabilities: Capabilities,
    /// The initiator's public identity, and optionally an invitation ticket,
    /// encrypted to the responder (1280 + 16 bytes, or 1280 + 56 + 16).
    pub sealed_identity: Vec<u8>,
}

/// contactAnswer (46): the responder of a contact transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactAnswer {
    /// The version the responder chose.
    pub version: u64,
    /// The responder's fresh X25519 public key.
    pub ecdh_pub_key: [u8; X25519_LEN],
    /// ML-KEM-768 ciphertext to the initiator's fresh encapsulation key.
    pub mlkem_ciphertext: Vec<u8>,
    /// ML-KEM-768 ciphertext to the initiator's static encapsulation key.
    pub static_ciphertext: Vec<u8>,
    /// 32 random bytes: HKDF salt of the AES-256-GCM keys.
    pub aes_salt: [u8; 32],
    /// The responder's capabilities.
    pub capabilities: Capabilities,
}

/// Largest sealed identity in a contactHello: a public identity, an
/// invitation ticket (PROTOCOL.md §13.8) and the tag.
pub const SEALED_IDENTITY_LEN: usize = crate::identity::PUBLIC_LEN + crate::invite::TICKET_LEN + 16;

/// A decoded handshake-phase message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// 40.
    RequestAdd2(RequestAdd2),
    /// 41.
    AcceptAdd2(AcceptAdd2),
    /// 42.
    Keys2(Keys2),
    /// 43: HMAC-SHA256 key confirmation tag.
    Confirm([u8; 32]),
    /// 44.
    Abort(AbortReason),
    /// 45.
    ContactHello(ContactHello),
    /// 46.
    ContactAnswer(ContactAnswer),
}

fn put_caps(out: &mut Vec<u8>, caps: Option<Capabilities>) {
    if let Some(c) = caps {
        put_varuint(out, c.0);
    }
}

fn read_caps(r: &mut Reader<'_>) -> Result<Option<Capabilities>> {
    if r.is_empty() {
        Ok(None)
    } else {
        Ok(Some(Capabilities(r.varuint("capabilities")?)))
    }
}

impl Message {
    /// The wire type of this message.
    pub fn msg_type(&self) -> MsgType {
        match self {
            Message::RequestAdd2(_) => MsgType::REQUEST_ADD2,
            Message::AcceptAdd2(_) => MsgType::ACCEPT_ADD2,
            Message::Keys2(_) => MsgType::KEYS2,
            Message::Confirm(_) => MsgType::CONFIRM,
            Message::Abort(_) => MsgType::ABORT,
            Message::ContactHello(_) => MsgType::CONTACT_HELLO,
            Message::ContactAnswer(_) => MsgType::CONTACT_ANSWER,
        }
    }

    /// Encodes the body (without the frame header).
    pub fn encode_body(&self, out: &mut Vec<u8>) {
        match self {
            Message::RequestAdd2(m) => {
                put_varuint(out, m.version);
                put_bytes(out, &m.nonce);
            }
            Message::AcceptAdd2(m) => {
                put_varuint(out, m.version);
                put_bytes(out, &m.ecdh_pub_key);
                put_bytes(out, &m.mlkem_pub_key);
                put_bytes(out, &m.aes_salt);
                put_caps(out, m.capabilities);
            }
            Message::Keys2(m) => {
                put_bytes(out, &m.ecdh_pub_key);
                put_bytes(out, &m.mlkem_ciphertext);
                put_bytes(out, &m.chacha_salt);
                put_caps(out, m.capabilities);
            }
            Message::Confirm(tag) => put_bytes(out, tag),
            Message::Abort(r) => put_varuint(out, r.0),
            Message::ContactHello(m) => {
                m.encode_bound(out);
                put_bytes(out, &m.sealed_identity);
            }
            Message::ContactAnswer(m) => {
                put_varuint(out, m.version);
                put_bytes(out, &m.ecdh_pub_key);
                put_bytes(out, &m.mlkem_ciphertext);
                put_bytes(out, &m.static_ciphertext);
                put_bytes(out, &m.aes_salt);
                put_varuint(out, m.capabilities.0);
            }
        }
    }

    /// Encodes a whole frame (type, length, body) and appends it to `out`.
    pub fn encode_frame(&self, out: &mut Vec<u8>) {
        let mut body = Vec::with_capacity(1300);
        self.encode_body(&mut body);
        put_varuint(out, self.msg_type().0);
        put_bytes(out, &body);
    }

    /// Decodes a handshake message body of type `t`. Total: every input gives a
    /// message or an error, and trailing bytes are an error.
    pub fn decode(t: MsgType, body: &[u8]) -> Result<Self> {
        let mut r = Reader::new(body);
        let m = match t {
            MsgType::REQUEST_ADD2 => {
                Message::RequestAdd2(RequestAdd2 { version: r.varuint("requestAdd2.version")?, nonce: r.array("requestAdd2.nonce")? })
            }
            MsgType::ACCEPT_ADD2 => Message::AcceptAdd2(AcceptAdd2 {
                version: r.varuint("acceptAdd2.version")?,
                ecdh_pub_key: r.array("acceptAdd2.ecdhPubKey")?,
                mlkem_pub_key: r.bytes("acceptAdd2.mlkemPubKey", MLKEM768_EK_LEN)?.to_vec(),
                aes_salt: r.array("acceptAdd2.aesSalt")?,
                capabilities: read_caps(&mut r)?,
            }),
            MsgType::KEYS2 => Message::Keys2(Keys2 {
                ecdh_pub_key: r.array("keys2.ecdhPubKey")?,
                mlkem_ciphertext: r.bytes("keys2.mlkemCiphertext", MLKEM768_CT_LEN)?.to_vec(),
                chacha_salt: r.array("keys2.chaChaSalt")?,
                capabilities: read_caps(&mut r)?,
            }),
            MsgType::CONFIRM => Message::Confirm(r.array("confirm.tag")?),
            MsgType::ABORT => Message::Abort(AbortReason(r.varuint("abort.reason")?)),
            MsgType::CONTACT_HELLO => Message::ContactHello(ContactHello {
                version: r.varuint("contactHello.version")?,
                ecdh_pub_key: r.array("contactHello.ecdhPubKey")?,
                mlkem_ciphertext: r.bytes("contactHello.mlkemCiphertext", MLKEM768_CT_LEN)?.to_vec(),
                mlkem_pub_key: r.bytes("contactHello.mlkemPubKey", MLKEM768_EK_LEN)?.to_vec(),
                chacha_salt: r.array("contactHello.chaChaSalt")?,
                capabilities: Capabilities(r.varuint("contactHello.capabilities")?),
                sealed_identity: r.bytes("contactHello.sealedIdentity", SEALED_IDENTITY_LEN)?.to_vec(),
            }),
            MsgType::CONTACT_ANSWER => Message::ContactAnswer(ContactAnswer {
                version: r.varuint("contactAnswer.version")?,
                ecdh_pub_key: r.array("contactAnswer.ecdhPubKey")?,
                mlkem_ciphertext: r.bytes("contactAnswer.mlkemCiphertext", MLKEM768_CT_LEN)?.to_vec(),
                static_ciphertext: r.bytes("contactAnswer.staticCiphertext", MLKEM768_CT_LEN)?.to_vec(),
                aes_salt: r.array("contactAnswer.aesSalt")?,
                capabilities: Capabilities(r.varuint("contactAnswer.capabilities")?),
            }),
            _ => return Err(Error::UnexpectedMessage("unknown message type")),
        };
        r.finish("handshake message")?;
        Ok(m)
    }
}

impl ContactHello {
    /// The body up to (not including) `sealedIdentity`: the associated data
    /// of the sealed identity, so every clear field is bound to it.
    pub fn encode_bound(&self, out: &mut Vec<u8>) {
        put_varuint(out, self.version);
        put_bytes(out, &self.ecdh_pub_key);
        put_bytes(out, &self.mlkem_ciphertext);
        put_bytes(out, &self.mlkem_pub_key);
        put_bytes(out, &self.chacha_salt);
        put_varuint(out, self.capabilities.0);
    }
}

/// A frame header, as parsed from a possibly incomplete buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Message type.
    pub msg_type: MsgType,
    /// Body length (already checked against the type's cap).
    pub body_len: usize,
    /// Length of the header itself.
    pub header_len: usize,
}

impl FrameHeader {
    /// Total frame length.
    pub fn frame_len(&self) -> usize {
        self.header_len + self.body_len
    }
}

/// Parses a frame header from the start of `buf`. Returns `Ok(None)` when more
/// bytes are needed. Unknown types and over-long bodies are errors before any
/// body byte is buffered, so a peer cannot make us allocate.
pub fn parse_frame_header(buf: &[u8]) -> Result<Option<FrameHeader>> {
    let (t, n1) = match decode_varuint_partial(buf)? {
        Partial::Done(v, n) => (MsgType(v), n),
        Partial::NeedMore => return Ok(None),
    };
    let cap = t.body_cap().ok_or(Error::UnexpectedMessage("unknown frame type"))?;
    let rest = buf.get(n1..).unwrap_or_default();
    let (len, n2) = match decode_varuint_partial(rest)? {
        Partial::Done(v, n) => (v, n),
        Partial::NeedMore => return Ok(None),
    };
    if len > cap as u64 {
        return Err(Error::TooLarge { what: "frame body", len, cap: cap as u64 });
    }
    Ok(Some(FrameHeader { msg_type: t, body_len: len as usize, header_len: n1 + n2 }))
}

/// Writes a frame header for `t` with a body of `body_len` bytes into the end of
/// `out` (right-aligned), returning the offset where it starts. Used by the
/// record layer to put the header just before an in-place ciphertext.
pub fn write_header_before(out: &mut [u8], t: MsgType, body_len: usize) -> Result<usize> {
    let n1 = crate::codec::varuint_len(t.0);
    let n2 = crate::codec::varuint_len(body_len as u64);
    let start = out.len().checked_sub(n1 + n2).ok_or(Error::Misuse("no headroom for frame header"))?;
    crate::codec::write_varuint(&mut out[start..], t.0)?;
    crate::codec::write_varuint(&mut out[start + n1..], body_len as u64)?;
    Ok(start)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(m: &Message) {
        let mut f = Vec::new();
        m.encode_frame(&mut f);
        let h = parse_frame_header(&f).unwrap().unwrap();
        assert_eq!(h.frame_len(), f.len());
        let back = Message::decode(h.msg_type, &f[h.header_len..]).unwrap();
        assert_eq!(&back, m);
    }

    fn arb_caps() -> impl Strategy<Value = Option<Capabilities>> {
        proptest::option::of(any::<u64>().prop_map(Capabilities))
    }

    fn arb_message() -> impl Strategy<Value = Message> {
        prop_oneof![
            (any::<u64>(), any::<[u8; 32]>()).prop_map(|(version, nonce)| Message::RequestAdd2(RequestAdd2 { version, nonce })),
            (any::<u64>(), any::<[u8; 32]>(), proptest::collection::vec(any::<u8>(), 0..=MLKEM768_EK_LEN), any::<[u8; 32]>(), arb_caps())
                .prop_map(|(version, e, k, s, c)| {
                    Message::AcceptAdd2(AcceptAdd2 { version, ecdh_pub_key: e, mlkem_pub_key: k, aes_salt: s, capabilities: c })
                }),
            (any::<[u8; 32]>(), proptest::collection::vec(any::<u8>(), 0..=MLKEM768_CT_LEN), any::<[u8; 32]>(), arb_caps())
                .prop_map(|(e, ct, s, c)| Message::Keys2(Keys2 { ecdh_pub_key: e, mlkem_ciphertext: ct, chacha_salt: s, capabilities: c })),
            any::<[u8; 32]>().prop_map(Message::Confirm),
            any::<u64>().prop_map(|r| Message::Abort(AbortReason(r))),
        ]
    }

    #[test]
    fn absent_capabilities_round_trip_as_absent() {
        let m = Message::Keys2(Keys2 {
            ecdh_pub_key: [1; 32],
            mlkem_ciphertext: vec![2; MLKEM768_CT_LEN],
            chacha_salt: [3; 32],
            capabilities: None,
        });
        round_trip(&m);
    }

    #[test]
    fn negotiation() {
        let aes = Capabilities(Capabilities::AES_256_GCM | Capabilities::CHACHA20_POLY1305 | Capabilities::RESUME);
        let plain = Capabilities::DEFAULTS;
        assert_eq!(Agreed::negotiate(aes, aes).cipher, DataCipher::Aes256Gcm);
        assert!(Agreed::negotiate(aes, aes).resume);
        assert_eq!(Agreed::negotiate(aes, plain).cipher, DataCipher::ChaCha20Poly1305);
        assert!(!Agreed::negotiate(aes, plain).resume);
        assert_eq!(Agreed::negotiate(Capabilities(Capabilities::CASCADE), plain).cipher, DataCipher::Cascade);
        // Unknown bits are ignored.
        assert_eq!(Agreed::negotiate(Capabilities(aes.0 | 1 << 60), aes), Agreed::negotiate(aes, aes));
    }

    #[test]
    fn header_caps_before_allocation() {
        let mut f = Vec::new();
        put_varuint(&mut f, 42);
        put_varuint(&mut f, u64::MAX);
        assert!(matches!(parse_frame_header(&f), Err(Error::TooLarge { .. })));
        let mut f = Vec::new();
        put_varuint(&mut f, 7);
        put_varuint(&mut f, 1);
        assert!(parse_frame_header(&f).is_err());
        assert_eq!(parse_frame_header(&[40]), Ok(None));
    }

    #[test]
    fn trailing_bytes_rejected() {
        let mut body = Vec::new();
        Message::Confirm([9; 32]).encode_body(&mut body);
        body.push(0);
        assert!(Message::decode(MsgType::CONFIRM, &body).is_err());
    }

    proptest! {
        #[test]
        fn messages_round_trip(m in arb_message()) {
            round_trip(&m);
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(t in 38u64..46, body in proptest::collection::vec(any::<u8>(), 0..2000)) {
            if let Ok(m) = Message::decode(MsgType(t), &body) {
                // What decodes re-encodes to the same bytes (one encoding per message).
                let mut again = Vec::new();
                m.encode_body(&mut again);
                prop_assert_eq!(again, body);
            }
        }

        #[test]
        fn header_parse_never_panics(buf in proptest::collection::vec(any::<u8>(), 0..24)) {
            if let Ok(Some(h)) = parse_frame_header(&buf) {
                prop_assert!(h.body_len <= MAX_RECORD_BODY);
            }
        }
    }
}
