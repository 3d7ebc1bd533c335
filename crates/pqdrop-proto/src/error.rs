//! The one error type of the protocol crate.
//!
//! Variants follow the rustls taxonomy: bad encoding, a peer that misbehaved with a
//! valid encoding, incompatibility, and API misuse. Crypto failures carry no detail
//! that could help an attacker.

/// Result alias for this crate.
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// Everything that can go wrong in the protocol core.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes do not follow the wire encoding (bad prefix, non-minimal varint,
    /// truncated field, trailing bytes).
    #[error("malformed {what}: {why}")]
    Decode {
        /// Which structure was being decoded.
        what: &'static str,
        /// What was wrong with it.
        why: &'static str,
    },
    /// A length field exceeds the cap that applies to it; nothing was allocated.
    #[error("{what} is {len} bytes, more than the limit of {cap}")]
    TooLarge {
        /// Which field.
        what: &'static str,
        /// The claimed length.
        len: u64,
        /// The cap.
        cap: u64,
    },
    /// A count field exceeds the cap that applies to it; nothing was allocated.
    #[error("{what}: {count}, more than the limit of {cap}")]
    TooMany {
        /// What is counted.
        what: &'static str,
        /// The claimed count.
        count: u64,
        /// The cap.
        cap: u64,
    },
    /// The peer sent a well-formed message that is not allowed at this point.
    #[error("unexpected message from peer: {0}")]
    UnexpectedMessage(&'static str),
    /// The peer speaks no protocol version we speak.
    #[error("incompatible protocol version (peer {peer}, we support {ours})")]
    IncompatibleVersion {
        /// The version the peer offered.
        peer: u64,
        /// The highest version we support.
        ours: u64,
    },
    /// Key confirmation failed: the two sides did not derive the same keys. With an
    /// honest network this means the codes differ.
    #[error("key confirmation failed: the code is wrong (or someone tried to intercept the transfer)")]
    WrongCode,
    /// Contact handshake: the other side could not prove it holds the private
    /// keys of the identity it is expected to have (an impostor holding the
    /// room, or a contact whose keys are not the ones saved).
    #[error("the other side could not prove it holds the expected identity's keys")]
    IdentityNotProven,
    /// Contact handshake (initiator): the responder does not accept our
    /// identity (we are not among its contacts, or not the one it waits for).
    #[error("the other side does not accept this identity")]
    NotAccepted,
    /// Contact handshake (responder): the initiator's identity is valid but
    /// not one this side accepts; carries its fingerprint.
    #[error("an identity that is not accepted here tried to connect ({0})")]
    StrangerIdentity(String),
    /// A caller that is not a saved contact presented an invitation that
    /// does not hold (PROTOCOL.md §13.8).
    #[error("an identity that is not accepted here tried to connect ({fingerprint}), and {why}")]
    InvitationRefused {
        /// The caller's fingerprint.
        fingerprint: String,
        /// What is wrong with its invitation.
        why: &'static str,
    },
    /// The peer aborted the handshake and told us why.
    #[error("peer aborted: {0}")]
    PeerAborted(u64),
    /// A public value was invalid (low-order X25519 point, all-zero shared secret,
    /// malformed ML-KEM key or ciphertext).
    #[error("invalid public value: {0}")]
    InvalidPublicValue(&'static str),
    /// AEAD authentication failed: the record was modified, replayed, reordered or
    /// truncated.
    #[error("record authentication failed")]
    BadRecord,
    /// The record stream was already finished, or the nonce counter is exhausted.
    #[error("record stream is closed")]
    StreamClosed,
    /// A transfer code could not be parsed.
    #[error("invalid code: {0}")]
    BadCode(String),
    /// A key had the wrong length.
    #[error("{what} must be {expected} bytes, got {got}")]
    BadKeyLength {
        /// Which key.
        what: &'static str,
        /// Required length.
        expected: usize,
        /// Given length.
        got: usize,
    },
    /// The caller used the API in a way it does not allow (a buffer too small, a
    /// call in the wrong state).
    #[error("API misuse: {0}")]
    Misuse(&'static str),
    /// The underlying crypto library reported an internal failure.
    #[error("cryptographic library failure")]
    Crypto,
    /// The peer broke a transfer rule of PROTOCOL.md §8 (order, counts,
    /// sizes, capabilities) with well-formed messages.
    #[error("{0}")]
    Violation(String),
    /// The sender named an entry the receiver will not write (path rules of
    /// PROTOCOL.md §8).
    #[error("refusing entry {name}: {reason}")]
    Hostile {
        /// The entry name, escaped for display.
        name: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// The peer stopped the transfer and said why (its Abort or Stop
    /// message; the text is escaped).
    #[error("the other side stopped: {reason}")]
    PeerStopped {
        /// The reason code of a Stop message (`None` for an Abort).
        code: Option<crate::transfer::StopCode>,
        /// The peer's text, escaped for display.
        reason: String,
    },
    /// Received text or stream data did not match the sender's length and
    /// BLAKE3 (what it was: "the text", "the stream").
    #[error("integrity check failed for {0}")]
    Integrity(&'static str),
    /// The offer goes beyond a limit this side sets (not a protocol error:
    /// the peer may send it, we will not take it).
    #[error("{0}")]
    Limit(String),
}
