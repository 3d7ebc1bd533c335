//! # pqdrop
//!
//! The async transfer engine around the sans-IO core in `pqdrop-proto`:
//! - [`conn`]: the handshake over an async stream, and record frames;
//! - [`send`] / [`receive`]: the two sides of a transfer;
//! - [`source`]: the sender's walk of the files to send;
//! - [`names`] / [`sink`]: the receiver's validation and openat-style writing;
//! - [`lan`]: LAN discovery (no server);
//! - [`transport`]: reaching the other side, through a relay or on the LAN.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod conn;
mod disk;
mod error;
pub mod lan;
/// Entry names: validation, escaping, collisions (pure rules of the protocol core).
pub use pqdrop_proto::transfer::names;
pub mod receive;
pub mod send;
pub mod sink;
pub mod source;
pub mod transport;

pub use error::{Error, Result};
