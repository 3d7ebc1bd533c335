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
//! - [`cpace`]: CPace (draft-irtf-cfrg-cpace-21, CPACE-X25519-SHA512) over [`elligator`].
//! - [`handshake`]: the hybrid CPace + ML-KEM-768 handshake state machine and key schedule.
//! - [`record`]: the STREAM-style chunked AEAD record layer.
//! - [`keys`]: the deterministic key hierarchy from one 32-byte seed.
//! - [`code`]: transfer codes (`7-ocean-tiger`) and the word list.
//! - [`primitives`]: thin, typed wrappers over aws-lc-rs and x25519-dalek.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod code;
pub mod codec;
pub mod cpace;
pub mod elligator;
mod error;
pub mod handshake;
pub mod keys;
pub mod labels;
pub mod msg;
pub mod primitives;
pub mod record;
pub mod session;
#[cfg(feature = "testing")]
pub mod testing;
pub mod transfer;

pub use error::{Error, Result};
