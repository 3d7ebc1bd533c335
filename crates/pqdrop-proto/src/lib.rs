//! # pqdrop-proto
//!
//! The sans-IO protocol core of pqdrop. Nothing in this crate touches a socket, a
//! file or a clock: bytes and events go in, bytes and events come out. That keeps
//! every part of the protocol fuzzable and testable on its own, in the manner of
//! `quinn-proto` and `rustls`.
//!
//! Layers, bottom up:
//! - [`codec`]: IxiVarUInt / IxiBytes with caps checked before allocation.
//! - [`msg`]: the handshake messages (requestAdd2 = 40, acceptAdd2 = 41, keys2 = 42, ...).
//! - `cpace`: CPace (draft-irtf-cfrg-cpace-21, CPACE-X25519-SHA512) over the RFC 9380 Elligator2 map.
//! - [`handshake`]: the hybrid CPace + ML-KEM-768 handshake state machine and key schedule.
//! - [`record`]: the STREAM-style chunked AEAD record layer.
//! - [`transfer`]: the transfer machines ([`transfer::Sender`], [`transfer::Receiver`]) and the path rules.
//! - [`liveness`]: idle timeouts and KeepAlive, as timers that are given the time.
//! - [`keys`]: the deterministic key hierarchy from one 32-byte seed.
//! - [`identity`]: an identity on that hierarchy: its public keys and fingerprint, the sealed identity file, the recovery phrase.
//! - [`code`]: transfer codes (`7-ocean-tiger`) and the word list.
//! - `primitives`: thin, typed wrappers over aws-lc-rs and x25519-dalek.
//!
//! `cpace`, `elligator`, `labels` and `primitives` are private: a user of the
//! crate reaches them only through the handshake, the record layer and the
//! key hierarchy, so nothing public lets a caller pick a nonce or skip a
//! check. `internal` re-exports them for known-answer tests and fuzzing.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod code;
pub mod codec;
pub mod contacts;
mod cpace;
mod elligator;
mod error;
pub mod handshake;
pub mod identity;
pub mod invite;
pub mod keys;
mod labels;
pub mod liveness;
pub mod msg;
mod primitives;
pub mod record;
pub mod sealed;
pub mod session;
#[cfg(feature = "testing")]
pub mod testing;
pub mod transfer;

pub use error::{Error, Result};

/// The building blocks under the public API, for this crate's own
/// known-answer tests, benches and fuzz targets: CPace, the Elligator2 map,
/// the labels, and the typed wrappers over aws-lc-rs and x25519-dalek. Not a
/// stable API, and nothing a transfer needs; everything here is reachable
/// safely through [`handshake`], [`record`], [`keys`] and [`transfer`].
#[doc(hidden)]
pub mod internal {
    /// CPace (draft-irtf-cfrg-cpace-21, CPACE-X25519-SHA512).
    pub mod cpace {
        pub use crate::cpace::*;
    }
    /// The RFC 9380 Elligator2 map to curve25519.
    pub mod elligator {
        pub use crate::elligator::*;
    }
    /// Domain-separation labels (PROTOCOL.md §11).
    pub mod labels {
        pub use crate::labels::*;
    }
    /// Typed wrappers over aws-lc-rs and x25519-dalek.
    pub mod primitives {
        pub use crate::primitives::*;
    }
}
