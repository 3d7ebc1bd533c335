//! # pqdrop
//!
//! The engine around the sans-IO core in `pqdrop-proto`: it drives the
//! protocol machines over sockets and the disk. The folders show the parts:
//! - [`transport`]: reaching the other side, through a relay or on the LAN
//!   ([`transport::lan`]), as a tuned TCP stream;
//! - [`conn`]: the handshake over that stream, and the record pipeline;
//! - [`send`]: the sender's driver of `transfer::Sender`, and [`send::source`],
//!   the walk of what is sent;
//! - [`receive`]: the receiver's driver of `transfer::Receiver`, with
//!   [`receive::sink`] (openat-style writing that never leaves the output
//!   folder) and its disk thread;
//! - [`names`]: the protocol core's name rules, re-exported.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod conn;
pub mod contact;
mod error;
pub mod link;
/// Entry names: validation, escaping, collisions (pure rules of the protocol core).
pub use pqdrop_proto::transfer::names;
pub mod receive;
pub mod send;
pub mod transport;

pub use receive::sink;
pub use send::source;
pub use transport::lan;

pub use error::{human_bytes, Error, Result};
