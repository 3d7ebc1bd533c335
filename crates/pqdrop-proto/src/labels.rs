//! Every domain-separation label of the protocol, in one place (as age does).
//!
//! Changing any of these changes every key; they are part of the wire protocol
//! and are specified in PROTOCOL.md.

/// CPace channel identifier prefix; the nameplate follows (see [`crate::handshake`]).
pub const CPACE_CI: &[u8] = b"pqdrop/v1 cpace";
/// Prefix of the transcript hash input.
pub const TRANSCRIPT: &[u8] = b"pqdrop/v1 transcript";
/// HKDF info prefix of the AES-256-GCM traffic keys (cf. Ixian's "... AES Key").
pub const AES_KEY: &[u8] = b"pqdrop/v1 AES Key";
/// HKDF info prefix of the ChaCha20-Poly1305 traffic keys (cf. Ixian's "... ChaCha Key").
pub const CHACHA_KEY: &[u8] = b"pqdrop/v1 ChaCha Key";
/// HKDF info prefix of the key-confirmation MAC keys.
pub const CONFIRM_KEY: &[u8] = b"pqdrop/v1 confirm";
/// HKDF info prefix of the exporter secret (for application-level proofs such as resume).
pub const EXPORTER: &[u8] = b"pqdrop/v1 exporter";
/// Direction: requester (who typed the code) to accepter (who made it).
pub const DIR_REQUESTER_TO_ACCEPTER: &[u8] = b" requester->accepter";
/// Direction: accepter to requester.
pub const DIR_ACCEPTER_TO_REQUESTER: &[u8] = b" accepter->requester";
/// HKDF info of `derive_session_key` (the "seed 000" design).
pub const SESSION_KEY: &[u8] = b"pqdrop/v1 session key";
